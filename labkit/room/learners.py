"""The instructor's view of the room: each learner's workspace summed up (stage reached, jobs,
conversions, services, disk, last error, last change), and an instructor's pack handed to a
learner who fell behind.

A learner's workspace is theirs (mode 0700) and what it holds is untrusted: it is read by a
process of the learner's own (forked, then switched to the workspace's owner), as
``labkit status`` would read it for them, and bounded in time. The instructor's process reads
only the JSON that comes back.
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import select
import signal
import sys
import time
from pathlib import Path

from labkit.artifacts import CONVERSION, DATASET, JOB, MODEL, SERVICE
from labkit.errors import LabkitError
from labkit.room.seats import LESSONS, WORKSPACE, closed_to_others

HOMES = f"/home/*/{WORKSPACE}"      # where the hub recipe puts each learner's workspace
STAGES = (DATASET, JOB, CONVERSION, MODEL, SERVICE)   # the workflow's order: the stage reached is the last with a record
COPY_SECONDS = 5                     # the lessons' copy takes less: a notebook dated later was saved since
READ_TIMEOUT_S = 30                  # per learner: a workspace too big (or too odd) to read in time says so


def _import_for_children() -> None:
    """What ``summary`` imports, imported before forking: each learner's child then has it already
    (the imports cost 0.6 s once, instead of per learner)."""
    from labkit import convert, data, registry, status, train  # noqa: F401
    from labkit.algorithms import reports  # noqa: F401
    from labkit.serve import services  # noqa: F401


def summary(lessons: Path | None = None) -> dict:
    """This workspace (``LABKIT_HOME``) as the room's table shows it."""
    from labkit import convert, data, registry, status, train
    from labkit.algorithms.reports import NOT_METRICS
    from labkit.serve import services

    found = {DATASET: data.list_datasets(), JOB: train.list_jobs(), CONVERSION: convert.list_tasks(),
             MODEL: registry.list_models(), SERVICE: services.list_services()}
    reached = [a.cli for a in STAGES if found[a]]
    runs = [(a, r) for a in (JOB, CONVERSION, SERVICE) for r in found[a]]
    failed = [(r["timestamps"].get("FAILED", ""), f"{a.kind} {r[a.key]}: {r.get('reason') or 'failed'}")
              for a, r in runs if r["state"] == "FAILED"]
    stamps = [t for a in STAGES for r in found[a] for t in [*r.get("timestamps", {}).values(), r.get("created")] if t]
    lesson = _lesson(lessons)
    changed = max([*stamps, *([lesson[1]] if lesson else [])], default=None)
    return {"stage": reached[-1] if reached else None,
            "lesson": lesson[0] if lesson else None,
            "jobs": [{"job": f"{r['job']}@{r['version']}", "state": r["state"],
                      "metrics": {k: v for k, v in r.get("metrics", {}).items() if k not in NOT_METRICS}}
                     for r in sorted(found[JOB], key=lambda r: min(r["timestamps"].values()))],   # the latest last
            "conversions": [{"task": f"{r['task']}@{r['version']}", "state": r["state"]} for r in found[CONVERSION]],
            "models": [f"{r['model']}@{r['version']}" for r in found[MODEL]],
            "services": [{"service": r["service"], "state": r["state"], "model": r["model"]}
                         for r in found[SERVICE]],
            "running": [f"{r['kind']} {r['name']}" for r in status.running()],
            "disk_bytes": status.disk_use()["total_bytes"],
            "last_error": max(failed)[1] if failed else None,
            "last_change": changed}


def job_text(job: dict) -> str:
    """A job of ``summary`` in a few words: ``rn@V001 COMPLETED (accuracy 0.92)``."""
    metrics = ", ".join(f"{k} {v:.3g}" for k, v in job["metrics"].items() if isinstance(v, (int, float)))
    return f"{job['job']} {job['state']}" + (f" ({metrics})" if metrics else "")


def _lesson(lessons: Path | None) -> tuple[str, str] | None:
    """The lesson notebook the learner saved last, and when (ISO time): where they are. The hub
    copies the lessons all at once (``seats.prepare``); one saved since stands out."""
    notebooks = [p for p in lessons.glob("*.ipynb") if not p.is_symlink()] if lessons and lessons.is_dir() else []
    saved = {p: p.stat().st_mtime for p in notebooks}
    if not saved or max(saved.values()) <= min(saved.values()) + COPY_SECONDS:
        return None
    last = max(saved, key=saved.get)
    return last.stem, _iso(saved[last])


def _iso(seconds: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def room(homes: str = HOMES, timeout: float = READ_TIMEOUT_S) -> list[dict]:
    """Every learner whose workspace matches ``homes``, by name: ``summary`` read as its owner,
    or ``error`` saying why it could not be."""
    _import_for_children()
    found = []
    for folder in sorted(glob.glob(homes)):
        path = Path(folder)
        st = path.lstat()
        if not path.is_dir() or path.is_symlink():
            continue
        learner = _user_name(st.st_uid)
        entry = {"learner": learner, "workspace": str(path)}
        try:
            entry.update(as_owner(path, lambda: summary(path.parent / LESSONS), timeout))
        except LabkitError as exc:
            entry["error"] = exc.message
        found.append(entry)
    return found


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def as_owner(folder: Path, work, timeout: float = READ_TIMEOUT_S):
    """``work()`` in a child process run as the owner of workspace ``folder``, with
    ``LABKIT_HOME`` set to it: its JSON answer. Needs root for another user's workspace.
    A fork (the CLI and the room's page are single-threaded), so ``work`` needs no new
    interpreter; the hub's hooks, in a threaded process, start one (``seats.as_learner``)."""
    st = folder.lstat()
    if st.st_uid != os.getuid():
        if os.getuid() != 0:
            raise LabkitError(f"{folder} belongs to {_user_name(st.st_uid)}", "run this as root on the room's server")
        closed = closed_to_others(Path(sys.executable))
        if closed:   # the child, as the learner, could not import the rest of the standard library
            raise LabkitError(f"labkit's Python ({sys.executable}) is under {closed}, which {_user_name(st.st_uid)} "
                              "may not enter", "run labkit's environment made with the system's Python (docs/HUB.md)")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child: become the learner, do the work, write the answer, exit
        os.close(read_end)
        try:
            if st.st_uid != os.getuid():
                os.setgroups([])
                os.setgid(st.st_gid)
                os.setuid(st.st_uid)
            os.environ["LABKIT_HOME"] = str(folder)
            answer = {"ok": work()}
        except LabkitError as exc:
            answer = {"error": exc.message}
        except BaseException as exc:  # noqa: BLE001 - whatever a learner's folder does, the instructor gets one line
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        with contextlib.suppress(BaseException), os.fdopen(write_end, "wb") as out:
            out.write(json.dumps(answer, default=str).encode())
        os._exit(0)
    os.close(write_end)
    chunks, deadline = [], time.monotonic() + timeout
    with os.fdopen(read_end, "rb") as pipe:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([pipe], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise LabkitError(f"{folder} could not be read within {timeout:g} s", "look at it by hand (du, ls)")
            chunk = os.read(pipe.fileno(), 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    os.waitpid(pid, 0)
    try:
        answer = json.loads(b"".join(chunks))
    except ValueError:
        raise LabkitError(f"reading {folder} gave no answer", "look at it by hand (du, ls)") from None
    if "error" in answer:
        raise LabkitError(f"{folder}: {answer['error']}", "the learner's `labkit status` shows the same")
    return answer["ok"]


def workspace_of(learner: str, homes: str = HOMES) -> Path:
    """The workspace of ``learner``: the one folder matching ``homes`` that they own."""
    try:
        uid = pwd.getpwnam(learner).pw_uid
    except KeyError:
        raise LabkitError(f"no user {learner!r} on this server", "`labkit room status` lists the learners") from None
    found = [Path(f) for f in sorted(glob.glob(homes))
             if Path(f).is_dir() and not Path(f).is_symlink() and Path(f).lstat().st_uid == uid]
    if len(found) != 1:
        raise LabkitError(f"{learner} has {'no workspace' if not found else 'several workspaces'} among {homes}",
                          "the learner's server creates it at the first login; --homes names where they are")
    return found[0]


def give(learner: str, pack: str, packs: Path, homes: str = HOMES) -> dict:
    """Unpack ``pack`` (a file in the instructor's shared folder ``packs``) into ``learner``'s
    workspace, as the learner, checked as every pack is: what ``labkit unpack`` installed."""
    from labkit import packs as packing

    folder = workspace_of(learner, homes)
    source = (packs / pack).resolve()
    if source.parent != packs.resolve() or not source.is_file():
        known = ", ".join(sorted(p.name for p in packs.glob("*.tar.gz"))) or "none"
        raise LabkitError(f"no pack {pack!r} in {packs} (there: {known})", "give a file name from that folder")
    return as_owner(folder, lambda: packing.unpack(source, log=lambda *_: None), timeout=600)

