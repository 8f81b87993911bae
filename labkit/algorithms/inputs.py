"""What the network is fed, NumPy only (the engines turn batches into their own tensors): a
dataset version's splits read as arrays, each rank's shard, the batches of an epoch,
augmentation, and the normalisation a model's inputs get (also what ``model.json`` records
for the converter and the service)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from labkit.boundary import inside
from labkit.tasks import COUNTING

MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics: the seeds' models are normalised with them
STD = (0.229, 0.224, 0.225)


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
