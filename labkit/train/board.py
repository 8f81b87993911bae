"""TensorBoard over the workspace's training jobs (``labkit tensorboard``), the counterpart of
the seeds' visualisation jobs. One per workspace, in a process of its own like a service:
listed by ``labkit status``, ended by ``labkit tensorboard stop``.

Every job writes its event files into its output (``algorithms.summaries``). TensorBoard reads
a folder of links, one per job version, named as labkit names runs (``JOB@V001``); its process
keeps the links in step with the workspace, so a job created later shows up by itself.

    python -m labkit.train.board RUN_DIR    # the process ``start`` spawns
"""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import httpx

from labkit import artifacts, records, workspace
from labkit.algorithms.summaries import EVENTS
from labkit.errors import LabkitError
from labkit.train import jobs

NAME = "tensorboard"  # the one record's folder in the area
LIVE = ("STARTING", "RUNNING")
READY_TIMEOUT_S = 60
SYNC_SECONDS = 3  # how soon a new job's runs appear
RUNS = "runs"  # the folder of links TensorBoard reads
HOST = "127.0.0.1"  # this machine only; a hub's learners reach it through their proxy

BOARD = records.Kind(artifacts.TENSORBOARD, "TensorBoard", "start it with `labkit tensorboard`",
                     "TensorBoard's process died; start it again with `labkit tensorboard`")


def running() -> dict | None:
    """The record of the TensorBoard that is up (or starting), if any."""
    if not (BOARD.root() / NAME / "run.json").exists():
        return None
    record = BOARD.refresh(BOARD.root() / NAME)
    return record if record["state"] in LIVE else None


def start(refs: list[str] | None = None, log=print) -> dict:
    """Start TensorBoard over jobs ``refs`` (``JOB[@V]``, globs allowed; none: every job, those
    created later too) and return its record once it answers. One already running over the same
    jobs is kept; over others, it is started again."""
    chosen = jobs.JOBS.refs(refs) if refs else []
    folder = BOARD.root() / NAME
    up = running()
    if up and up["jobs"] == chosen:
        _announce(up, log)
        return up
    if up:
        stop()
    with workspace.locked(BOARD.root()):
        folder.mkdir(parents=True, exist_ok=True)
        workspace.write_json(folder / "run.json", {"name": NAME, "jobs": chosen, "host": HOST, "state": "STARTING",
                                                   "timestamps": {"STARTING": workspace.now()}})
    env = {**os.environ, "LABKIT_HOME": str(workspace.home())}
    proc = records.spawn(folder, [sys.executable, "-m", "labkit.train.board", str(folder)], "tensorboard.log", env)
    record = BOARD.wait_ready(folder, proc, lambda r: r["state"] == "RUNNING" and _answers(r["url"]), READY_TIMEOUT_S)
    if record is None:
        stop()
        raise LabkitError(f"TensorBoard was not ready within {READY_TIMEOUT_S} s", f"see {folder / 'tensorboard.log'}")
    if record["state"] not in LIVE:
        raise LabkitError(f"TensorBoard did not start: {record.get('reason')}", f"see {folder / 'tensorboard.log'}")
    _announce(record, log)
    return record


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "data/runs", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _announce(record: dict, log) -> None:
    shown = ", ".join(record["jobs"]) if record["jobs"] else "every job"
    log(f"TensorBoard is up at {record['url']} ({shown}); stop it with {artifacts.TENSORBOARD.stop_command(NAME)}")
    if record.get("browser_url"):
        log(f"in your browser (through Jupyter's proxy): {record['browser_url']}")


def stop() -> dict | None:
    """End TensorBoard's process (and its data server): its record, STOPPED; None if it was not running."""
    return BOARD.stop(BOARD.root() / NAME) if running() else None


# --- the process ---------------------------------------------------------------------------

def _wanted(chosen: list[str]) -> dict[str, Path]:
    """Run name -> the job version's event folder, for the versions that have one by now."""
    refs = chosen or [f"{version.parent.name}@{version.name}"
                      for folder in sorted(p for p in jobs.JOBS.root().iterdir() if p.is_dir() and not p.name.startswith("."))
                      for version in (folder / v for v in workspace.versions(folder))]
    found = {}
    for ref in refs:
        name, _, version = ref.partition("@")
        events = jobs.JOBS.root() / name / version / "output" / EVENTS
        if events.is_dir() and not events.is_symlink():
            found[ref] = events
    return found


def sync(runs: Path, chosen: list[str]) -> None:
    """Make ``runs`` hold one link per job version to show, and nothing else."""
    wanted = _wanted(chosen)
    for link in runs.iterdir():
        if link.is_symlink() and (link.name not in wanted or Path(os.readlink(link)) != wanted[link.name]):
            link.unlink()
    for name, target in wanted.items():
        if not (runs / name).is_symlink():
            (runs / name).symlink_to(target, target_is_directory=True)


def main(run_dir: str) -> int:
    from tensorboard import program

    from labkit.serve import peers, proxy

    run = Path(run_dir)
    record = records.read(run)
    runs = run / RUNS
    runs.mkdir(exist_ok=True)
    sync(runs, record["jobs"])
    def owner_only(app, flags):   # a room's server: this learner's TensorBoard is not the others'
        return program.create_port_scanning_werkzeug_server(peers.owner_only_wsgi(app), flags)

    board = program.TensorBoard(server_class=owner_only if proxy.shared_server() else None)
    board.configure(argv=[None, "--logdir", str(runs), "--host", record["host"], "--port", "0",
                          "--reload_interval", str(SYNC_SECONDS)])
    try:
        url = board.launch()
    except Exception as exc:  # TensorBoard could not start: say why in the record
        records.finish(run, "FAILED", reason=f"{type(exc).__name__}: {exc}"[:500])
        raise
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    browser = proxy.browser_url(port)
    records.update(run, state="RUNNING", url=url, port=port, browser_url=browser + "/" if browser else None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(SYNC_SECONDS)
        sync(runs, record["jobs"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
