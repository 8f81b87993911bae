"""The ``flowers`` generator: the five classes of the seeds' flower dataset, drawn.

The classes share colours on purpose (yellow daisies, dandelions, sunflowers, roses and
tulips all occur), so a model has to tell them apart by shape: how many petals, how
long and pointed, how big the centre, radial or a side-on cup.
"""
from __future__ import annotations

import numpy as np

from labkit.data.draw import SUPERSAMPLE, Pose, canvas, disc, finish, jitter, petal, shade

CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")

GARDEN = [(70, 120, 50), (40, 90, 40), (110, 150, 70), (120, 100, 70), (150, 180, 220), (90, 80, 60), (60, 110, 90)]
WHITE, YELLOW, GOLD, ORANGE = (245, 245, 240), (245, 210, 40), (235, 170, 30), (240, 130, 40)
RED, PINK, PURPLE, LILAC = (200, 30, 40), (235, 120, 160), (120, 50, 140), (200, 170, 230)
COLOURS = {
    "daisy": [WHITE, WHITE, WHITE, PINK, LILAC, YELLOW],
    "dandelion": [YELLOW, YELLOW, GOLD, WHITE],
    "roses": [RED, RED, PINK, WHITE, YELLOW, ORANGE],
    "sunflowers": [YELLOW, GOLD, ORANGE],
    "tulips": [RED, PINK, YELLOW, WHITE, PURPLE, ORANGE],
}


def _radial(draw, rng, pose, colour, count, length, width, shape, start=0.0, spread=0.06):
    offset = rng.uniform(0, 2 * np.pi)
    for i in range(count):
        a = offset + 2 * np.pi * i / count + rng.normal(0, spread)
        c = jitter(rng, colour, 0.04)
        draw.polygon(pose(petal(length * rng.uniform(0.9, 1.1), width, shape, a, start)),
                     fill=c, outline=shade(c, 0.8))


def _daisy(draw, rng, pose, colour):
    _radial(draw, rng, pose, colour, rng.integers(13, 22), 0.95, 0.17, "round")
    draw.polygon(pose(disc(rng.uniform(0.22, 0.3))), fill=jitter(rng, GOLD))


def _dandelion(draw, rng, pose, colour):
    if colour == WHITE:  # a seed head: a ball of fine grey-white rays, no centre
        for a in np.linspace(0, 2 * np.pi, 90, endpoint=False) + rng.uniform(0, 1):
            end = pose(np.array([[0.0, 0.0], [np.cos(a), np.sin(a)]]) * rng.uniform(0.7, 1.0))
            draw.line(end, fill=jitter(rng, (225, 225, 215)), width=max(1, int(pose.r / 40)))
        draw.polygon(pose(disc(0.12)), fill=(150, 140, 100))
        return
    for layer, length in enumerate((1.0, 0.78, 0.55)):
        _radial(draw, rng, pose, shade(colour, 1 - 0.08 * layer), rng.integers(34, 48), length, 0.08, "thin")
    draw.polygon(pose(disc(0.1)), fill=shade(colour, 0.85))


def _rose(draw, rng, pose, colour):
    rings = rng.integers(3, 5)
    for ring in range(rings):
        k = 1 - ring / rings
        _radial(draw, rng, pose, shade(colour, 0.75 + 0.25 * ring / rings), rng.integers(5, 7),
                0.95 * k, 0.75 * k, "round", start=0.05 * k, spread=0.15)
    for r in (0.16, 0.1, 0.05):  # the tight swirl at the heart
        c = shade(colour, 0.6)
        box = pose(np.array([[-r, -r], [r, r]]))
        draw.arc([min(box[0][0], box[1][0]), min(box[0][1], box[1][1]),
                  max(box[0][0], box[1][0]), max(box[0][1], box[1][1])],
                 rng.uniform(0, 360), rng.uniform(200, 330) + 360, fill=c, width=max(1, int(pose.r / 25)))


def _sunflower(draw, rng, pose, colour):
    centre = rng.uniform(0.4, 0.5)
    _radial(draw, rng, pose, shade(colour, 0.85), rng.integers(16, 26), 0.98 - centre, 0.26, "pointed", start=centre * 0.9)
    _radial(draw, rng, pose, colour, rng.integers(16, 26), 0.9 - centre, 0.22, "pointed", start=centre * 0.9)
    draw.polygon(pose(disc(centre)), fill=jitter(rng, (90, 55, 25)))
    for _ in range(25):  # seeds
        p = rng.normal(0, centre / 2.2, 2)
        draw.polygon(pose(disc(0.025, 6, *p)), fill=jitter(rng, (50, 30, 15)))


def _tulip(draw, rng, pose, colour):
    # Seen from the side: a stem, a leaf and a cup of three tall petals, drawn upright.
    draw.line(pose(np.array([[0.0, 0.25], [rng.normal(0, 0.08), 1.7]])), fill=jitter(rng, (60, 130, 50)),
              width=max(2, int(pose.r / 10)))
    side = rng.choice([-1, 1])
    draw.polygon(pose(petal(0.9, 0.3, "pointed", -np.pi / 2 + side * 0.6) + [0, 1.4]),
                 fill=jitter(rng, (70, 140, 60)))
    for dx, angle in ((-0.28, -np.pi / 2 - 0.18), (0.28, -np.pi / 2 + 0.18), (0.0, -np.pi / 2)):
        c = jitter(rng, colour, 0.05) if dx else shade(colour, 1.1)
        draw.polygon(pose(petal(1.0, 0.62, "cup", angle) + [dx, 0.25]), fill=c, outline=shade(c, 0.75))


DRAWERS = {"daisy": _daisy, "dandelion": _dandelion, "roses": _rose, "sunflowers": _sunflower, "tulips": _tulip}


def draw_flower(label: str, size: int, rng: np.random.Generator):
    """One image of class ``label``: a main flower, sometimes smaller ones of the same kind."""
    img, draw = canvas(rng, size, GARDEN)
    n = size * SUPERSAMPLE
    colour = COLOURS[label][rng.integers(len(COLOURS[label]))]
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        r = rng.uniform(0.1, 0.2) * n
        pose = Pose(*rng.uniform(0, n, 2), r, rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.0))
        DRAWERS[label](draw, rng, pose, jitter(rng, colour, 0.05))
    r = rng.uniform(0.22, 0.42) * n
    cx, cy = rng.uniform(0.3, 0.7, 2) * n
    upright = label == "tulips"
    pose = Pose(cx, cy, r, rng.normal(0, 0.25) if upright else rng.uniform(0, 2 * np.pi),
                1.0 if upright else rng.uniform(0.55, 1.0))
    DRAWERS[label](draw, rng, pose, colour)
    return finish(rng, img, size)
