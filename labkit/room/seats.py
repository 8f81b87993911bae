"""What the hub does for each learner's seat; the recipe (docs/hub/jupyterhub_config.py) calls
these from its spawner hooks.

- ``prepare``: before the server starts, a workspace and a copy of the lessons, both the
  learner's own and readable by them alone.
- ``Cores``: the server's command under ``taskset``, on a share of the cores, where no cgroup
  quota is given (JupyterHub's default LocalProcessSpawner); labkit sizes every thread pool by
  the CPUs it may run on (``labkit.cpu.cores``).
- ``stop_left_running``: once the server has stopped (culled, or stopped from the hub's control
  panel), what the learner left running stops too: jobs, conversions, TensorBoard, and every
  service deployed without ``--auto-stop``. A service deployed with ``--auto-stop`` keeps
  serving until its own time: the learner asked for that lifetime.

The hub runs as root; ``prepare`` and ``stop_left_running`` run as the learner
(``as_learner``: ``python -m labkit.room.seats prepare|stop``), so root never writes into a
learner's home, where the learner could turn a folder into a link to elsewhere.
"""
from __future__ import annotations

import argparse
import os
import pwd
import shutil
from pathlib import Path

WORKSPACE = "labkit-workspace"   # in the learner's home
LESSONS = "labkit-lessons"       # beside it
PRIVATE = 0o700


def home(name: str) -> Path:
    return Path(pwd.getpwnam(name).pw_dir)


def unusable_environment(venv: Path) -> str | None:
    """Why learners could not run labkit's environment ``venv``, if they could not: each
    learner's server runs its Python as the learner, so that Python, and every folder above
    it, must be open to all (a pyenv Python in root's home is not)."""
    if not (venv / "bin" / "jupyterhub-singleuser").exists():
        return f"{venv} has no jupyterhub-singleuser: .venv/bin/pip install -e '.[hub]' in labkit's folder"
    python = (venv / "bin" / "python").resolve()
    closed = closed_to_others(python)
    if closed:
        return (f"{closed} is closed to other users, and learners run {python} as themselves: "
                "make install PYTHON=/usr/bin/python3.11 (the system's Python) in a folder every user can read")
    return None


def closed_to_others(path: Path) -> Path | None:
    """The first of ``path`` and the folders above it that other users may not enter, if any."""
    path = path.resolve()
    return next((p for p in (path, *path.parents) if not p.stat().st_mode & 0o001), None)


async def as_learner(name: str, python: str, *args: str, log=None) -> None:
    """``python -m labkit.room.seats ARGS`` as ``name``, in their home, with their workspace: a new
    process, since the hub that calls this is threaded and forking it is unsafe (the room's
    reader, single-threaded, forks: ``learners.as_owner``)."""
    import asyncio

    user = pwd.getpwnam(name)
    env = {"LABKIT_HOME": str(home(name) / WORKSPACE), "HOME": user.pw_dir, "PATH": f"{Path(python).parent}:/usr/bin:/bin"}
    proc = await asyncio.create_subprocess_exec(python, "-m", "labkit.room.seats", *args, cwd=user.pw_dir, env=env,
                                                user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    said = out.decode(errors="replace").strip()
    if log:
        log(f"labkit {args[0]} for {name} (exit {proc.returncode}): {said}")
    if proc.returncode:
        raise RuntimeError(f"labkit {args[0]} for {name} failed: {said[-500:]}")


def prepare(lessons: Path) -> None:
    """As the learner: their workspace and, the first time, a copy of ``lessons`` beside it,
    both mode 0700."""
    workspace, copy = Path(os.environ["LABKIT_HOME"]), Path.home() / LESSONS
    workspace.mkdir(mode=PRIVATE, exist_ok=True)
    if not copy.exists():
        # shutil.copy, not copy2: every copy dated now, so the one the learner saves later stands out
        shutil.copytree(lessons, copy, copy_function=shutil.copy,
                        ignore=shutil.ignore_patterns("zh-CN", "labs", ".ipynb_checkpoints"))
    for top in (workspace, copy):
        top.chmod(PRIVATE)


class Cores:
    """Hands each learner ``per_learner`` of ``cores`` (default: the hub's), in turn, in the
    order learners first start: on a server with fewer cores than learners × per_learner,
    neighbours share."""

    def __init__(self, per_learner: int, cores: list[int] | None = None):
        self.cores = sorted(cores if cores is not None else os.sched_getaffinity(0))
        self.per_learner = max(1, min(per_learner, len(self.cores)))
        self.seats: list[str] = []

    def of(self, name: str) -> list[int]:
        if name not in self.seats:
            self.seats.append(name)
        start = self.seats.index(name) * self.per_learner
        return [self.cores[(start + i) % len(self.cores)] for i in range(self.per_learner)]

    def pinned(self, name: str, cmd: list[str]) -> list[str]:
        """``cmd`` run on the learner's cores."""
        return ["taskset", "--cpu-list", ",".join(map(str, self.of(name))), *cmd]


def stop_left_running(log=print) -> list[str]:
    """As the learner: stop every job, conversion, TensorBoard and service that runs in their
    workspace, but a service deployed with an auto-stop. What was stopped, as ``KIND NAME``."""
    from labkit import convert, status, train
    from labkit.serve import services

    stoppers = {"job": train.stop, "conversion": convert.stop, "service": services.stop,
                "tensorboard": lambda _: train.stop_tensorboard()}
    stopped = []
    for item in status.running():
        if item["kind"] == "service" and services.show(item["name"]).get("auto_stop"):
            log(f"kept service {item['name']}: it stops itself (--auto-stop)")
            continue
        stoppers[item["kind"]](item["name"])
        stopped.append(f"{item['kind']} {item['name']}")
    log("stopped: " + (", ".join(stopped) or "nothing was running"))
    return stopped


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="a learner's seat, run as the learner by the hub's hooks")
    verbs = parser.add_subparsers(dest="verb", required=True)
    verbs.add_parser("prepare").add_argument("lessons", type=Path)
    verbs.add_parser("stop")
    args = parser.parse_args()
    if args.verb == "prepare":
        prepare(args.lessons)
    else:
        stop_left_running()
