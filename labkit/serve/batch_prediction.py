"""Batch prediction (the seeds' "batch service"): every image of a folder through a registry
model, in batches, into ``predictions.jsonl`` or ``.csv``, with a progress bar. A bad file is
reported in ``errors.jsonl`` and skipped, never fatal. Each image also gets ``<stem>_1.txt``
(class indices best first, or the count) so that ``labkit eval`` can score the run."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from labkit import registry, workspace
from labkit.data.images import ImageError, list_images
from labkit.errors import LabkitError
from labkit.tasks import COUNTING

BATCH = 16
FORMATS = ("jsonl", "csv")


def create(model: str, input_dir: str | Path, output_dir: str | Path, fmt: str = "jsonl", progress: bool = True) -> dict:
    from tqdm.auto import tqdm

    from labkit.serve.runtime import Model  # here: the CLI reads FORMATS without loading the runtime

    if fmt not in FORMATS:
        raise LabkitError(f"unknown output format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    folder, _ = registry.deployable(model)
    net = Model(folder)
    images = list_images(input_dir)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, errors = [], []
    bar = tqdm(total=len(images), desc=f"batch {folder.parent.name}@{folder.name}", unit="img", disable=not progress)
    for start in range(0, len(images), BATCH):
        chunk, tensors = [], []
        for path in images[start:start + BATCH]:
            try:
                tensors.append(net.tensor(path))
                chunk.append(path)
            except ImageError as exc:
                errors.append({"file": str(path), "error": str(exc)})
        if tensors:
            first = net.run(np.stack(tensors))[0]
            for path, output in zip(chunk, first, strict=True):
                rows.append({"file": str(path), **net.answer(output)})
        bar.update(len(images[start:start + BATCH]))
    bar.close()
    for row in rows:
        stem = Path(row["file"]).stem
        line = (" ".join(str(net.labels.index(label)) for label, _ in row["scores"]) if "scores" in row
                else f"{row['count']:.4f}")
        (out / f"{stem}_1.txt").write_text(line + "\n", encoding="utf-8")
    target = out / f"predictions.{fmt}"
    if fmt == "jsonl":
        with open(target, "w", encoding="utf-8") as f:
            f.writelines(json.dumps({k: v for k, v in r.items() if k != "density_map"}, ensure_ascii=False) + "\n" for r in rows)
    else:
        with open(target, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            if net.task == COUNTING:
                writer.writerow(["file", "count"])
                writer.writerows([r["file"], f"{r['count']:.4f}"] for r in rows)
            else:
                writer.writerow(["file", "predicted_label", "score"])
                writer.writerows([r["file"], r["predicted_label"], f"{r['scores'][0][1]:.6f}"] for r in rows)
    with open(out / "errors.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in errors)
    summary = {"model": f"{folder.parent.name}@{folder.name}", "images": len(images), "predicted": len(rows),
               "errors": len(errors), "output": str(target)}
    workspace.write_json(out / "batch.json", summary)
    return summary
