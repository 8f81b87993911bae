"""Learning-rate schedules: a card's ``learning_rate_strategy`` (``EPOCHS:LR,...``), MCNN's
steps, and constant, step or cosine schedules with warm-up."""
from __future__ import annotations

import math


def parse_strategy(strategy: str) -> list[tuple[int, float]]:
    """``"10:0.01,20:0.001"`` -> [(10, 0.01), (20, 0.001)]: until epoch 10 at 0.01, then to 20 at 0.001."""
    try:
        steps = [(int(e), float(lr)) for e, lr in (part.split(":") for part in strategy.split(","))]
    except ValueError:
        from labkit.errors import LabkitError

        raise LabkitError(f"learning_rate_strategy {strategy!r} is not EPOCHS:LR[,EPOCHS:LR...]",
                          "e.g. 20:0.001 (20 epochs at 0.001) or 10:0.01,20:0.001") from None
    if any(b[0] <= a[0] for a, b in zip(steps, steps[1:])) or steps[0][0] < 1:
        from labkit.errors import LabkitError

        raise LabkitError(f"learning_rate_strategy {strategy!r}: epochs must increase", "e.g. 10:0.01,20:0.001")
    return steps


class Schedule:
    """The learning rate at a fractional epoch, from a card's hyper-parameters."""

    def __init__(self, hp: dict):
        if "learning_rate_strategy" in hp:
            self.steps = parse_strategy(hp["learning_rate_strategy"])
            self.epochs = self.steps[-1][0]
            self.kind = "strategy"
        elif "epoch_size" in hp:  # MCNN: x0.1 at 50%, x0.01 at 75% of training
            self.epochs, self.base, self.kind = hp["epoch_size"], hp["lr"], "mcnn"
        else:
            self.epochs, self.base, self.kind = hp["epochs"], hp["lr"], hp.get("sched", "constant")
            self.warmup, self.warmup_lr = hp.get("warmup_epochs", 0), hp.get("warmup_lr", 0.0)
        # The epochs this run trains: max_epochs ends it early, with the rates of the whole schedule.
        self.stop = min(self.epochs, hp.get("max_epochs") or self.epochs)

    def __call__(self, epoch: float) -> float:
        """``epoch`` counts from 0; 2.5 is the middle of the third epoch."""
        if self.kind == "strategy":
            return next((lr for end, lr in self.steps if epoch < end), self.steps[-1][1])
        if self.kind == "mcnn":
            t = epoch / self.epochs
            return self.base * (1.0 if t < 0.5 else 0.1 if t < 0.75 else 0.01)
        if epoch < self.warmup:
            return self.warmup_lr + (self.base - self.warmup_lr) * epoch / self.warmup
        t = (epoch - self.warmup) / max(1e-9, self.epochs - self.warmup)
        if self.kind == "cosine":
            return 0.5 * self.base * (1 + math.cos(math.pi * min(1.0, t)))
        if self.kind == "step":
            return self.base * 0.1 ** int(t * 3)
        return self.base
