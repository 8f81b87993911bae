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


def test_environment_yml_names_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str) and d not in ("pip",)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = pins([d for d in conda if not d.startswith("python=")] + pip)
    assert listed == wanted
    assert "python=3.11" in conda


def test_import_labkit_does_not_import_engines():
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import labkit, labkit.data, labkit.cli"],
                          capture_output=True, text=True, check=True)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert "labkit" in imported
    assert not imported & {"torch", "mindspore", "onnxruntime", "matplotlib", "pandas", "sklearn", "scipy"}
