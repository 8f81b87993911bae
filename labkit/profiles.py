"""Profiles set default sizes and hyper-parameters, for the CLI and the notebooks alike.

``quick``: CI, a whole lab in about a minute on 2 CPU cores. ``workshop`` (the default):
minutes on a laptop CPU. ``full``: the seeds' own sizes, for a GPU or a long run.
A profile changes defaults, never names.
"""
from __future__ import annotations

import os

from labkit.errors import LabkitError

PROFILES = ("quick", "workshop", "full")
DEFAULT_PROFILE = "workshop"
# Cuts every training job to this many epochs, as LABKIT_PROFILE sets sizes: `labkit run LAB
# --max-epochs 1` sets it for a lab's kernels, to try the full profile's sizes for one epoch.
MAX_EPOCHS_ENV = "LABKIT_MAX_EPOCHS"

# Stage 1: how many images and at what size each generator makes, per profile.
# full = the seeds' datasets: 3,670 flower photos; ShanghaiTech A's 300 + 182 images.
DATA_DEFAULTS = {
    "quick": {
        "flowers": {"count": 150, "size": 64},
        "food": {"count": 120, "size": 64},
        "crowd": {"count": 40, "size": 128},
        "digits": {"count": 300, "size": 32},
        "glyphs": {"count": 260, "size": 32},
    },
    "workshop": {
        "flowers": {"count": 1000, "size": 64},
        "food": {"count": 800, "size": 64},
        "crowd": {"count": 300, "size": 256},
        "digits": {"count": 1797, "size": 32},
        "glyphs": {"count": 1560, "size": 32},
    },
    "full": {
        "flowers": {"count": 3670, "size": 224},
        "food": {"count": 2000, "size": 224},
        "crowd": {"count": 482, "size": 512},
        "digits": {"count": 1797, "size": 64},
        "glyphs": {"count": 2600, "size": 64},
    },
}


def profile(name: str | None = None) -> str:
    """The active profile: ``name`` if given, else ``$LABKIT_PROFILE``, else ``workshop``."""
    chosen = name or os.environ.get("LABKIT_PROFILE") or DEFAULT_PROFILE
    if chosen not in PROFILES:
        raise LabkitError(f"unknown profile {chosen!r}", f"use one of {', '.join(PROFILES)}")
    return chosen


def data_defaults(kind: str, profile_name: str | None = None) -> dict:
    """Default ``count`` and ``size`` of generator ``kind`` under the profile."""
    table = DATA_DEFAULTS[profile(profile_name)]
    if kind not in table:
        raise LabkitError(f"unknown dataset kind {kind!r}", f"use one of {', '.join(table)}")
    return dict(table[kind])


def env_hyper() -> dict:
    """Hyper-parameter defaults the environment sets: ``max_epochs`` from ``$LABKIT_MAX_EPOCHS``."""
    value = os.environ.get(MAX_EPOCHS_ENV)
    if not value:
        return {}
    if not value.isdigit() or int(value) < 1:
        raise LabkitError(f"{MAX_EPOCHS_ENV}={value!r} is not a number of epochs",
                          "set it to a whole number such as 1, or unset it to train every epoch")
    return {"max_epochs": int(value)}
