"""The install: environment.yml matches pyproject.toml, and importing labkit stays light."""
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
    wanted = pins(project["dependencies"] + project["optional-dependencies"]["dev"])
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
    proc.write_text("12:cpu:/old-v1-hierarchy\n")  # cgroup v1 only: nothing to read
    assert cpu.cgroup_quota(root, proc) is None
    # a process allowed one CPU sizes its pools by one, whatever the machine has
    code = "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); from labkit import cpu; print(cpu.cores())"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "1"
