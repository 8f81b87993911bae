"""The service's process: ``python -m labkit.serve.server SERVICE_DIR`` (started by
``labkit service deploy``, in its own session).

It binds the socket (127.0.0.1 unless told otherwise; port 0 picks a free one, written to the
record), then runs uvicorn: in this process for one instance, or as uvicorn's supervisor of N
worker processes sharing the socket, each with its own ONNX Runtime session. SIGTERM drains:
readiness goes false, requests in flight finish, then the process exits and the record says
STOPPED. ``auto_stop`` sends that SIGTERM after the given seconds.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from pathlib import Path

import uvicorn

from labkit import records
from labkit.serve import proxy
from labkit.serve.app import create_app
from labkit.serve.endpoints import Settings

SERVICE_DIR_ENV = "LABKIT_SERVICE_DIR"


def app_factory():
    """What each instance serves (uvicorn imports this in every worker process)."""
    run = Path(os.environ[SERVICE_DIR_ENV])
    rec = records.read(run)
    settings = Settings(model_dir=Path(rec["model_dir"]), service=rec["service"],
                         model_name=rec["model"].split("@")[0], model_version=rec["model"].split("@")[1],
                         max_body=rec["max_body"], deadline=rec["deadline"], max_batch=rec["max_batch"],
                         max_wait=rec["max_wait"], threads=rec["threads"], owner_only=rec.get("access") == "owner")
    return create_app(settings)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio turns Nagle's algorithm off only on sockets that say they are
    # TCP; with proto 0, keep-alive clients waited 40 ms (a delayed ACK) for every answer.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def main(run_dir: str) -> int:
    run = Path(run_dir)
    rec = records.read(run)
    os.environ[SERVICE_DIR_ENV] = str(run)
    try:
        sock = _bind(rec["host"], rec["port"])
    except OSError as exc:
        records.finish(run, "FAILED", reason=f"cannot listen on {rec['host']}:{rec['port']}: {exc.strerror}")
        return 1
    port = sock.getsockname()[1]
    # browser_url: the same service through jupyter-server-proxy, when Jupyter runs elsewhere
    records.update(run, port=port, url=f"http://{rec['host']}:{port}", browser_url=proxy.browser_url(port))
    if rec.get("auto_stop"):
        def auto_stop():
            records.update(run, stop_reason=f"auto-stop after {rec['auto_stop']} s")
            os.kill(os.getpid(), signal.SIGTERM)

        timer = threading.Timer(rec["auto_stop"], auto_stop)
        timer.daemon = True
        timer.start()
    config = uvicorn.Config("labkit.serve.server:app_factory", factory=True, workers=rec["instances"],
                            log_level="warning", access_log=False, timeout_graceful_shutdown=int(rec["deadline"]) + 5,
                            limit_concurrency=rec["max_connections"], timeout_keep_alive=30,
                            # the client is the socket's peer, never what a proxy's X-Forwarded-For
                            # says: the owner check (peers) asks the kernel who that peer is
                            proxy_headers=False,
                            root_path=proxy.root_path(port))
    # uvicorn re-raises the SIGTERM it handled once it has shut down; the default action would
    # end this process before the record says STOPPED, so make that second delivery harmless.
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        if rec["instances"] > 1:
            from uvicorn.supervisors import Multiprocess

            Multiprocess(config, sockets=[sock]).run()
        else:
            uvicorn.Server(config).run(sockets=[sock])
    except Exception as exc:  # the service could not start (a broken model...): say why in the record
        records.finish(run, "FAILED", reason=f"{type(exc).__name__}: {exc}"[:500])
        raise
    reason = records.read(run).get("stop_reason", "stopped (SIGTERM)")
    records.finish(run, "STOPPED", reason=reason)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
