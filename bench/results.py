"""Every benchmark's figures as a result file, which the docs' tables are generated from
(bench/docs.py, `make docs`).

A file is ``bench/results/<bench>/<date>-<cpu>.json``: the figures (what, value, unit), the CPU
(model, family, vector features, cores), the engines' versions, the profile, seeds and
arguments, the date and the commit. One file per benchmark, CPU and day: a rerun the same day
on the same CPU replaces it. Commit the file with the docs it changes.
"""
from __future__ import annotations

import json
import re
import subprocess
from datetime import date
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ENGINES = ("torch", "mindspore", "onnxruntime", "labkit")


def figure(key: str, what: str, value: float, unit: str, **context) -> dict:
    """One measured figure: ``key`` is what the docs ask for, ``what`` says it in words."""
    return {"key": key, "what": what, "value": round(float(value), 4), "unit": unit, **context}


def _commit() -> str:
    root = RESULTS.parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cpu_slug(info: dict) -> str:
    """The CPU as a file name: model and family, e.g. ``amd-epyc-family-25-model-1``."""
    return re.sub(r"[^a-z0-9]+", "-", f"{info['model']} {info.get('family') or ''}".lower()).strip("-")


def save(bench: str, figures: list[dict], *, profile: str | None = None, seeds: list[int] | None = None,
         arguments: dict | None = None) -> Path:
    """Write the run's result file and say where."""
    from labkit import cpu

    info = cpu.describe()
    today = date.today().isoformat()
    result = {"bench": bench, "date": today, "commit": _commit(), "cpu": info,
              "engines": {name: _version(name) for name in ENGINES}, "profile": profile, "seeds": seeds,
              "arguments": arguments or {}, "figures": figures}
    path = RESULTS / bench / f"{today}-{cpu_slug(info)}.json"
    if path.exists():
        keys = {f["key"] for f in figures}
        result["figures"] = [f for f in json.loads(path.read_text())["figures"] if f["key"] not in keys] + figures
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"results: {path.relative_to(RESULTS.parent.parent)} (make docs puts them into the docs)")
    return path


def load(bench: str | None = None) -> list[dict]:
    """Every result file (of one benchmark), oldest first, each with its ``path``."""
    files = sorted((RESULTS / bench if bench else RESULTS).rglob("*.json"))
    return sorted(({**json.loads(f.read_text()), "path": f} for f in files), key=lambda r: (r["date"], str(r["path"])))
