"""Service URLs a learner's browser can open when Jupyter runs on another machine.

A service listens on 127.0.0.1 of the machine its kernel runs on. Under JupyterHub, or any
remote Jupyter with jupyter-server-proxy, the browser reaches port P at ``<base>proxy/P/``.
JupyterHub tells each user's server its base in ``JUPYTERHUB_SERVICE_PREFIX`` (``/user/NAME/``);
``LABKIT_PROXY_PREFIX`` gives another one (e.g. ``https://lab.example.org/jupyter/``). The
service is then started with that path as its ASGI root path, so that ``/docs`` asks for its
scripts and ``openapi.json`` under the proxy too (docs/HUB.md).
"""
from __future__ import annotations

import os
from urllib.parse import urlsplit

PREFIX_VARIABLES = ("LABKIT_PROXY_PREFIX", "JUPYTERHUB_SERVICE_PREFIX")   # the first one set wins


def prefix() -> str | None:
    """The base jupyter-server-proxy serves under, ending in ``/``; None on a learner's own machine."""
    for variable in PREFIX_VARIABLES:
        if os.environ.get(variable):
            return os.environ[variable].rstrip("/") + "/"
    return None


def shared_server() -> bool:
    """Does this Jupyter run under JupyterHub, on a server other users share? (Then a service
    answers only its owner: ``labkit.serve.peers``.)"""
    return bool(os.environ.get("JUPYTERHUB_SERVICE_PREFIX"))


def browser_url(port: int) -> str | None:
    """Where the learner's browser reaches a service on ``port`` (None: at its own URL)."""
    base = prefix()
    return f"{base}proxy/{port}" if base else None


def root_path(port: int) -> str:
    """The path part of ``browser_url``: the service's ASGI root path ("" without a proxy)."""
    return urlsplit(browser_url(port) or "").path
