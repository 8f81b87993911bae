"""What a training run's processes share beyond its status record (``labkit.records``):
the algorithm's environment and how a failure is explained."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def child_env(record: dict) -> dict:
    """The algorithm's environment: ours, with the job's device and thread settings."""
    env = dict(os.environ)
    env.update(record.get("env", {}))
    # msrun and torchrun start `python` from PATH: make it this interpreter, venv or not
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
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
