"""Datasets in the workspace: ``datasets/NAME/`` holds the images, an item index
(``items.jsonl``), a record (``dataset.json``), an import report and its versions.

A dataset is built in a staging directory and renamed into place whole, so a killed
``make`` or ``import`` leaves nothing that looks like a dataset.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from labkit import schemas, workspace
from labkit.artifacts import DATASET
from labkit.errors import LabkitError
from labkit.tasks import COUNTING



def root() -> Path:
    return DATASET.root()


def path(name: str) -> Path:
    return root() / workspace.check_name(name, "dataset name")


def record(name: str) -> dict:
    """The record of dataset ``name``; a clear error naming the datasets there are if absent."""
    try:
        return schemas.read(path(name) / "dataset.json", schemas.Dataset)
    except FileNotFoundError:
        known = ", ".join(d["name"] for d in list_all()) or "none yet"
        raise LabkitError(f"no dataset named {name!r} (datasets: {known})",
                          "make one with `labkit data make` or import one with `labkit data import`") from None


def items(name: str) -> list[dict]:
    """The dataset's items, each checked (``schemas.Item``: its file a safe relative path; what
    an item of the dataset's task needs)."""
    where = path(name) / "items.jsonl"
    return schemas.check_items(schemas.read_lines(where, schemas.Item), record(name)["task"], str(where))


def list_all() -> list[dict]:
    """Every dataset's record with its versions; a damaged one is skipped with a warning."""
    folders = [d for d in sorted(root().iterdir())
               if d.is_dir() and not d.name.startswith(".") and (d / "dataset.json").exists()]
    return list(workspace.readable(folders, lambda d: {**schemas.read(d / "dataset.json", schemas.Dataset),
                                                       "versions": workspace.versions(d / "versions")}))


def install(staged: Path, name: str, task: str, entries: list[dict], source: dict, report: dict | None = None) -> dict:
    """Write the index and record into ``staged`` and move it into place as dataset ``name``."""
    labels = sorted({e["label"] for e in entries if "label" in e})
    class_counts = {c: sum(e.get("label") == c for e in entries) for c in labels}
    rec = {"name": name, "task": task, "classes": labels, "count": len(entries), "source": source,
           "created": workspace.now(), "class_counts": class_counts}
    if task == COUNTING:
        counts = [e["count"] for e in entries]
        rec["heads"] = {"total": int(sum(counts)), "min": int(min(counts, default=0)),
                        "max": int(max(counts, default=0))}
    with open(staged / "items.jsonl", "w", encoding="utf-8") as f:
        for e in entries:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    if report is not None:
        rec["skipped"] = len(report.get("skipped", [])) + len(report.get("refused", []))
        workspace.write_json(staged / "import_report.json", report)
    workspace.write_json(staged / "dataset.json", rec)
    with workspace.locked(root()):
        target = path(name)
        if target.exists():
            raise already_exists(name)
        os.rename(staged, target)
    return rec


def already_exists(name: str) -> LabkitError:
    return LabkitError(f"a dataset named {name!r} already exists in {root()}",
                       f"choose another --name, or delete {root() / name} to replace it")


def staging() -> Path:
    workspace.remove_stale_staging(root())
    return workspace.staging_dir(root())


def discard(staged: Path) -> None:
    shutil.rmtree(staged, ignore_errors=True)
