"""The ``food`` generator: the four dishes of seed 004, drawn.

liangpi (cold skin noodles: a bowl of long pale strips in red chili oil, green cucumber),
shizibing (persimmon cakes: flat orange discs with a pressed flower pattern),
guantangbao (soup dumplings: pale round buns with radial pleats, in a steamer),
roujiamo (a round golden flatbread, cut open and filled with meat).
"""
from __future__ import annotations

import numpy as np

from labkit.data.draw import SUPERSAMPLE, Pose, canvas, disc, finish, jitter, petal, shade, wobbly_disc

CLASSES = ("liangpi", "shizibing", "guantangbao", "roujiamo")
# What tutorial 004's dataset calls them (``labkit data make food --class-names tutorial``)
TUTORIAL_NAMES = dict(zip(CLASSES, ("美食/凉皮", "美食/柿子饼", "美食/灌汤包", "美食/肉夹馍"), strict=True))

TABLE = [(150, 110, 80), (120, 85, 60), (200, 190, 170), (90, 70, 55), (170, 60, 50), (210, 200, 185), (60, 70, 90)]
PLATE = [(235, 235, 230), (225, 215, 195), (200, 215, 230), (240, 240, 245)]


def _plate(draw, rng, pose, radius=1.0):
    c = jitter(rng, PLATE[rng.integers(len(PLATE))], 0.03)
    draw.polygon(pose(disc(radius, 48)), fill=shade(c, 0.85))
    draw.polygon(pose(disc(radius * 0.86, 48)), fill=c)


def _liangpi(draw, rng, pose):
    _plate(draw, rng, pose)
    width = max(2, int(pose.r / 9))
    for _ in range(rng.integers(14, 22)):  # long wavy noodle strips
        t = np.linspace(-0.7, 0.7, 12)
        phase, amp, y0 = rng.uniform(0, 6), rng.uniform(0.04, 0.12), rng.uniform(-0.6, 0.6)
        pts = np.stack([t, y0 + amp * np.sin(t * rng.uniform(4, 9) + phase)], 1)
        pts = pts @ np.array([[np.cos(a := rng.uniform(0, np.pi)), np.sin(a)], [-np.sin(a), np.cos(a)]])
        draw.line(pose(pts * 0.95), fill=jitter(rng, (232, 220, 190), 0.04), width=width)
    for _ in range(rng.integers(3, 7)):  # chili oil
        p = rng.uniform(-0.5, 0.5, 2)
        draw.polygon(pose(disc(rng.uniform(0.08, 0.2), 12, *p)), fill=jitter(rng, (190, 40, 20), 0.08))
    for _ in range(rng.integers(6, 14)):  # cucumber shreds
        p = rng.uniform(-0.55, 0.55, 2)
        draw.line(pose(np.array([p, p + rng.normal(0, 0.15, 2)])), fill=jitter(rng, (80, 160, 60)), width=width)


def _shizibing(draw, rng, pose):
    _plate(draw, rng, pose)
    cakes = rng.integers(1, 4)
    for _ in range(cakes):
        r = rng.uniform(0.3, 0.45) if cakes > 1 else rng.uniform(0.5, 0.7)
        sub = pose.part(rng.uniform(-0.35, 0.35, 2) * (cakes > 1), r, rng.uniform(0, 6), rng.uniform(0.7, 1.0))
        c = jitter(rng, (225, 120, 35), 0.05)
        draw.polygon(sub(wobbly_disc(rng, 1.0, 0.03)), fill=shade(c, 0.8))
        draw.polygon(sub(wobbly_disc(rng, 0.9, 0.03)), fill=c)
        for k in range(rng.integers(5, 9)):  # the pressed flower in the middle
            a = 2 * np.pi * k / 8
            draw.polygon(sub(petal(0.45, 0.18, "round", a)), outline=shade(c, 0.7), fill=shade(c, 1.08))
        draw.polygon(sub(disc(0.1)), fill=shade(c, 0.65))


def _guantangbao(draw, rng, pose):
    c_basket = jitter(rng, (170, 130, 80), 0.05)
    draw.polygon(pose(disc(1.0, 48)), fill=shade(c_basket, 0.8))
    draw.polygon(pose(disc(0.92, 48)), fill=c_basket)
    for k in range(8):  # bamboo weave
        a = np.pi * k / 8
        draw.line(pose(np.array([[-np.cos(a), -np.sin(a)], [np.cos(a), np.sin(a)]]) * 0.9),
                  fill=shade(c_basket, 0.85), width=max(1, int(pose.r / 40)))
    buns = rng.integers(1, 5)
    for _ in range(buns):
        r = rng.uniform(0.3, 0.42) if buns > 1 else rng.uniform(0.5, 0.65)
        sub = pose.part(rng.uniform(-0.4, 0.4, 2) * (buns > 1), r, rng.uniform(0, 6), rng.uniform(0.8, 1.0))
        c = jitter(rng, (240, 232, 210), 0.03)
        draw.polygon(sub(wobbly_disc(rng, 1.0, 0.04)), fill=c, outline=shade(c, 0.8))
        top = rng.normal(0, 0.08, 2)
        for a in np.linspace(0, 2 * np.pi, rng.integers(14, 22), endpoint=False):  # pleats to the knot
            draw.line(sub(np.array([top, [0.85 * np.cos(a), 0.85 * np.sin(a)]])), fill=shade(c, 0.82),
                      width=max(1, int(sub.r / 14)))
        draw.polygon(sub(disc(0.12, 10, *top)), fill=shade(c, 0.9))


def _roujiamo(draw, rng, pose):
    _plate(draw, rng, pose)
    sub = pose.part((0, 0), rng.uniform(0.6, 0.8), rng.normal(0, 0.3), rng.uniform(0.75, 1.0))
    c = jitter(rng, (205, 150, 70), 0.05)
    draw.polygon(sub(wobbly_disc(rng, 1.0, 0.03)), fill=shade(c, 0.8))
    draw.polygon(sub(wobbly_disc(rng, 0.93, 0.03)), fill=c)
    for ring in (0.75, 0.5, 0.25):  # the bun's "iron ring" spiral
        draw.polygon(sub(disc(ring, 36)), outline=shade(c, 0.75))
    gap = np.array([[-0.85, -0.12], [0.85, -0.12], [0.85, 0.14], [-0.85, 0.14]])
    draw.polygon(sub(gap), fill=jitter(rng, (95, 45, 25), 0.05))  # the cut, full of meat
    for _ in range(rng.integers(8, 16)):
        p = [rng.uniform(-0.75, 0.75), rng.uniform(-0.1, 0.12)]
        filling = (110, 55, 30) if rng.random() < 0.75 else (70, 150, 50)
        draw.polygon(sub(disc(rng.uniform(0.05, 0.1), 6, *p)), fill=jitter(rng, filling, 0.08))


DRAWERS = {"liangpi": _liangpi, "shizibing": _shizibing, "guantangbao": _guantangbao, "roujiamo": _roujiamo}


def draw_food(label: str, size: int, rng: np.random.Generator):
    """One image of dish ``label`` on a table, at a random place, scale, angle and light."""
    img, draw = canvas(rng, size, TABLE)
    n = size * SUPERSAMPLE
    pose = Pose(*(rng.uniform(0.35, 0.65, 2) * n), rng.uniform(0.3, 0.48) * n, rng.uniform(0, 2 * np.pi),
                rng.uniform(0.6, 1.0))
    DRAWERS[label](draw, rng, pose)
    return finish(rng, img, size)
