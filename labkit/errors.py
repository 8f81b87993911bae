"""The one exception type labkit raises for a user's mistake: what went wrong, and what to do."""


class LabkitError(Exception):
    """An error a user can fix. ``hint`` says how; the CLI prints both and exits non-zero."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.hint}" if self.hint else self.message
