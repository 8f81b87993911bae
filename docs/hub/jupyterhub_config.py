# JupyterHub for a labkit workshop room on one server (docs/HUB.md). Every learner logs in with
# their Unix account and gets a JupyterLab, a labkit workspace and a copy of the lessons of their
# own (mode 0700), a share of the cores, and is stopped after an idle hour; what they left running
# stops with their server. Admins (the instructors) see the whole room at /services/labkit-room/.
# `make hub` starts it; tests/test_hub.py runs it with three learners at once.
import os
import shutil
import sys
from pathlib import Path

from labkit.room import seats

LABKIT = Path(os.environ.get("LABKIT_DIR", "/opt/labkit"))    # a clone of labkit after `make install`
VENV = Path(os.environ.get("LABKIT_VENV", LABKIT / ".venv"))  # its environment, made from a Python every user can run
LESSONS = os.environ.get("LABKIT_LESSONS", "en")               # "zh-CN" for a room that reads Chinese
CORES_PER_LEARNER = int(os.environ.get("LABKIT_CORES_PER_LEARNER", "2"))
c = get_config()  # noqa: F821 - JupyterHub's config loader provides it

problem = seats.unusable_environment(VENV)
if problem:
    sys.exit(f"labkit's environment cannot serve learners: {problem}")

# Learners are the server's Unix users (JupyterHub's default PAM authenticator): one account
# per seat, all of them allowed; the instructors are admins.
c.Authenticator.allow_all = True
c.Authenticator.admin_users = set(os.environ.get("LABKIT_INSTRUCTORS", "").split())

# One JupyterLab per learner, from labkit's environment.
SINGLEUSER = [str(VENV / "bin" / "jupyterhub-singleuser")]
c.Spawner.cmd = SINGLEUSER
c.Spawner.default_url = f"/lab/tree/{seats.LESSONS}"
c.Spawner.http_timeout = c.Spawner.start_timeout = 180   # a room logging in at once shares the cores
c.Spawner.environment = {
    "LABKIT_HOME": lambda spawner: str(seats.home(spawner.user.name) / seats.WORKSPACE),
    "LABKIT_PROFILE": "workshop",
    "PATH": f"{VENV / 'bin'}:/usr/bin:/bin",   # kernels, msrun and torchrun start `python` from PATH
}
# Service links in the notebooks go through jupyter-server-proxy (installed with labkit): the
# hub sets JUPYTERHUB_SERVICE_PREFIX in each learner's server, and labkit reads it; a learner's
# service then answers only its learner.

# CPU: the default LocalProcessSpawner enforces no quota, so each learner's server is pinned to
# CORES_PER_LEARNER cores (in turn; neighbours share when learners outnumber them), and labkit
# sizes its threads by them. With SystemdSpawner or DockerSpawner, drop `pinned` and let
# cpu_limit / mem_limit (a cgroup quota, which labkit follows too) do it.
CORES = seats.Cores(CORES_PER_LEARNER)
c.Spawner.cpu_limit = CORES_PER_LEARNER
c.Spawner.mem_limit = "8G"


PYTHON = str(VENV / "bin" / "python")


async def prepare_seat(spawner) -> None:
    """A private workspace, a private copy of the lessons (the first time), the learner's cores."""
    lessons = LABKIT / "notebooks" / ("" if LESSONS == "en" else LESSONS)
    await seats.as_learner(spawner.user.name, PYTHON, "prepare", str(lessons), log=spawner.log.info)
    spawner.cmd = CORES.pinned(spawner.user.name, SINGLEUSER)


async def clean_up_seat(spawner) -> None:
    """Culled or stopped: stop what the learner left running (not services with --auto-stop)."""
    await seats.as_learner(spawner.user.name, PYTHON, "stop", log=spawner.log.info)


c.Spawner.pre_spawn_hook = prepare_seat
c.Spawner.post_stop_hook = clean_up_seat
# A terminal is an interactive bash, not a login shell (Jupyter's default under a hub), whose
# /etc/profile would put labkit's environment off PATH.
c.Spawner.args = ["--ServerApp.terminado_settings=shell_command=['/bin/bash']"]
if LESSONS != "en":   # JupyterLab's interface in the lessons' language
    c.Spawner.args += [f"--LabApp.app_settings_dir={LABKIT / 'notebooks' / LESSONS / '.jupyterlab'}"]

# JupyterHub's proxy (Node.js): `make hub` installs it in docs/hub/node_modules.
PROXY = LABKIT / "docs" / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
c.ConfigurableHTTPProxy.command = [str(PROXY) if PROXY.exists() else shutil.which("configurable-http-proxy")
                                   or "configurable-http-proxy"]

# Idle culling: stop a learner's server after an hour without activity. The room's page, for
# admins, reads each workspace as its learner: with labkit's environment, which they can run.
c.JupyterHub.services = [
    {"name": "idle-culler", "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=3600"]},
    {"name": "labkit-room", "command": [PYTHON, "-m", "labkit.room.page"], "url": f"http://127.0.0.1:{os.environ.get('LABKIT_ROOM_PORT', '10101')}",
     "oauth_no_confirm": True, "display": True,
     "environment": {"LABKIT_ROOM_HOMES": os.environ.get("LABKIT_ROOM_HOMES", "")}},
]
c.JupyterHub.load_roles = [{"name": "idle-culler", "services": ["idle-culler"],
                            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]}]
