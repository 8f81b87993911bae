"""Workspace hygiene: delete what a learner no longer needs, and free the disk that epoch
checkpoints take (``labkit status`` shows what the workspace holds).

Every artifact names what it was made from -- a job its dataset version and pre-trained job,
a conversion its job, a model its job or conversion, a service its model -- so what uses an
artifact is found by reading the records. A delete refuses what a record still names, listing
those records, unless forced; what is running, or used by something running, is never
deleted from under its process, forced or not. A directory being deleted is first renamed
aside (a staging name, under its parent's lock), so it vanishes whole: a killed delete leaves
no half version, and the next publish there sweeps the leftover away.
"""
from __future__ import annotations

import os
from pathlib import Path

from labkit import records, workspace
from labkit.artifacts import BY_KIND, CONVERSION, DATASET, JOB, MODEL, VERSIONED, Artifact
from labkit.errors import LabkitError

KINDS = VERSIONED  # what ``delete`` deletes


def _targets(kind: str, ref: str) -> tuple[Path, list[str]]:
    """The directory that ``ref`` names (one version, or a whole name with all its versions)
    and the ``NAME@VERSION`` refs it holds, as other records spell them."""
    from labkit import data, registry

    name, _, version = ref.partition("@")
    if kind == "dataset":
        data.show(ref)  # a clear error if there is no such dataset or version
        parent, numbering = data.datasets.path(name) / "versions", DATASET.numbering
        found = data.version_dir(ref) if version else data.datasets.path(name)
    else:
        runs = _runs().get(kind)
        located = runs.dir(ref) if runs else registry.model_dir(ref)
        parent, numbering = located.parent, BY_KIND[kind].numbering
        found = located if version else parent
    held = [version] if version else workspace.versions(parent, numbering)
    return found, [f"{name}@{v}" for v in held]


def _records(artifact: Artifact) -> list[dict]:
    """Every version's record of a versioned area that keeps ``run.json`` (jobs, conversions, models)."""
    root, schema = artifact.root(), artifact.schema
    runs = [folder / version for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
            for version in workspace.versions(folder, artifact.numbering)]
    return list(workspace.readable(runs, lambda run: {**records.read(run, schema),
                                                      "_ref": f"{run.parent.name}@{run.name}"}))


def users(kind: str, refs: list[str]) -> list[dict]:
    """The records that name one of ``refs`` (of ``kind``): ``{"what", "ref", "running"}``, and
``why`` where the link is not the obvious one."""
    from labkit.serve import services

    runs, names = _runs(), {r.split("@")[0] for r in refs}
    found = []
    if kind == "dataset":
        for r in _records(JOB):
            if r["dataset"] in refs:
                found.append({"what": "job", "ref": r["_ref"], "running": _running(runs["job"], r["_ref"])})
    if kind == "job":
        for r in _records(JOB):
            if r["hyper"].get("pretrained_weight") in names | set(refs):
                found.append({"what": "job", "ref": r["_ref"], "running": _running(runs["job"], r["_ref"]),
                              "why": "fine-tuned from it"})
        for r in _records(CONVERSION):
            if r["job"] in refs:
                found.append({"what": "conversion", "ref": r["_ref"],
                              "running": _running(runs["conversion"], r["_ref"])})
    if kind in ("job", "conversion"):
        for r in _records(MODEL):
            if r["source"]["kind"] == kind and r["source"]["ref"] in refs:
                found.append({"what": "model", "ref": r["_ref"], "running": False})
    if kind == "model":
        for r in services.list_services():
            if r["model"] in refs:
                found.append({"what": "service", "ref": r["service"], "running": r["state"] in services.LIVE})
    return found


def _running(kind: records.Kind, ref: str) -> bool:
    """Is run ``ref`` (NAME@VERSION) of ``kind`` still going (after a look at its process)?"""
    return kind.show(ref)["state"] not in records.TERMINAL


def _stop_hint(user: dict) -> str:
    return BY_KIND[user["what"]].stop_command(user["ref"])


def delete(kind: str, ref: str, force: bool = False, log=print) -> dict:
    """Delete dataset, job, conversion or model ``ref`` (``NAME@VERSION``, or ``NAME``: all its
    versions). Refuses, with the reason, what is running or used by something running, and
    (unless ``force``) what a later artifact names. Returns what was deleted and the bytes freed."""
    if kind not in KINDS:
        raise LabkitError(f"unknown kind {kind!r}", f"use one of {', '.join(KINDS)}")
    folder, refs = _targets(kind, ref)
    own = _own_running(kind, refs)
    if own:
        raise LabkitError(f"{kind} {own} is still running, so it cannot be deleted",
                          f"stop it first: {_stop_hint({'what': kind, 'ref': own})}")
    found = users(kind, refs)
    busy = [u for u in found if u["running"]]
    if busy:
        raise LabkitError(f"{kind} {ref} is used by {_listed(busy)}, which {'is' if len(busy) == 1 else 'are'} running",
                          "stop it first: " + "; ".join(_stop_hint(u) for u in busy))
    if found and not force:
        raise LabkitError(f"{kind} {ref} is used by {_listed(found)}",
                          "delete those first, or add --force to delete it anyway (their records then name "
                          "something that is gone)")
    freed = workspace.remove(folder)
    if kind != "dataset" and "@" in ref and not workspace.versions(folder.parent, BY_KIND[kind].numbering):
        workspace.remove(folder.parent)  # its last version: the name goes too
    log(f"deleted {kind} {ref} ({', '.join(refs) or 'no versions'}): {workspace.size_text(freed)} freed")
    return {"kind": kind, "ref": ref, "deleted": refs, "freed_bytes": freed, "users": found}


def _runs() -> dict[str, records.Kind]:
    """The versioned kinds that run, by kind: their records find, show and refresh a run."""
    from labkit import convert, train

    return {"job": train.jobs.JOBS, "conversion": convert.conversions.CONVERSIONS}


def _own_running(kind: str, refs: list[str]) -> str | None:
    """The first of ``refs`` still running, for the kinds that run (jobs and conversions)."""
    runs = _runs().get(kind)
    return next((r for r in refs if _running(runs, r)), None) if runs else None


def _listed(found: list[dict]) -> str:
    shown = ", ".join(f"{u['what']} {u['ref']}" + (f" ({u['why']})" if u.get("why") else "") for u in found[:5])
    return shown + (f" and {len(found) - 5} more" if len(found) > 5 else "")


def _plain(path: Path) -> bool:
    """A regular file, not a link (a link's target is not the job's to delete)."""
    return path.is_file() and not path.is_symlink()


def gc(dry_run: bool = False, log=print) -> dict:
    """Free the disk of epoch checkpoints: each job version that is not running keeps its
    best checkpoint (a hard link to its best epoch's) and its last epoch's (``resume`` starts
    from it); the other epochs' files go. Returns each file removed and the bytes freed."""
    removed, freed = [], 0
    for record in _records(JOB):
        if _running(_runs()["job"], record["_ref"]):
            continue
        run = JOB.root() / record["_ref"].replace("@", os.sep)
        epochs = sorted(p for p in (run / "output" / "checkpoints").glob("epoch_*") if _plain(p))
        best = {(p.stat().st_dev, p.stat().st_ino) for p in (run / "output" / "checkpoints").glob("best.*") if _plain(p)}
        for path in epochs[:-1]:
            st = path.stat()
            if (st.st_dev, st.st_ino) in best:
                continue
            removed.append({"job": record["_ref"], "file": str(path), "bytes": st.st_size})
            freed += st.st_size if st.st_nlink == 1 else 0
            if not dry_run:
                path.unlink()
    verb = "would free" if dry_run else "freed"
    log(f"{len(removed)} epoch checkpoint(s) of {len({r['job'] for r in removed})} job(s): {verb} {workspace.size_text(freed)}")
    return {"dry_run": dry_run, "removed": removed, "freed_bytes": freed}

