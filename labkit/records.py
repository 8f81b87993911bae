"""Status records of long-running work (training runs, conversion tasks, services): a
directory with ``run.json`` holding ``state``, a timestamp per state, and the pid of the
process that owns it. ``Kind`` is one such kind of work kept in a workspace area (finding,
showing and listing its records); ``spawn`` starts the process that owns a record.

Several processes touch a record (the owner, ``stop``, a status check), so every
read-modify-write holds the directory's lock, and every write is atomic. A record whose
process has died without saying so is marked FAILED at the next look (``refresh``).
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from labkit import workspace
from labkit.artifacts import Artifact
from labkit.errors import LabkitError

TERMINAL = ("COMPLETED", "FAILED", "STOPPED")
STOPPED_BY_USER = "stopped by the user"
STOP_GRACE_SECONDS = 10  # how long a stopped run's processes have to exit after SIGTERM, before SIGKILL


def read(run: Path, schema=None) -> dict:
    """``run.json``, bounded, and a valid ``schema`` record when one is given."""
    from labkit import schemas

    try:
        return schemas.read(run / "run.json", schema)
    except FileNotFoundError:
        raise LabkitError(f"{run} has no record (run.json)", "a killed command or another tool left the folder: "
                          "remove it") from None


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
    """Is the owner still running? A reused pid (another start time) is not it, nor is a pid
    whose start was never recorded (a record is data: it must not make labkit signal a process
    it did not start); a zombie (our own child, when the work was started from this process) is
    dead and reaped."""
    if started is None:
        return False
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            if proc.ppid() == os.getpid():
                os.waitpid(pid, os.WNOHANG)
            return False
    except psutil.Error:
        return False
    return started_at(pid) == started


def refresh(run: Path, reason: str, schema=None) -> dict:
    """The record, after marking it FAILED (with ``reason``) if its process died unnoticed, or
    STOPPED if it was being stopped;
    what that process had started (a training script, a server's workers) is ended with it."""
    record = read(run, schema)
    if record["state"] in TERMINAL or "pid" not in record:
        return record
    if not alive(record["pid"], record.get("pid_started")):
        # A stop under way ended it on purpose (`stop_reason` comes first): STOPPED, whoever looks first.
        record = finish(run, "STOPPED" if record.get("stop_reason") else "FAILED",
                        reason=record.get("stop_reason") or reason)
        if record.get("pid_started") is not None:  # the group was ours once: end what is left of it
            _end_orphans(record["pid"])
    return record


def _end_orphans(pid: int) -> None:
    """SIGKILL the process group that the dead ``pid`` led (``spawn`` starts each owner in a
    session of its own). Only while no other process has taken the pid: the group is then ours."""
    import psutil

    try:
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return  # the pid is another process's now
    except psutil.NoSuchProcess:
        pass
    except psutil.Error:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def spawn(run: Path, argv: list[str], log_name: str, env: dict) -> subprocess.Popen:
    """Start the process that owns ``run`` in a new session (so that stopping it can end its
    whole process tree), its output appended to ``run/log_name``; record its pid."""
    with open(run / log_name, "a") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env)
    update(run, pid=proc.pid, pid_started=started_at(proc.pid))
    return proc


def end_process_tree(record: dict, grace: float) -> None:
    """End the process that owns ``record`` and everything it started: SIGTERM to its process
    group and to each process of its tree (a launcher's workers may have a session of their
    own), then SIGKILL to whatever is still alive after ``grace`` seconds."""
    import psutil

    pid = record.get("pid")
    if pid is None or not alive(pid, record.get("pid_started")):
        return
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        tree = []
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    for p in tree:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, left = psutil.wait_procs(tree, timeout=grace)
    for p in left:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(left, timeout=5)


class Kind:
    """One kind of run (``artifacts.JOB``, ``CONVERSION``, ``SERVICE``), its records kept in its
    workspace area: ``jobs/NAME/V00N/`` and ``conversions/NAME/V00N/`` are versioned (creating
    one again makes the next version), ``services/NAME/`` is not. ``what`` names it in messages,
    ``hint`` says how to make one, ``died`` is the reason a record gets when its process died
    unnoticed; what its ``run.json`` must hold is the artifact's schema (``labkit.schemas``).

    ``stopped_first`` says how ``stop`` orders its two steps. By default the record says STOPPED
    only once the process tree has ended: the owner, seeing ``stop_reason``, may record how it
    ended (a service drains first). With ``stopped_first`` the record says STOPPED before the
    processes are signalled, so that an owner finishing meanwhile cannot overwrite it (its
    ``finish`` comes second, and the first word stands)."""

    def __init__(self, artifact: Artifact, what: str, hint: str, died: str, stopped_first: bool = False):
        self.artifact, self.what, self.hint, self.died = artifact, what, hint, died
        self.versioned, self.stopped_first = artifact.versioned, stopped_first

    def root(self) -> Path:
        return self.artifact.root()

    def dir(self, ref: str) -> Path:
        """``NAME`` (the latest version) or ``NAME@V002`` -> the run's directory."""
        if self.versioned:
            return workspace.versioned(self.root(), ref, self.what, self.hint, self.artifact.numbering)
        folder = self.root() / workspace.check_name(ref, f"{self.what} name")
        if not (folder / "run.json").exists():
            known = ", ".join(p.parent.name for p in sorted(self.root().glob("*/run.json"))) or "none"
            raise LabkitError(f"no {self.what} named {ref!r} ({self.what}s: {known})", self.hint)
        return folder

    def refs(self, patterns: list[str]) -> list[str]:
        """``NAME[@VERSION]`` of a versioned kind, where name and version may be shell globs
        (``lr-*``, ``job@*``): each run they match as ``NAME@VERSION`` (a bare name: its latest
        version), in the order asked, once each. A pattern that matches nothing is an error."""
        import fnmatch

        found = []
        for pattern in patterns:
            name, at, version = pattern.partition("@")
            if not any(c in pattern for c in "*?["):
                found.append(f"{name}@{self.dir(pattern).name}")  # a clear error where there is none
                continue
            names = sorted(p.name for p in self.root().iterdir() if p.is_dir() and fnmatch.fnmatchcase(p.name, name))
            matched = []
            for n in names:
                published = workspace.versions(self.root() / n, self.artifact.numbering)
                matched += [f"{n}@{v}" for v in (fnmatch.filter(published, version) if at else published[-1:])]
            if not matched:
                raise LabkitError(f"no {self.what} matches {pattern!r}", self.hint)
            found += matched
        return list(dict.fromkeys(found))

    def refresh(self, run: Path) -> dict:
        """The record, after marking it FAILED if its process died unnoticed."""
        return refresh(run, self.died, self.artifact.schema)

    def refresh_version(self, run: Path) -> dict:
        """``refresh``, with the version the folder's name says (a record's own may lag or lie)."""
        record = self.refresh(run)
        return {**record, "version": run.name} if self.versioned else record

    def show(self, ref: str) -> dict:
        """The record, with its directory (and its versions, when versioned)."""
        run = self.dir(ref)
        record = {**self.refresh_version(run), "dir": str(run)}
        if self.versioned:
            record["versions"] = workspace.versions(run.parent, self.artifact.numbering)
        return record

    def list(self) -> list[dict]:
        """The latest version of each (every record, when not versioned), by name; a damaged
        record is skipped with a warning."""
        runs = (workspace.latest_versions(self.root(), self.artifact.numbering) if self.versioned
                else [p.parent for p in sorted(self.root().glob("*/run.json"))])
        return list(workspace.readable(runs, self.refresh_version))

    def latest_completed(self, keep=lambda record: True) -> dict | None:
        """The record of the most recently completed run (the latest version of each name) that
        ``keep`` accepts, if any."""
        finished = self.artifact.finished
        done = [r for r in self.list() if r["state"] == finished and keep(r)]
        return max(done, key=lambda r: r["timestamps"][finished]) if done else None

    def wait_ready(self, run: Path, proc: subprocess.Popen, ready, timeout: float) -> dict | None:
        """After ``spawn`` started ``proc``: the record once ``ready(record)`` holds, or once it has
        ended (FAILED, STOPPED) if that comes first; None when ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.refresh(run)
            if record["state"] in TERMINAL or ready(record):
                return record
            if proc.poll() is None:  # else the next refresh reports how it ended
                time.sleep(0.2)
        return None

    def stop_grace(self, record: dict) -> float:
        """Seconds the run's processes have after SIGTERM before they are killed."""
        return STOP_GRACE_SECONDS

    def stop(self, run: Path, grace: float | None = None) -> dict:
        """Stop a run: end its whole process tree (SIGTERM, then SIGKILL after ``grace`` seconds,
        by default ``stop_grace``) and mark it STOPPED, by the user. A run that has ended already
        is left as it is (its record is returned)."""
        record = self.refresh(run)
        if record["state"] in TERMINAL:
            return record
        grace = self.stop_grace(record) if grace is None else grace
        if self.stopped_first:
            record = finish(run, "STOPPED", reason=STOPPED_BY_USER)
            end_process_tree(record, grace)
            return record
        update(run, stop_reason=STOPPED_BY_USER)  # first: whoever sees the tree end calls it STOPPED
        end_process_tree(record, grace)
        return finish(run, "STOPPED", reason=STOPPED_BY_USER)
