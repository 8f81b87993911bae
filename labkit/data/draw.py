"""Drawing primitives shared by the procedural generators: scenes, light, petal outlines.

Everything takes a ``numpy.random.Generator`` so an image is a pure function of its seed.
Shapes are drawn at twice the target size and downsampled, which anti-aliases edges.
"""
from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SUPERSAMPLE = 2


def jitter(rng: np.random.Generator, rgb, amount: float = 0.06):
    """A colour near ``rgb`` (0-255 tuple): hue, saturation and value nudged a little."""
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    dh, ds, dv = rng.normal(0, amount, 3)
    h = (h + dh / 3) % 1.0
    s = min(1.0, max(0.0, s + ds))
    v = min(1.0, max(0.0, v + dv))
    return tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h, s, v))


def shade(rgb, factor: float):
    """``rgb`` darkened (factor < 1) or lightened (factor > 1)."""
    return tuple(min(255, max(0, int(c * factor))) for c in rgb)


def canvas(rng: np.random.Generator, size: int, palette) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """A cluttered background at supersampled size: a two-colour gradient from ``palette``
    (a list of RGB tuples) with soft blobs of other palette colours."""
    n = size * SUPERSAMPLE
    top, bottom = (np.array(jitter(rng, palette[rng.integers(len(palette))], 0.1)) for _ in range(2))
    t = np.linspace(0, 1, n)[:, None, None]
    grad = (top * (1 - t) + bottom * t) * np.ones((1, n, 1))
    img = Image.fromarray(grad.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(3, 9)):
        cx, cy = rng.uniform(0, n, 2)
        rx, ry = rng.uniform(0.05, 0.3, 2) * n
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry],
                     fill=jitter(rng, palette[rng.integers(len(palette))], 0.15))
    img = img.filter(ImageFilter.GaussianBlur(radius=n / rng.uniform(12, 30)))
    return img, ImageDraw.Draw(img)


def finish(rng: np.random.Generator, img: Image.Image, size: int, noise: float = 6.0) -> Image.Image:
    """Downsample to ``size`` and apply random light: brightness, contrast, colour cast, noise."""
    img = img.resize((size, size), Image.Resampling.LANCZOS)
    a = np.asarray(img, dtype=np.float32)
    gain = rng.uniform(0.65, 1.3) * rng.uniform(0.92, 1.08, 3)
    mean = a.mean()
    a = (a - mean) * rng.uniform(0.8, 1.2) + mean
    a = a * gain + rng.normal(0, noise, a.shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


class Pose:
    """Maps a shape's local coordinates (unit = radius ``r``) to the canvas: a tilt
    (the flower seen at an angle squashes one axis), a rotation, a scale and a position."""

    def __init__(self, cx: float, cy: float, r: float, angle: float = 0.0, tilt: float = 1.0):
        self.cx, self.cy, self.r = cx, cy, r
        self.cos, self.sin, self.tilt = np.cos(angle), np.sin(angle), tilt

    def __call__(self, pts) -> list[tuple[float, float]]:
        pts = np.asarray(pts, dtype=float).reshape(-1, 2)
        x, y = pts[:, 0] * self.r, pts[:, 1] * self.r * self.tilt
        xs = self.cx + x * self.cos - y * self.sin
        ys = self.cy + x * self.sin + y * self.cos
        return list(zip(xs.tolist(), ys.tolist()))

    def part(self, at, scale: float, angle: float, tilt: float) -> "Pose":
        """A pose for a smaller shape placed at local point ``at`` (several cakes on a plate)."""
        (cx, cy), = self([at])
        return Pose(cx, cy, self.r * scale, angle, tilt)


_U = np.linspace(0, 1, 14)
# Half-width along a petal of unit length and width, per shape (computed once: generators
# draw tens of petals per image).
_PETAL_HALF = {
    "round": np.sqrt(_U * (1 - _U)),
    "pointed": _U ** 0.45 * (1 - _U) * 0.95,
    "thin": np.minimum(1, 6 * _U) * np.sqrt(1 - _U ** 6) / 2,
    "cup": np.sqrt(_U) * np.sqrt(1 - _U ** 3) / 2,
}


def petal(length: float, width: float, shape: str, angle: float, start: float = 0.0) -> np.ndarray:
    """The outline of one petal pointing along ``angle``, from radius ``start`` outwards.

    ``shape``: ``round`` (widest in the middle, blunt tip), ``pointed`` (widest near the
    base, sharp tip), ``thin`` (a narrow strap of even width), ``cup`` (widest near the
    tip, rounded: a tulip's petal)."""
    half = _PETAL_HALF[shape] * width
    along = start + _U * length
    outline = np.empty((2 * len(_U), 2))
    outline[: len(_U), 0], outline[: len(_U), 1] = along, half
    outline[len(_U):, 0], outline[len(_U):, 1] = along[::-1], -half[::-1]
    c, s = np.cos(angle), np.sin(angle)
    return outline @ np.array([[c, s], [-s, c]])


def disc(radius: float, n: int = 24, cx: float = 0.0, cy: float = 0.0) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], 1)


def wobbly_disc(rng: np.random.Generator, radius: float, wobble: float = 0.08, n: int = 32) -> np.ndarray:
    """A hand-made-looking round outline (a bun, a cake, a dumpling)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = radius * (1 + wobble * np.sin(t * rng.integers(2, 5) + rng.uniform(0, 6)) + rng.normal(0, wobble / 4, n))
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)
