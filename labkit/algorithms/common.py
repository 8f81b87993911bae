"""The engine-free pieces of the training loop (``loop``): the command-line convention,
reading a dataset version, batches and augmentation, learning-rate schedules, metrics, and
the files a job leaves in ``--train_url``. NumPy only: the engines turn batches into their
own tensors.

Output layout of a training run (``--train_url``)::

    metrics.csv            one row per epoch
    checkpoints/epoch_NNN.*  a checkpoint per epoch (model, optimizer, epoch), best.* the best
    eval.json              the final evaluation on the validation split
    model.json             what a converter needs: arch, classes, input size, normalisation
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from labkit.algorithms import DEVICES, PROGRESS
from labkit.boundary import inside
from labkit.tasks import COUNTING
from labkit.workspace import write_json  # atomic: a killed run never leaves half a file

MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics: the seeds' models are normalised with them
STD = (0.229, 0.224, 0.225)


def parse_args(argv=None) -> tuple[argparse.Namespace, dict]:
    """``--data_url DIR --train_url DIR --algorithm NAME --<hp>=<value> ...`` -> (args, raw hps)."""
    p = argparse.ArgumentParser(description="labkit training script (ModelArts convention)")
    p.add_argument("--data_url", required=True, help="the dataset version directory")
    p.add_argument("--train_url", required=True, help="where checkpoints, metrics and the model go")
    p.add_argument("--algorithm", required=True, help="the catalog card whose hyper-parameters apply")
    p.add_argument("--device", default="cpu", choices=DEVICES)
    p.add_argument("--resume", default=None, help="a checkpoint to continue from")
    args, rest = p.parse_known_args(argv)
    raw = {}
    for item in rest:
        if not item.startswith("--") or "=" not in item:
            p.error(f"hyper-parameters are passed as --name=value, got {item!r}")
        key, value = item[2:].split("=", 1)
        raw[key] = value
    return args, raw


def hyper_parameters(algorithm: str, raw: dict) -> dict:
    """The job's hyper-parameters, typed and checked against the card (the job passes all)."""
    from labkit.catalog import card

    hyper = card(algorithm).resolve(raw, "full")
    hyper.setdefault("seed", 0)
    return hyper


def emit(event: str, **fields) -> None:
    print(PROGRESS + json.dumps({"event": event, **fields}), flush=True)


# --- data --------------------------------------------------------------------------------

def read_manifest(data_url: Path, split: str) -> list[dict]:
    """The lines of one split, each checked (``schemas.SplitLine``): its paths stay in the version."""
    from labkit import schemas

    return schemas.read_lines(Path(data_url) / f"{split}.jsonl", schemas.SplitLine)


def labels(data_url: Path) -> list[str]:
    return (Path(data_url) / "labels.txt").read_text(encoding="utf-8").split("\n")[:-1]


def load_classification(data_url: Path, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, size, size, 3) uint8 and label indices (N,) of one split."""
    names = labels(data_url)
    index = {n: i for i, n in enumerate(names)}
    rows = read_manifest(data_url, split)
    x = np.empty((len(rows), size, size, 3), np.uint8)
    y = np.empty(len(rows), np.int64)
    for i, row in enumerate(rows):
        with Image.open(inside(data_url, row["source"], "image")) as im:
            x[i] = np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
        y[i] = index[row["annotation"][0]["name"]]
    return x, y


def load_counting(data_url: Path, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Grayscale images (N, size, size) uint8 and density maps (N, size/4, size/4) whose sums
    are the head counts (resampled when the images are)."""
    rows = read_manifest(data_url, split)
    out = size // 4
    x = np.empty((len(rows), size, size), np.uint8)
    d = np.empty((len(rows), out, out), np.float32)
    for i, row in enumerate(rows):
        ann = row["annotation"][0]
        with Image.open(inside(data_url, row["source"], "image")) as im:
            x[i] = np.asarray(im.convert("L").resize((size, size), Image.Resampling.BILINEAR))
        density = np.load(inside(data_url, ann["density_map"], "density map"), allow_pickle=False)
        if density.shape != (out, out):
            resized = np.asarray(Image.fromarray(density).resize((out, out), Image.Resampling.BILINEAR))
            density = resized * (density.sum() / resized.sum()) if resized.sum() > 0 else resized
        d[i] = density
    return x, d


def load_splits(data_url: Path, task: str, size: int):
    """(x_train, t_train, x_val, t_val, label names) of a version, for either task."""
    if task == COUNTING:
        return (*load_counting(data_url, "train", size), *load_counting(data_url, "val", size), [])
    return (*load_classification(data_url, "train", size), *load_classification(data_url, "val", size),
            labels(data_url))


def shard(n: int, rank: int, world: int) -> np.ndarray:
    """The sample indices of one rank in data-parallel training (every rank the same count)."""
    per = n // world
    return np.arange(n)[rank * per:(rank + 1) * per]


def batches(n: int, batch_size: int, rng: np.random.Generator | None, drop_last: bool = False):
    """Index arrays of the batches of an epoch (shuffled when ``rng`` is given)."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for i in range(0, stop, batch_size):
        yield order[i:i + batch_size]


def augment(x: np.ndarray, rng: np.random.Generator, pad: int | None = None) -> np.ndarray:
    """Random horizontal flip and random crop after reflect padding (an image batch, NHWC)."""
    n, h, w = x.shape[:3]
    pad = max(1, h // 8) if pad is None else pad
    flipped = np.where(rng.random(n)[:, None, None, None] < 0.5, x[:, :, ::-1], x)
    padded = np.pad(flipped, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    dy, dx = rng.integers(0, 2 * pad + 1, (2, n))
    return np.stack([padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def normalization(channels: int) -> dict:
    """How a model with ``channels`` input channels is fed: (pixels x scale - mean) / std, per
    channel. RGB models use the ImageNet statistics; grey (counting) models only scale to [0, 1]."""
    if channels == 1:
        return {"scale": 1 / 255, "mean": [0.0], "std": [1.0]}
    return {"scale": 1 / 255, "mean": list(MEAN), "std": list(STD)}


def normalize(x: np.ndarray) -> np.ndarray:
    """uint8 NHWC RGB -> float32 NCHW, ImageNet-normalised."""
    return ((x.astype(np.float32) / 255.0 - MEAN) / STD).astype(np.float32).transpose(0, 3, 1, 2)


def normalize_gray(x: np.ndarray) -> np.ndarray:
    """uint8 NHW grayscale -> float32 N1HW in [0, 1]."""
    return (x.astype(np.float32) / 255.0)[:, None]


# --- schedules ---------------------------------------------------------------------------

def parse_strategy(strategy: str) -> list[tuple[int, float]]:
    """``"10:0.01,20:0.001"`` -> [(10, 0.01), (20, 0.001)]: until epoch 10 at 0.01, then to 20 at 0.001."""
    try:
        steps = [(int(e), float(lr)) for e, lr in (part.split(":") for part in strategy.split(","))]
    except ValueError:
        from labkit.errors import LabkitError

        raise LabkitError(f"learning_rate_strategy {strategy!r} is not EPOCHS:LR[,EPOCHS:LR...]",
                          "e.g. 20:0.001 (20 epochs at 0.001) or 10:0.01,20:0.001") from None
    if any(b[0] <= a[0] for a, b in zip(steps, steps[1:])) or steps[0][0] < 1:
        from labkit.errors import LabkitError

        raise LabkitError(f"learning_rate_strategy {strategy!r}: epochs must increase", "e.g. 10:0.01,20:0.001")
    return steps


class Schedule:
    """The learning rate at a fractional epoch, from a card's hyper-parameters."""

    def __init__(self, hp: dict):
        if "learning_rate_strategy" in hp:
            self.steps = parse_strategy(hp["learning_rate_strategy"])
            self.epochs = self.steps[-1][0]
            self.kind = "strategy"
        elif "epoch_size" in hp:  # MCNN: x0.1 at 50%, x0.01 at 75% of training
            self.epochs, self.base, self.kind = hp["epoch_size"], hp["lr"], "mcnn"
        else:
            self.epochs, self.base, self.kind = hp["epochs"], hp["lr"], hp.get("sched", "constant")
            self.warmup, self.warmup_lr = hp.get("warmup_epochs", 0), hp.get("warmup_lr", 0.0)
        # The epochs this run trains: max_epochs ends it early, with the rates of the whole schedule.
        self.stop = min(self.epochs, hp.get("max_epochs") or self.epochs)

    def __call__(self, epoch: float) -> float:
        """``epoch`` counts from 0; 2.5 is the middle of the third epoch."""
        if self.kind == "strategy":
            return next((lr for end, lr in self.steps if epoch < end), self.steps[-1][1])
        if self.kind == "mcnn":
            t = epoch / self.epochs
            return self.base * (1.0 if t < 0.5 else 0.1 if t < 0.75 else 0.01)
        if epoch < self.warmup:
            return self.warmup_lr + (self.base - self.warmup_lr) * epoch / self.warmup
        t = (epoch - self.warmup) / max(1e-9, self.epochs - self.warmup)
        if self.kind == "cosine":
            return 0.5 * self.base * (1 + math.cos(math.pi * min(1.0, t)))
        if self.kind == "step":
            return self.base * 0.1 ** int(t * 3)
        return self.base


# --- metrics and outputs -----------------------------------------------------------------

def report_pretrained(path: str, loaded: list[str], skipped: list[str]) -> None:
    print(f"pretrained {path}: loaded {len(loaded)} tensors, skipped {len(skipped)}: {', '.join(skipped) or 'none'}",
          flush=True)
    emit("pretrained", loaded=len(loaded), skipped=skipped)


def metric_fields(task: str) -> list[str]:
    """The columns of metrics.csv besides epoch, lr and seconds."""
    return ["loss", "val_mae", "val_rmse"] if task == COUNTING else ["loss", "train_acc", "val_acc"]


def epoch_metrics(task: str, val_out: np.ndarray, t_val: np.ndarray, loss: float, correct: int, seen: int):
    """(the metric that picks the best epoch, the row of metrics.csv) after an epoch."""
    seen = max(seen, 1)
    if task == COUNTING:
        counts, truth = val_out.reshape(len(val_out), -1).sum(1), t_val.reshape(len(t_val), -1).sum(1)
        mae = float(np.abs(counts - truth).mean())
        return mae, {"loss": loss / seen, "val_mae": mae, "val_rmse": float(np.sqrt(((counts - truth) ** 2).mean()))}
    acc = float((val_out.argmax(1) == t_val).mean())
    return acc, {"loss": loss / seen, "train_acc": correct / seen, "val_acc": acc}


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
        self.fields = ["epoch", *fields, "lr", "seconds"]
        if not self.path.exists():
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(self.fields)
        self.t0 = time.perf_counter()

    def epoch(self, epoch: int, epochs: int, lr: float, **metrics) -> None:
        row = {"epoch": epoch, **{k: round(float(v), 6) for k, v in metrics.items()}, "lr": lr,
               "seconds": round(time.perf_counter() - self.t0, 2)}
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([row.get(k, "") for k in self.fields])
        emit("epoch", epochs=epochs, **row)
        self.t0 = time.perf_counter()


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
