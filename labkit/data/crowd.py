"""Crowd scenes with head annotations, ShanghaiTech's ground-truth files, density maps.

A scene has a horizon and a perspective: people further away are smaller, denser and
partly hidden by the people in front; buildings, trees and stray round objects are the
clutter a counter must learn to ignore. Annotations are head centres (x, y) in pixels,
as in ShanghaiTech (``GT_IMG_i.mat``: ``image_info`` -> ``location``, ``number``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from labkit.data.draw import SUPERSAMPLE, finish, jitter, shade

SKIN = [(240, 200, 170), (210, 160, 120), (160, 110, 75), (110, 75, 50)]
HAIR = [(30, 25, 20), (70, 50, 30), (120, 90, 50), (200, 190, 170), (20, 20, 20)]
CLOTHES = [(200, 40, 40), (40, 60, 160), (230, 230, 230), (30, 30, 30), (60, 140, 70), (220, 180, 40), (130, 80, 150)]
DOWNSAMPLE = 4  # MCNN's density map is a quarter of the input's height and width


def draw_crowd(size: int, rng: np.random.Generator, max_heads: int = 400) -> tuple[Image.Image, np.ndarray]:
    """One ``size`` x ``size`` scene and its head centres (N x 2 array of x, y in pixels)."""
    n = size * SUPERSAMPLE
    horizon = rng.uniform(-0.1, 0.35) * n
    sky = jitter(rng, (150, 180, 215), 0.1)
    ground = jitter(rng, [(120, 115, 105), (90, 120, 70), (170, 160, 140)][rng.integers(3)], 0.1)
    img = Image.new("RGB", (n, n), ground)
    draw = ImageDraw.Draw(img)
    if horizon > 0:
        draw.rectangle([0, 0, n, horizon], fill=sky)
    for _ in range(rng.integers(2, 8)):  # buildings and trees on the horizon
        x, w, h = rng.uniform(0, n), rng.uniform(0.05, 0.25) * n, rng.uniform(0.05, 0.3) * n
        base = max(horizon, 0) + rng.uniform(0, 0.05) * n
        if rng.random() < 0.6:
            draw.rectangle([x, base - h, x + w, base], fill=jitter(rng, (150, 140, 130), 0.15))
        else:
            draw.ellipse([x, base - h, x + w, base], fill=jitter(rng, (50, 100, 50), 0.1))
    img = img.filter(ImageFilter.GaussianBlur(n / 150))
    draw = ImageDraw.Draw(img)

    def head_radius(y):  # perspective: radius grows linearly with the distance below the horizon
        return near_radius * np.clip((y - horizon) / (n - horizon), 0.08, 1.2)

    near_radius = rng.uniform(0.025, 0.06) * n
    count = int(max_heads * rng.random() ** 2)  # many sparse scenes, a few packed ones
    # Sample positions: more people far away (small heads), in a few clusters.
    ys = horizon + (n - horizon) * rng.beta(1.2, 2.0, count) + rng.normal(0, 0.02 * n, count)
    xs = rng.uniform(0, n, count)
    if count and rng.random() < 0.5:
        centres = rng.uniform(0, n, (rng.integers(1, 4), 1))
        pick = rng.integers(len(centres), size=count)
        xs = np.where(rng.random(count) < 0.6, centres[pick, 0] + rng.normal(0, 0.12 * n, count), xs)
    keep = (xs >= 0) & (xs < n) & (ys > max(horizon, 0)) & (ys < n)
    xs, ys = xs[keep], ys[keep]
    order = np.argsort(ys)  # far first, so people in front hide those behind
    xs, ys = xs[order], ys[order]

    for _ in range(rng.integers(0, 6)):  # round things that are not heads
        x, y = rng.uniform(0, n, 2)
        r = head_radius(y) * rng.uniform(0.8, 1.5)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=jitter(rng, (230, 120, 40), 0.2))
    for x, y in zip(xs, ys):
        r = head_radius(y)
        body = jitter(rng, CLOTHES[rng.integers(len(CLOTHES))], 0.08)
        draw.ellipse([x - 1.6 * r, y + 0.6 * r, x + 1.6 * r, y + 6 * r], fill=body, outline=shade(body, 0.7))
        draw.ellipse([x - r, y - r * 1.15, x + r, y + r * 1.15], fill=jitter(rng, SKIN[rng.integers(len(SKIN))], 0.04))
        hair = HAIR[rng.integers(len(HAIR))]
        draw.chord([x - r, y - r * 1.2, x + r, y + r * 1.1], 180, 360, fill=jitter(rng, hair, 0.04))
    image = finish(rng, img, size, noise=4.0)
    heads = np.stack([xs, ys], 1) / SUPERSAMPLE if len(xs) else np.zeros((0, 2))
    return image, heads.astype(np.float64)


def write_ground_truth(path: Path, heads: np.ndarray) -> None:
    """Write ``GT_IMG_i.mat`` as ShanghaiTech does: a 1x1 cell ``image_info`` holding a
    struct with ``location`` (N x 2, x then y) and ``number``."""
    from scipy.io import savemat

    info = np.zeros((1, 1), dtype=[("location", "O"), ("number", "O")])
    info[0, 0]["location"] = np.asarray(heads, dtype=np.float64).reshape(-1, 2)
    info[0, 0]["number"] = np.array([[len(heads)]], dtype=np.float64)
    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = info
    savemat(path, {"image_info": cell})


def read_ground_truth(path: Path) -> np.ndarray:
    """Head centres (N x 2, x then y) from a ShanghaiTech ``.mat`` file."""
    from scipy.io import loadmat

    info = loadmat(path)["image_info"][0, 0][0, 0]
    return np.asarray(info["location"], dtype=np.float64).reshape(-1, 2)


def density_map(heads: np.ndarray, height: int, width: int, sigma: str | float = 4.0,
                downsample: int = DOWNSAMPLE) -> np.ndarray:
    """A density map whose sum is the head count: one normalised Gaussian per head.

    ``sigma`` is a fixed width in pixels (the reference code: 4, in a 15x15 window) or
    ``"adaptive"``: 0.3 x the mean distance to the 3 nearest heads (the MCNN paper).
    The map is then sum-pooled by ``downsample``, which keeps the count exactly."""
    out = np.zeros((height, width), dtype=np.float64)
    heads = np.asarray(heads, dtype=np.float64).reshape(-1, 2)
    if sigma == "adaptive":
        sigmas = _adaptive_sigmas(heads)
    else:
        sigmas = np.full(len(heads), float(sigma))
    for (x, y), s in zip(heads, sigmas):
        cx, cy = min(max(int(x), 0), width - 1), min(max(int(y), 0), height - 1)
        half = max(1, int(3 * s + 0.5))  # +-3 sigma; 4 -> 12 px, the reference's window when sigma is 4
        y0, y1, x0, x1 = max(cy - half, 0), min(cy + half + 1, height), max(cx - half, 0), min(cx + half + 1, width)
        gy = np.exp(-((np.arange(y0, y1) - cy) ** 2) / (2 * s * s))
        gx = np.exp(-((np.arange(x0, x1) - cx) ** 2) / (2 * s * s))
        patch = np.outer(gy, gx)
        out[y0:y1, x0:x1] += patch / patch.sum()  # cut at the border, renormalised: the head still counts 1
    return sum_pool(out, downsample).astype(np.float32)


def _adaptive_sigmas(heads: np.ndarray) -> np.ndarray:
    if len(heads) < 2:
        return np.full(len(heads), 4.0)
    from scipy.spatial import cKDTree

    k = min(4, len(heads))
    dist, _ = cKDTree(heads).query(heads, k=k)
    return np.clip(0.3 * dist[:, 1:].mean(axis=1), 1.0, 30.0)


def sum_pool(a: np.ndarray, factor: int) -> np.ndarray:
    """Sum ``factor`` x ``factor`` blocks (zero-padding ragged edges): the total is kept."""
    if factor == 1:
        return a
    h, w = a.shape
    ph, pw = -h % factor, -w % factor
    a = np.pad(a, ((0, ph), (0, pw)))
    return a.reshape(a.shape[0] // factor, factor, a.shape[1] // factor, factor).sum(axis=(1, 3))
