"""Status records of long-running work (training runs, conversion tasks): a directory with
``run.json`` holding ``state``, a timestamp per state, and the pid of the process that owns it.

Several processes touch a record (the owner, ``stop``, a status check), so every
read-modify-write holds the directory's lock, and every write is atomic. A record whose
process has died without saying so is marked FAILED at the next look (``refresh``).
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
    """Move a record to a terminal state, unless it already is in one (the first word stands)."""
    with workspace.locked(run):
        record = read(run)
        if record["state"] in TERMINAL:
            return record
        record.setdefault("timestamps", {})[state] = workspace.now()
        record.update(state=state, **changes)
        workspace.write_json(run / "run.json", record)
    return record


def started_at(pid: int) -> float | None:
    """When a process started, to tell it from a later process that reuses its pid. On Linux
    the kernel's start tick (exact, and immune to the wall clock being stepped, which moves
    psutil's create_time); elsewhere psutil's create_time."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return float(f.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime, in ticks
    except (OSError, IndexError, ValueError):
        pass
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def alive(pid: int, started: float | None) -> bool:
    """Is the owner still running? A reused pid (another start time) is not it; a zombie
    (our own child, when the work was started from this process) is dead and reaped."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            if proc.ppid() == os.getpid():
                os.waitpid(pid, os.WNOHANG)
            return False
    except psutil.Error:
        return False
    return started is None or started_at(pid) == started


def refresh(run: Path, reason: str) -> dict:
    """The record, after marking it FAILED (with ``reason``) if its process died unnoticed."""
    record = read(run)
    if record["state"] in TERMINAL or "pid" not in record:
        return record
    if not alive(record["pid"], record.get("pid_started")):
        record = finish(run, "FAILED", reason=reason)
    return record
