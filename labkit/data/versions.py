"""``labkit data publish``: immutable dataset versions V001, V002, ...

A version directory is self-contained, because it is what a training script receives
as ``--data_url``: its images (hard links to the dataset's, so no extra space), the
split manifests ``train.jsonl`` / ``val.jsonl`` (ModelArts manifest lines), ``labels.txt``,
density maps for crowd data, and ``version.json`` with counts and a content checksum.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import get_args

import numpy as np

from labkit import schemas, workspace
from labkit.boundary import inside
from labkit.data import datasets
from labkit.errors import LabkitError
from labkit.tasks import COUNTING

SIGMAS = ("fixed", "adaptive")
# stratified: a seeded split by class (crowd data: by count quantile); source: the source's own
# train/test split (ShanghaiTech's train_data/test_data, a manifest's usage), so that results
# compare with the papers' tables.
SPLITS = get_args(schemas.Split)
FIXED_SIGMA = 4.0  # the MCNN reference code's Gaussian
COUNT_BINS = 5  # crowd data is stratified by count quantile


def split(entries: list[dict], strata: list, train_ratio: float, seed: int) -> list[str]:
    """``"train"`` or ``"val"`` for each entry: within each stratum a seeded shuffle, the
    first ``round(n * ratio)`` to train. Strata are visited in a fixed order and each gets
    its own random stream, so the split depends only on the data, the ratio and the seed."""
    out = [""] * len(entries)
    for k, stratum in enumerate(sorted(set(strata), key=str)):
        members = sorted((i for i, s in enumerate(strata) if s == stratum), key=lambda i: entries[i]["file"])
        order = np.random.default_rng([seed, k]).permutation(len(members))
        n_train = round(len(members) * train_ratio)
        if len(members) >= 2:  # both sides get at least one of every class
            n_train = min(max(n_train, 1), len(members) - 1)
        for rank, j in enumerate(order):
            out[members[j]] = "train" if rank < n_train else "val"
    return out


def count_bins(counts: list[int], bins: int = COUNT_BINS) -> list[int]:
    """Quantile bin of each count, so every density of crowd is in both splits."""
    if not counts:
        return []
    edges = np.unique(np.quantile(counts, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.searchsorted(edges, counts, side="right").tolist()


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def source_split(name: str, entries: list[dict]) -> list[str]:
    """The side each entry has in the source's own split; a clear error when there is none."""
    sides = [e.get("usage") for e in entries]
    missing = sum(s is None for s in sides)
    if missing:
        raise LabkitError(f"dataset {name}: {missing} of {len(entries)} images have no train/test split of their own "
                          "(only a ShanghaiTech tree or a manifest with 'usage' brings one)",
                          "publish with --split stratified (the default)")
    for side in ("train", "val"):
        if side not in sides:
            raise LabkitError(f"dataset {name}: the source's own split has no {side} images",
                              "publish with --split stratified (the default)")
    return sides


def publish(name: str, train_ratio: float = 0.8, seed: int = 0, sigma: str = "fixed", split_by: str = "stratified") -> dict:
    """Publish the next version of dataset ``name``; return its record. ``split_by`` source
    keeps the source's own train/test split (``train_ratio`` and ``seed`` then play no part)."""
    if not 0 < train_ratio < 1:
        raise LabkitError(f"--train-ratio must be between 0 and 1, exclusive (got {train_ratio})",
                          "the seeds use 0.8: 80% to train, 20% to validate")
    if sigma not in SIGMAS:
        raise LabkitError(f"unknown density sigma {sigma!r}", f"use one of {', '.join(SIGMAS)}")
    if split_by not in SPLITS:
        raise LabkitError(f"unknown split {split_by!r}", f"use one of {', '.join(SPLITS)}")
    rec = datasets.record(name)
    entries = datasets.items(name)
    src = datasets.path(name)
    counting = rec["task"] == COUNTING
    if split_by == "source":
        sides = source_split(name, entries)
    else:
        strata = count_bins([e["count"] for e in entries]) if counting else [e["label"] for e in entries]
        sides = split(entries, strata, train_ratio, seed)

    vroot = src / "versions"
    vroot.mkdir(exist_ok=True)
    workspace.remove_stale_staging(vroot)
    staged = workspace.staging_dir(vroot)
    try:
        manifests = {"train": [], "val": []}
        for entry, side in zip(entries, sides):
            for key in ("file", "ground_truth"):
                if entry.get(key):
                    _link(inside(src, entry[key], "item"), inside(staged, entry[key], "item"))
            line = {"source": entry["file"], "sha256": file_sha256(inside(src, entry["file"], "item"))}
            if counting:
                density = f"density/{Path(entry['file']).stem}.npy"
                _write_density(src, entry, staged / density, sigma)
                line["annotation"] = [{"type": COUNTING, "count": entry["count"],
                                       "ground_truth": entry["ground_truth"], "density_map": density}]
            else:
                line["annotation"] = [{"type": "modelarts/image_classification", "name": entry["label"]}]
            manifests[side].append(line)
        lines = {s: [json.dumps(m, sort_keys=True, ensure_ascii=False) for m in ms] for s, ms in manifests.items()}
        checksum = hashlib.sha256("\n".join(f"{s}\t{line}" for s in ("train", "val") for line in lines[s])
                                  .encode()).hexdigest()
        for s in ("train", "val"):
            (staged / f"{s}.jsonl").write_text("".join(line + "\n" for line in lines[s]), encoding="utf-8")
        if rec["classes"]:
            (staged / "labels.txt").write_text("".join(c + "\n" for c in rec["classes"]), encoding="utf-8")
        version = {
            "dataset": name, "task": rec["task"], "classes": rec["classes"], "split": split_by,
            **({"train_ratio": train_ratio, "seed": seed} if split_by == "stratified" else {}),
            "checksum": checksum, "created": workspace.now(),
            "counts": {s: _counts(ms, counting) for s, ms in manifests.items()},
        }
        if counting:
            version["density"] = {"sigma": sigma if sigma == "adaptive" else FIXED_SIGMA, "downsample": 4}
        workspace.write_json(staged / "version.json", version)
        # The number is known only once the rename claims it: readers take it from the folder name.
        version["version"] = workspace.publish_version(staged, vroot)
    except FileNotFoundError as exc:  # an image or ground truth removed from the dataset by hand
        shutil.rmtree(staged, ignore_errors=True)
        raise LabkitError(f"dataset {name} lacks a file its items.jsonl lists: {exc.filename}",
                          "put the file back, or import the dataset again") from None
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return version


def _counts(manifest: list[dict], counting: bool) -> dict:
    if counting:
        heads = [m["annotation"][0]["count"] for m in manifest]
        return {"images": len(heads), "heads": int(sum(heads))}
    out: dict[str, int] = {}
    for m in manifest:
        label = m["annotation"][0]["name"]
        out[label] = out.get(label, 0) + 1
    return {"images": len(manifest), "per_class": dict(sorted(out.items()))}


def _link(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:  # another file system, or links not allowed: copy instead
        shutil.copyfile(src, dest)


def _write_density(src: Path, entry: dict, dest: Path, sigma: str) -> None:
    from PIL import Image

    from labkit.data.crowd import density_map, read_ground_truth

    with Image.open(inside(src, entry["file"], "item")) as im:
        width, height = im.size
    heads = read_ground_truth(inside(src, entry["ground_truth"], "ground truth"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    np.save(dest, density_map(heads, height, width, "adaptive" if sigma == "adaptive" else FIXED_SIGMA))
