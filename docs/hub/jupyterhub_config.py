# JupyterHub for a labkit workshop room on one server (docs/HUB.md). Every learner gets a
# JupyterLab of their own, a labkit workspace of their own, 2 CPUs and 8 GB, and is stopped
# after an idle hour. tests/test_hub.py loads this file and checks what it sets.
import os
import shutil
import sys
from pathlib import Path

LABKIT = Path(os.environ.get("LABKIT_DIR", "/opt/labkit"))   # a clone of labkit after `make install`
LESSONS = os.environ.get("LABKIT_LESSONS", "en")              # "zh-CN" for a room that reads Chinese
c = get_config()  # noqa: F821 - JupyterHub's config loader provides it

# One JupyterLab per learner, from labkit's environment (pip install jupyterhub into it once:
# .venv/bin/pip install jupyterhub, the same version as the hub's).
c.Spawner.cmd = [str(LABKIT / ".venv" / "bin" / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab/tree/labkit-lessons"


def home(spawner) -> Path:
    return Path(os.path.expanduser(f"~{spawner.user.name}"))


def workspace(spawner) -> str:
    return str(home(spawner) / "labkit-workspace")


c.Spawner.environment = {
    "LABKIT_HOME": workspace,               # a workspace per learner: datasets, jobs, models, services
    "LABKIT_PROFILE": "workshop",
    "PATH": f"{LABKIT / '.venv' / 'bin'}:/usr/bin:/bin",   # kernels, msrun and torchrun start `python` from PATH
}
# Service links in the notebooks go through jupyter-server-proxy (installed with labkit): the
# hub sets JUPYTERHUB_SERVICE_PREFIX in each learner's server, and labkit reads it.


def copy_lessons(spawner) -> None:
    """Each learner edits a copy of the lessons of their own (the hub runs as root: hand it over)."""
    target = home(spawner) / "labkit-lessons"
    if not target.exists():
        source = LABKIT / "notebooks" / ("" if LESSONS == "en" else LESSONS)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("zh-CN", "labs"))
        for path in [target, *target.rglob("*")]:
            shutil.chown(path, user=spawner.user.name)


c.Spawner.pre_spawn_hook = copy_lessons
if LESSONS != "en":   # JupyterLab's interface in the lessons' language
    c.Spawner.args = [f"--LabApp.app_settings_dir={LABKIT / 'notebooks' / LESSONS / '.jupyterlab'}"]

# Resource limits: enforced by spawners that run each learner in a cgroup (SystemdSpawner,
# DockerSpawner); labkit sizes every thread pool by the cgroup's CPU quota.
c.Spawner.cpu_limit = 2
c.Spawner.mem_limit = "8G"

# Idle culling: stop a learner's server after an hour without activity (pip install jupyterhub-idle-culler).
c.JupyterHub.services = [{"name": "idle-culler",
                          "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=3600"]}]
c.JupyterHub.load_roles = [{"name": "idle-culler", "services": ["idle-culler"],
                            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]}]
