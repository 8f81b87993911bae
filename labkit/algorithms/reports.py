"""What a training run reports: the progress events followers read from its log, the metrics
that judge each epoch, and the files it leaves in ``--train_url``.

Output layout of a training run (``--train_url``)::

    metrics.csv            one row per epoch
    tensorboard/           the same per epoch, the hyper-parameters and final figures, for TensorBoard
    checkpoints/epoch_NNN.*  a checkpoint per epoch (model, optimizer, epoch), best.* the best
    eval.json              the final evaluation on the validation split
    model.json             what a converter needs: arch, classes, input size, normalisation
"""
from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import numpy as np

from labkit.algorithms import PROGRESS
from labkit.algorithms.inputs import normalization
from labkit.tasks import CLASSIFICATION, COUNTING
from labkit.workspace import write_json  # atomic: a killed run never leaves half a file


def emit(event: str, **fields) -> None:
    """One progress event on the log: a line that starts with ``PROGRESS``, for followers."""
    print(PROGRESS + json.dumps({"event": event, **fields}), flush=True)


def report_pretrained(path: str, loaded: list[str], skipped: list[str]) -> None:
    print(f"pretrained {path}: loaded {len(loaded)} tensors, skipped {len(skipped)}: {', '.join(skipped) or 'none'}",
          flush=True)
    emit("pretrained", loaded=len(loaded), skipped=skipped)


# The columns of metrics.csv that time an epoch (the others are the same in a job run twice)
TIMES = ("seconds", "images_per_second")
# The column of metrics.csv that picks a job's best epoch (``better`` says which way)
BEST_BY = {COUNTING: "val_mae", CLASSIFICATION: "val_acc"}
NOT_METRICS = ("best_epoch", "samples", "train_mean_count")  # numbers of a final report that judge nothing


def metric_fields(task: str) -> list[str]:
    """The columns of metrics.csv besides epoch, lr and seconds."""
    return ["loss", "val_mae", "val_rmse"] if task == COUNTING else ["loss", "train_acc", "val_acc"]


def epoch_metrics(task: str, val_out: np.ndarray, t_val: np.ndarray, loss: float, correct: int, seen: int):
    """(the metric that picks the best epoch, the row of metrics.csv) after an epoch."""
    seen = max(seen, 1)
    if task == COUNTING:
        counts, truth = val_out.reshape(len(val_out), -1).sum(1), t_val.reshape(len(t_val), -1).sum(1)
        row = {"loss": loss / seen, "val_mae": float(np.abs(counts - truth).mean()),
               "val_rmse": float(np.sqrt(((counts - truth) ** 2).mean()))}
    else:
        row = {"loss": loss / seen, "train_acc": correct / seen, "val_acc": float((val_out.argmax(1) == t_val).mean())}
    return row[BEST_BY[task]], row


def final_report(task: str, val_out: np.ndarray, t_val: np.ndarray, t_train: np.ndarray, names: list[str],
                 best_epoch: int) -> dict:
    if task == COUNTING:
        def count(a):
            return a.reshape(len(a), -1).sum(1)

        report = counting_report(count(val_out), count(t_val), float(count(t_train).mean()))
    else:
        report = classification_report(val_out, t_val, names)
    return {**report, "best_epoch": best_epoch}


def mark_best(epoch_file: Path) -> None:
    """``best.<ext>`` becomes the epoch's checkpoint: a hard link, not a second write."""
    best = epoch_file.with_name("best" + epoch_file.suffix)
    tmp = best.with_name(".best.tmp")
    tmp.unlink(missing_ok=True)
    os.link(epoch_file, tmp)
    os.replace(tmp, best)


def finish(train_url: Path, report: dict, info: dict) -> None:
    """The files a completed run leaves: eval.json, model.json, and the "done" event."""
    write_json(Path(train_url) / "eval.json", report)
    write_json(Path(train_url) / "model.json", info)
    emit("done", **{k: v for k, v in report.items() if isinstance(v, (int, float))})


def classification_report(logits: np.ndarray, y: np.ndarray, names: list[str]) -> dict:
    k = min(5, logits.shape[1])
    top = np.argsort(-logits, axis=1)[:, :k]
    confusion = np.zeros((len(names), len(names)), np.int64)
    np.add.at(confusion, (y, top[:, 0]), 1)
    return {"accuracy": float((top[:, 0] == y).mean()) if len(y) else 0.0,
            f"top{k}": float((top == y[:, None]).any(1).mean()) if len(y) else 0.0,
            "confusion": confusion.tolist(), "labels": names, "samples": int(len(y))}


def counting_report(pred: np.ndarray, truth: np.ndarray, train_mean: float) -> dict:
    err = pred - truth
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean())),
            "mean_baseline_mae": float(np.abs(truth - train_mean).mean()), "train_mean_count": float(train_mean),
            "predicted": pred.round(2).tolist(), "truth": truth.round(2).tolist(), "samples": int(len(truth))}


class RunLog:
    """``metrics.csv`` (appended per epoch, so a killed job keeps what it measured) and the
    progress events a follower reads from the log."""

    def __init__(self, train_url: Path, fields: list[str]):
        self.path = Path(train_url) / "metrics.csv"
        self.fields = ["epoch", *fields, "lr", *TIMES]
        if self.path.exists():  # resumed: the columns it was started with
            with open(self.path, newline="") as f:
                self.fields = next(csv.reader(f), None) or self.fields
        else:
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(self.fields)
        self.t0 = time.perf_counter()

    def epoch(self, epoch: int, epochs: int, lr: float, pace: float, **metrics) -> dict:
        """Record an epoch (``pace``: training images per second); the row written."""
        row = {"epoch": epoch, **{k: round(float(v), 6) for k, v in metrics.items()}, "lr": lr,
               "seconds": round(time.perf_counter() - self.t0, 2), "images_per_second": round(pace, 1)}
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([row.get(k, "") for k in self.fields])
        emit("epoch", epochs=epochs, **row)
        self.t0 = time.perf_counter()
        return row


def write_rank_digest(train_url: Path, rank: int, world: int, arrays) -> None:
    """After data-parallel training each rank writes a digest of its weights; the job
    compares them (every rank must end with the same weights)."""
    import hashlib

    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
    write_json(Path(train_url) / f"rank{rank}.json", {"rank": rank, "world": world, "weights_sha256": h.hexdigest()})


def better(task: str, new: float, best: float | None) -> bool:
    """Is ``new`` the best so far (accuracy: higher; counting MAE: lower)?"""
    return best is None or (new < best if task == COUNTING else new > best)


def model_info(hp: dict, task: str, arch: str, engine: str, names: list[str]) -> dict:
    counting = task == COUNTING
    return {"arch": arch, "engine": engine, "task": task, "image_size": hp["image_size"],
            "num_classes": None if counting else hp.get("num_classes") or len(names),
            "labels": names, "channels": 1 if counting else 3, "normalize": normalization(1 if counting else 3),
            "width": hp.get("width", 1.0)}
