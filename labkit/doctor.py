"""``labkit doctor``: is this machine ready for the labs? Each check says how to fix it.

Engines are probed in a child process: importing MindSpore and PyTorch takes seconds
and memory, and a broken install must not take the doctor down with it.
"""
from __future__ import annotations

import json
import platform
import shutil
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from importlib import metadata

from labkit import cpu, engine_paths, workspace
from labkit.errors import LabkitError

MIN_FREE_GB = 2.0
SERVICE_PORT = 8080  # the port `labkit service deploy` tries first
# What a lab's results and a pack's content depend on: run.json and pack manifests record them
PACKAGES = ("labkit", "mindspore", "torch", "onnx", "onnxruntime", "numpy", "pillow", "papermill")

ENGINE_PROBES = {
    "pytorch": "import json, torch; print(json.dumps({'version': torch.__version__, "
               "'devices': ['cpu (' + torch.backends.cpu.get_cpu_capability() + ' kernels)'] "
               "+ (['gpu'] if torch.cuda.is_available() else [])}))",
    "mindspore": "import json, shutil, mindspore as ms; print(json.dumps({'version': ms.__version__, "
                 "'devices': ['cpu'] + (['gpu'] if shutil.which('nvidia-smi') else []) "
                 "+ (['ascend'] if shutil.which('npu-smi') else [])}))",
    "onnxruntime": "import json, onnxruntime as ort; print(json.dumps({'version': ort.__version__, "
                   "'devices': ort.get_available_providers()}))",
}
INSTALL_HINT = "run `make install` (it creates .venv with every engine), then use .venv/bin/labkit"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def probe_engine(engine: str, timeout: float = 120) -> dict | None:
    """``{"version", "devices"}`` if ``engine`` imports in a fresh interpreter, else None."""
    try:
        out = subprocess.run([sys.executable, "-c", ENGINE_PROBES[engine]], capture_output=True, text=True,
                             timeout=timeout, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, json.JSONDecodeError, IndexError):
        return None


def checks() -> list[Check]:
    found = [Check("python", (3, 11) <= sys.version_info[:2] <= (3, 12), f"{platform.python_version()} ({sys.executable})",
                   "labkit needs Python 3.11 or 3.12, the versions every pinned engine has wheels for")]
    machine = cpu.describe()
    found.append(Check("cpu", machine["features"] is None or "AVX2" in machine["features"],
                       f"{cpu.summary(machine)}\n{'':18}{cpu.int8_outlook(machine['features'])}"
                       f"\n{'':18}{cpu.native_precisions(machine['features'])}",
                       "the labs are measured on CPUs with AVX2; this one will be much slower"))
    installed = []
    for engine in ENGINE_PROBES:
        info = probe_engine(engine)
        installed += [engine] if info else []
        found.append(Check(engine, info is not None,
                           f"{info['version']} on {', '.join(info['devices'])}" if info else "does not import",
                           INSTALL_HINT))
    try:
        home = workspace.home()
        probe = home / f".doctor-{uuid.uuid4().hex}"
        probe.write_text("ok")
        probe.unlink()
        found.append(Check("workspace", True, f"{home} is writable"))
        found += [path_check(engine, home) for engine in installed if engine in engine_paths.ENGINE_PATH_RULES]
        free = shutil.disk_usage(home).free / 2**30
        found.append(Check("disk", free >= MIN_FREE_GB, f"{free:.1f} GB free in the workspace",
                           f"free at least {MIN_FREE_GB} GB, or set LABKIT_HOME to a larger disk"))
    except Exception as exc:  # any failure here means the workspace is unusable
        found.append(Check("workspace", False, str(exc), "set LABKIT_HOME to a writable directory"))
    found.append(_port_check())
    return found


def path_check(engine: str, home) -> Check:
    """Whether ``engine`` can write where the workspace is, directly or through a temporary folder."""
    name = "engine paths"
    try:
        engine_paths.check(engine, home)
    except LabkitError as exc:
        return Check(name, False, exc.message, exc.hint)
    if engine_paths.accepts(engine, home):
        return Check(name, True, f"{engine} writes at the workspace's path")
    rule = engine_paths.ENGINE_PATH_RULES[engine][1]
    return Check(name, True, f"{engine} exports only under a path of {rule}; labkit exports through "
                 f"{engine_paths.temp_root(engine)}")


def _port_check() -> Check:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", SERVICE_PORT))
            return Check("port", True, f"127.0.0.1:{SERVICE_PORT} is free for services")
        except OSError:
            pass
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            return Check("port", True, f"127.0.0.1:{SERVICE_PORT} is taken; services will use a free port such as {port}")
        except OSError as exc:
            return Check("port", False, f"cannot listen on 127.0.0.1: {exc}", "allow local TCP listening sockets")


def package_versions() -> dict:
    """The installed version of each of ``PACKAGES`` (None: not installed)."""
    found = {}
    for pkg in PACKAGES:
        try:
            found[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            found[pkg] = None
    return found
