"""The algorithms: model definitions and training scripts, one module per engine with the
same names (``labkit.algorithms.pytorch`` and ``labkit.algorithms.mindspore``), so that the
architecture tables in ``configs`` are written once and read the same in both. Both engines
train in one loop (``loop``); each engine's ``engine`` module supplies its hooks.

Nothing here imports an engine: this module is what the rest of labkit may read cheaply.
"""
from __future__ import annotations

from pathlib import Path

PROGRESS = "LABKIT-PROGRESS "  # log lines starting with this carry a JSON event for followers
DEVICES = ("cpu", "gpu", "ascend")  # what a training script can run on
CHECKPOINT_EXT = {"pytorch": ".pth", "mindspore": ".ckpt"}


def checkpoint(train_url: str | Path, engine: str, name: str = "best") -> Path:
    """A run's checkpoint file: ``best`` (the best epoch's), or ``epoch_NNN``."""
    return Path(train_url) / "checkpoints" / f"{name}{CHECKPOINT_EXT[engine]}"
