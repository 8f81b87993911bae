"""The install: environment.yml matches pyproject.toml, and importing labkit stays light."""
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def pins(specs) -> dict[str, str]:
    out = {}
    for spec in specs:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)(?:\[[a-z,]+\])?\s*={1,2}\s*([^\s;]+)\s*", spec)
        assert m, f"not pinned to one version: {spec!r}"
        out[m.group(1).lower()] = m.group(2)
    return out


# conda-forge's names where they differ from PyPI's
CONDA_NAMES = {"prometheus_client": "prometheus-client"}


def test_environment_yml_names_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    dev = [d for d in extras["dev"] if not d.startswith("labkit[")]   # labkit's own extras, listed below
    included = [extra for d in extras["dev"] if d.startswith("labkit[") for extra in d[7:-1].split(",")]
    wanted = pins(project["dependencies"] + dev + [d for extra in included for d in extras[extra]])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str) and d not in ("pip",)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {CONDA_NAMES.get(name, name): version
              for name, version in pins([d for d in conda if not d.startswith("python=")]).items()} | pins(pip)
    assert listed == wanted
    assert "python=3.11" in conda


def test_import_labkit_does_not_import_engines():
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import labkit, labkit.data, labkit.cli"],
                          capture_output=True, text=True, check=True)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert "labkit" in imported
    assert not imported & {"torch", "mindspore", "onnxruntime", "matplotlib", "pandas", "sklearn", "scipy"}


def test_thread_pools_follow_the_cpu_quota(tmp_path):
    from labkit import cpu

    root = tmp_path / "cgroup"
    (root / "hub" / "user-ada").mkdir(parents=True)
    proc = tmp_path / "proc-cgroup"
    proc.write_text("0::/hub/user-ada\n")
    assert cpu.cgroup_quota(root, proc) is None  # no cpu.max anywhere: no quota
    (root / "hub" / "user-ada" / "cpu.max").write_text("max 100000\n")
    assert cpu.cgroup_quota(root, proc) is None
    (root / "hub" / "cpu.max").write_text("150000 100000\n")  # the parent's limit holds for its children
    assert cpu.cgroup_quota(root, proc) == 1.5
    (root / "hub" / "user-ada" / "cpu.max").write_text("50000 100000\n")
    assert cpu.cgroup_quota(root, proc) == 0.5
    # cgroup v1 (this kind of host): the cpu controller's CFS quota, also up the tree
    proc.write_text("12:cpu,cpuacct:/hub/user-bo\n4:memory:/hub/user-bo\n0::/\n")
    v1 = root / "cpu,cpuacct" / "hub" / "user-bo"
    v1.mkdir(parents=True)
    assert cpu.cgroup_quota(root, proc) is None  # no quota files: nothing to read
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu.cgroup_quota(root, proc) is None  # -1: no quota
    (v1.parent / "cpu.cfs_quota_us").write_text("200000\n")
    (v1.parent / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu.cgroup_quota(root, proc) == 2.0
    (v1 / "cpu.cfs_quota_us").write_text("50000\n")
    assert cpu.cgroup_quota(root, proc) == 0.5
    # a process allowed one CPU sizes its pools by one, whatever the machine has
    code = "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); from labkit import cpu; print(cpu.cores())"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "1"


def install_commands(tmp_path, env: dict, **variables) -> str:
    """What `make install` would run for a new venv, with this pip environment and these variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | env
    # a venv not made yet (relative to the clone, as the README's is)
    args = [f"{k}={v}" for k, v in {"VENV": f".venv-absent-{tmp_path.name}", **variables}.items()]
    return subprocess.run(["make", "-n", "install", *args], cwd=ROOT, env=clean, capture_output=True, text=True,
                          check=True).stdout


def test_on_linux_install_takes_torch_from_the_cpu_index_unless_pip_has_its_own(tmp_path):
    """Without a configured index, torch comes from PyTorch's CPU index first (not PyPI's CUDA
    build); a pip configuration with an index or wheel folder, a wheelhouse, or TORCH_INDEX=
    leaves the choice to pip."""
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\ntimeout = 60\n")
    cpu = "--index-url https://download.pytorch.org/whl/cpu 'torch==2.13.0'"
    quoted = f'"{conf}"'   # shell words: a home folder's name may have spaces, as tmp_path's has
    assert cpu in install_commands(tmp_path, {}, PIP_CONFIG_FILES=quoted)
    conf.write_text("[global]\nextra-index-url = https://mirror.example/simple\n")
    assert "download.pytorch.org" not in install_commands(tmp_path, {}, PIP_CONFIG_FILES=quoted)
    assert "download.pytorch.org" not in install_commands(tmp_path, {"PIP_FIND_LINKS": "/wheels"}, PIP_CONFIG_FILES="")
    assert "download.pytorch.org" not in install_commands(tmp_path, {}, PIP_CONFIG_FILES="", WHEELHOUSE=tmp_path)
    assert "--index-url" not in install_commands(tmp_path, {}, PIP_CONFIG_FILES="", TORCH_INDEX="")
    assert cpu in install_commands(tmp_path, {"PIP_CONFIG_FILE": os.devnull})  # pip then reads no config file


def test_install_asks_for_python_3_11_or_3_12_and_says_how_to_get_it(tmp_path):
    old = subprocess.run(["make", "install", f"VENV={tmp_path / 'venv'}", "PYTHON=python3.10"], cwd=ROOT,
                         capture_output=True, text=True)
    assert old.returncode != 0 and "needs Python 3.11 or 3.12" in old.stdout and "Ubuntu 24.04" in old.stdout
    assert not (tmp_path / "venv").exists()
