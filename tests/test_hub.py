"""A workshop room on one server: a real Jupyter server with jupyter-server-proxy, under a
JupyterHub-style base URL, and a labkit service reached through it the way a learner's browser
does (docs/HUB.md)."""
import os
import re
import socket
import subprocess
import sys
import time

import httpx
import pytest

from helpers import val_images
from labkit.serve import services

pytestmark = pytest.mark.slow

PREFIX = "/user/learner/"   # what JupyterHub puts in JUPYTERHUB_SERVICE_PREFIX


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyter(tmp_path):
    """A Jupyter server serving under PREFIX, its token 't'; yields its origin."""
    port = free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    server = subprocess.Popen([sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}",
                               f"--ServerApp.base_url={PREFIX}", "--IdentityProvider.token=t", "--allow-root",
                               f"--ServerApp.root_dir={tmp_path}"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    origin = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{origin}{PREFIX}api/status", headers={"Authorization": "token t"}).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        yield origin
    finally:
        server.terminate()
        server.wait(30)


def test_a_service_is_reached_through_jupyters_proxy_with_its_docs(models, jobs, jupyter, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", PREFIX)   # as in a JupyterHub user's kernel
    rec = services.deploy("flowers@0.0.1", name="hub", log=lambda *_: None)
    try:
        port = rec["port"]
        assert rec["browser_url"] == f"{PREFIX}proxy/{port}"
        browser = httpx.Client(base_url=jupyter, headers={"Authorization": "token t"}, timeout=30)
        assert browser.get(f"{rec['browser_url']}/health").json() == {"health": "true"}
        docs = browser.get(f"{rec['browser_url']}/docs")
        assert docs.status_code == 200
        # every URL the page loads is under the proxy, and answers there
        wanted = re.findall(r"""(?:url|src|href)\s*[:=]\s*['"](/[^'"]+)['"]""", docs.text)
        assert wanted and all(u.startswith(rec["browser_url"] + "/") for u in wanted), wanted
        for url in wanted:
            assert browser.get(url).status_code == 200, url
        assert browser.get(f"{rec['browser_url']}/openapi.json").json()["paths"]
        answer = browser.post(f"{rec['browser_url']}/", files={"images": ("x.png", val_images(jobs, "fl", n=1)[0])})
        assert answer.status_code == 200 and answer.json()["predicted_label"].startswith("颜色/")
        # the kernel (curl, services.predict) still calls the service directly
        assert httpx.get(f"{rec['url']}/health", timeout=10).status_code == 200
        assert services.predict("hub", val_images(jobs, "fl", n=1)[0])["predicted_label"].startswith("颜色/")
    finally:
        services.stop("hub")


def test_tensorboard_is_reached_through_jupyters_proxy(jobs, jupyter, monkeypatch):
    from labkit import train

    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", PREFIX)
    rec = train.tensorboard(["rn"], log=lambda *_: None)
    try:
        assert rec["browser_url"] == f"{PREFIX}proxy/{rec['port']}/"
        browser = httpx.Client(base_url=jupyter, headers={"Authorization": "token t"}, timeout=30)
        page = browser.get(rec["browser_url"])
        assert page.status_code == 200 and "<tb-webapp>" in page.text
        # the page asks for its scripts and data by relative URLs: under the proxy, they answer there
        scripts = re.findall(r"""src=['"]([^'"/][^'"]*)['"]""", page.text)
        assert scripts and all(browser.get(rec["browser_url"] + u).status_code == 200 for u in scripts), scripts
        for _ in range(60):
            if browser.get(rec["browser_url"] + "data/runs").json() == ["rn@V001"]:
                break
            time.sleep(0.5)
        values = browser.get(rec["browser_url"] + "data/plugin/scalars/scalars", params={"run": "rn@V001", "tag": "loss"})
        assert [step for _, step, _ in values.json()] == [1, 2, 3]
    finally:
        train.stop_tensorboard()


def test_without_a_proxy_the_service_is_opened_at_its_own_url(models, jobs, monkeypatch):
    for variable in ("JUPYTERHUB_SERVICE_PREFIX", "LABKIT_PROXY_PREFIX"):
        monkeypatch.delenv(variable, raising=False)
    rec = services.deploy("flowers@0.0.1", name="laptop", log=lambda *_: None)
    try:
        assert rec["browser_url"] is None
        assert "/static-offline-docs/swagger-ui-bundle.js" in httpx.get(f"{rec['url']}/docs", timeout=10).text
    finally:
        services.stop("laptop")


def test_the_proxy_prefix_comes_from_the_hub_or_from_labkit(monkeypatch):
    from labkit.serve import proxy

    monkeypatch.delenv("LABKIT_PROXY_PREFIX", raising=False)
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ana")
    assert (proxy.browser_url(8080), proxy.root_path(8080)) == ("/user/ana/proxy/8080", "/user/ana/proxy/8080")
    monkeypatch.setenv("LABKIT_PROXY_PREFIX", "https://lab.example.org/jupyter/")   # a remote Jupyter without a hub
    assert proxy.browser_url(8080) == "https://lab.example.org/jupyter/proxy/8080"
    assert proxy.root_path(8080) == "/jupyter/proxy/8080"
