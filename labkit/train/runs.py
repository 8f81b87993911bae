"""One run of a training job: the directory ``jobs/NAME/V00N/`` and its record ``run.json``.

Several processes touch a record (the supervisor, ``stop``, a status check), so every
read-modify-write holds the run directory's lock, and every write is atomic.
"""
from __future__ import annotations

import os
from pathlib import Path

from labkit import workspace

TERMINAL = ("COMPLETED", "FAILED", "STOPPED")


def read(run: Path) -> dict:
    return workspace.read_json(run / "run.json")


def update(run: Path, **changes) -> dict:
    with workspace.locked(run):
        record = read(run)
        if "state" in changes and changes["state"] != record["state"]:
            record.setdefault("timestamps", {})[changes["state"]] = workspace.now()
        record.update(changes)
        workspace.write_json(run / "run.json", record)
    return record


def finish(run: Path, state: str, **changes) -> dict:
    """Move a run to a terminal state, unless it already is in one (the first word stands)."""
    with workspace.locked(run):
        record = read(run)
        if record["state"] in TERMINAL:
            return record
        record.setdefault("timestamps", {})[state] = workspace.now()
        record.update(state=state, **changes)
        workspace.write_json(run / "run.json", record)
    return record


def child_env(record: dict) -> dict:
    """The algorithm's environment: ours, with the job's device and thread settings."""
    env = dict(os.environ)
    env.update(record.get("env", {}))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def failure_reason(run: Path, code: int) -> str:
    """Why a run failed, in a line: the last meaningful log line and the exit code."""
    try:
        lines = [ln.strip() for ln in (run / "train.log").read_text(errors="replace").splitlines() if ln.strip()]
    except FileNotFoundError:
        lines = []
    last = next((ln for ln in reversed(lines) if not ln.startswith("LABKIT-PROGRESS")), "")
    signal = f" (killed by signal {-code})" if code < 0 else ""
    return f"exit code {code}{signal}: {last[:300]}" if last else f"exit code {code}{signal}"
