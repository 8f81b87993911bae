"""Online services (the seeds' "deploy as a real-time service"): ``services/NAME/`` holds the
record (``run.json``: model, URL, instances, state DEPLOYING → RUNNING → STOPPED / FAILED)
and the service's log. ``deploy`` starts the server process and returns once it answers.
"""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from labkit import artifacts, cpu, records, registry, workspace
from labkit.serve import proxy
from labkit.errors import LabkitError

LIVE = ("DEPLOYING", "RUNNING")
READY_TIMEOUT_S = 120


class _Services(records.Kind):
    def refresh(self, folder: Path) -> dict:
        """The record; for several instances, how many of uvicorn's workers are alive."""
        record = super().refresh(folder)
        if record["state"] == "RUNNING" and record["instances"] > 1:
            import psutil

            try:
                alive = [p for p in psutil.Process(record["pid"]).children()  # uvicorn's workers, not its helpers
                         if p.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(p.cmdline())]
            except psutil.Error:
                alive = []
            record["instances_alive"] = len(alive)
        return record

    def stop_grace(self, record: dict) -> float:
        """Its deadline, for the requests in flight to finish, and 10 s more to exit."""
        return record["deadline"] + 10


SERVICES = _Services(artifacts.SERVICE, "service", "deploy one with `labkit service deploy`",
                     "the service's process died (killed or crashed); deploy it again")
_root, _dir = SERVICES.root, SERVICES.dir
refresh, show, list_services = SERVICES.refresh, SERVICES.show, SERVICES.list


def deploy(model: str, name: str | None = None, instances: int = 1, auto_stop: float | None = None,
           port: int = 0, host: str = "127.0.0.1", max_batch: int = 16, max_wait_ms: float = 5.0,
           max_body_mb: float = 12, deadline_s: float = 40, log=print) -> dict:
    """Start ``model`` (NAME[@VERSION] of the registry) as a service; return its record once
    it is ready (health 200) or has failed."""
    model_dir, serving = registry.deployable(model)
    model_ref = f"{model_dir.parent.name}@{model_dir.name}"
    name = workspace.check_name(name or model_dir.parent.name, "service name")
    if not 1 <= instances <= 16:
        raise LabkitError(f"--instances must be 1 to 16 (got {instances})", "one instance per core is plenty")
    if auto_stop is not None and auto_stop <= 0:
        raise LabkitError("--auto-stop must be a positive number of seconds", "e.g. --auto-stop 3600 (the seeds' hour)")
    if not 0 <= port <= 65535:
        raise LabkitError(f"--port {port} is not a port", "use 1024-65535, or leave it out for a free one")
    if host not in ("127.0.0.1", "localhost", "::1"):
        log(f"warning: binding {host} makes the service reachable from other machines; it has no authentication")
    folder = _root() / name
    with workspace.locked(_root()):
        if (folder / "run.json").exists() and refresh(folder)["state"] in LIVE:
            raise LabkitError(f"service {name} is already running ({records.read(folder).get('url')})",
                              f"stop it first ({artifacts.SERVICE.stop_command(name)}) or choose another --name")
        folder.mkdir(parents=True, exist_ok=True)
        cores = cpu.cores()
        record = {"service": name, "model": model_ref, "model_dir": str(model_dir), "task": serving["task"],
                  "host": host, "port": port, "instances": instances, "auto_stop": auto_stop,
                  "access": "owner" if proxy.shared_server() else "any",
                  "threads": max(1, cores // instances), "max_batch": max_batch, "max_wait": max_wait_ms / 1000,
                  "max_body": int(max_body_mb * 1024 * 1024), "deadline": deadline_s, "max_connections": 1024,
                  "state": "DEPLOYING", "timestamps": {"DEPLOYING": workspace.now()}}
        workspace.write_json(folder / "run.json", record)
    # prometheus_client reads PROMETHEUS_MULTIPROC_DIR when imported: set it before the process starts
    (folder / "prometheus").mkdir(exist_ok=True)
    for stale in (folder / "prometheus").glob("*.db"):  # a previous deployment's samples
        stale.unlink()
    env = {**os.environ, "LABKIT_HOME": str(workspace.home()), "PROMETHEUS_MULTIPROC_DIR": str(folder / "prometheus")}
    proc = records.spawn(folder, [sys.executable, "-m", "labkit.serve.server", str(folder)], "service.log", env)
    record = SERVICES.wait_ready(folder, proc, lambda r: bool(r.get("url")) and _healthy(r["url"]), READY_TIMEOUT_S)
    if record is None:
        stop(name)
        raise LabkitError(f"service {name} was not ready within {READY_TIMEOUT_S} s", f"see {folder / 'service.log'}")
    if record["state"] not in LIVE:
        raise LabkitError(f"service {name} did not start: {record.get('reason')}: {_log_tail(folder)}",
                          f"see {folder / 'service.log'}")
    record = records.update(folder, state="RUNNING")
    log(f"service {name} is up at {record['url']} ({model_ref}, {instances} instance(s)"
        + (f", stops itself after {auto_stop:g} s" if auto_stop else "")
        + (", answers only you" if record["access"] == "owner" else "") + ")")
    log(f"try: curl -F images=@IMAGE.jpg {record['url']}/")
    if record.get("browser_url"):
        log(f"in your browser (through Jupyter's proxy): {record['browser_url']}/docs")
    return record


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _log_tail(folder: Path) -> str:
    try:
        lines = [ln for ln in (folder / "service.log").read_text(errors="replace").splitlines() if ln.strip()]
    except FileNotFoundError:
        return "no log"
    return lines[-1][:300] if lines else "no log"


def stop(name: str, grace: float | None = None) -> dict:
    """SIGTERM: the service drains (requests in flight finish) and exits; after ``grace``
    seconds (default: its deadline + 10) the whole process group is killed."""
    return SERVICES.stop(_dir(name), grace)


def start(name: str, log=print) -> dict:
    """Start a stopped (or failed) service again with the model and options it was deployed
    with, on the port it had when that port is still free (the seeds restart stopped services)."""
    record = refresh(_dir(name))
    if record["state"] in LIVE:
        raise LabkitError(f"service {name} is already running ({record.get('url')})",
                          f"stop it first ({artifacts.SERVICE.stop_command(name)}) to start it again")
    port = urlsplit(record["url"]).port if record.get("url") else record["port"]
    if port and not _port_free(record["host"], port):
        log(f"port {port} is taken now: service {name} starts on a free one")
        port = 0
    return deploy(record["model"], name=name, instances=record["instances"], auto_stop=record["auto_stop"],
                  port=port, host=record["host"], max_batch=record["max_batch"],
                  max_wait_ms=record["max_wait"] * 1000, max_body_mb=record["max_body"] / 1024 / 1024,
                  deadline_s=record["deadline"], log=log)


def _port_free(host: str, port: int) -> bool:
    """Can the server bind ``port``? (It sets SO_REUSEADDR, so closed connections do not count.)"""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def stop_all() -> list[dict]:
    return [stop(r["service"]) for r in list_services() if r["state"] in LIVE]


def predict(name: str, image: str | Path | bytes) -> dict:
    """Call a running service's predict API with an image (a file, or its bytes), as
    ``curl -F images=@FILE URL/`` does."""
    record = show(name)
    if record["state"] != "RUNNING":
        raise LabkitError(f"service {name} is {record['state']}", f"deploy it: labkit service deploy {record['model']}")
    if isinstance(image, bytes):
        data, filename = image, "upload"
    else:
        path = Path(image)
        if not path.is_file():
            raise LabkitError(f"no image file {image}", "give the path of a .jpg or .png")
        data, filename = path.read_bytes(), path.name
    try:
        answer = httpx.post(record["url"] + "/", files={"images": (filename, data)}, timeout=record["deadline"] + 5)
    except httpx.TransportError as exc:
        raise LabkitError(f"service {name} did not answer: {exc}", "`labkit service list` shows its state") from None
    if answer.is_success:
        return answer.json()
    try:
        detail = answer.json().get("error_msg", answer.text)
    except ValueError:  # uvicorn's own answers (e.g. over its connection limit) are plain text
        detail = answer.text
    raise LabkitError(f"the service answered {answer.status_code}: {detail}",
                      "check the image; `labkit service list` shows the service's state")
