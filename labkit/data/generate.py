"""``labkit data make``: the offline generators, written out as a dataset.

Image ``i`` is drawn from its own random stream ``(seed, i)``, so a dataset is a pure
function of (generator, count, size, seed), and the work splits across processes.
"""
from __future__ import annotations

import importlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from labkit import cpu
from labkit.errors import LabkitError

GENERATORS = ("flowers", "food", "crowd", "digits", "glyphs")
# English ids, or the names the original tutorial's dataset gives the classes (food: 美食/凉皮 ...)
CLASS_NAMES = ("en", "tutorial")
PARALLEL_ABOVE = 200  # below this, starting worker processes costs more than it saves
# The class-folder generators: module (its CLASSES), drawing function, file type. Grey glyphs are
# PNG, as the digits are: JPEG would blur their 17 levels.
DRAWN = {"flowers": ("labkit.data.flowers", "draw_flower", "jpg"), "food": ("labkit.data.food", "draw_food", "jpg"),
         "glyphs": ("labkit.data.glyphs", "draw_glyph", "png")}


def tutorial_names(kind: str) -> dict[str, str]:
    """Class id -> the original tutorial's name for it, where the tutorial names its classes otherwise (food)."""
    if kind == "food":
        from labkit.data.food import TUTORIAL_NAMES

        return TUTORIAL_NAMES
    return {}


def _drawn(kind: str):
    """The module of a class-folder generator (its CLASSES and drawing function)."""
    return importlib.import_module(DRAWN[kind][0])


def classes(kind: str) -> tuple[str, ...]:
    if kind in DRAWN:
        return _drawn(kind).CLASSES
    return tuple(str(d) for d in range(10)) if kind == "digits" else ()


def generate(kind: str, out: Path, count: int, size: int, seed: int, class_names: str = "en") -> list[dict]:
    """Write ``count`` images of generator ``kind`` under ``out``; return the item records, labelled
    with the English class ids or (``class_names="tutorial"``) the original tutorial's names. File names stay ASCII."""
    if kind not in GENERATORS:
        raise LabkitError(f"unknown generator {kind!r}", f"use one of {', '.join(GENERATORS)}")
    if class_names not in CLASS_NAMES:
        raise LabkitError(f"unknown class names {class_names!r}", f"use one of {', '.join(CLASS_NAMES)}")
    if count < 1:
        raise LabkitError(f"--count must be at least 1 (got {count})", "ask for one image or more")
    if not 16 <= size <= 2048:
        raise LabkitError(f"--size must be between 16 and 2048 pixels (got {size})", "pick e.g. 64 or 224")
    if kind == "digits":
        return _digits(out, count, size, seed)
    if class_names == "tutorial":
        names = tutorial_names(kind)
        return [dict(item, label=names.get(item["label"], item["label"])) for item in generate(kind, out, count, size, seed)]
    (out / "images").mkdir(parents=True, exist_ok=True)
    if kind == "crowd":
        (out / "ground-truth").mkdir(parents=True, exist_ok=True)
    else:
        for label in classes(kind):
            (out / "images" / label).mkdir(parents=True, exist_ok=True)
    workers = min(cpu.cores(), 8) if count > PARALLEL_ABOVE else 1
    chunks = [range(i, count, workers) for i in range(workers)]
    if workers == 1:
        results = [_draw_range(kind, out, size, seed, chunks[0])]
    else:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_draw_range, [kind] * workers, [out] * workers, [size] * workers,
                                    [seed] * workers, chunks))
    return sorted((item for chunk in results for item in chunk), key=lambda it: it["file"])


def _draw_range(kind: str, out: Path, size: int, seed: int, indices: range) -> list[dict]:
    items = []
    for i in indices:
        rng = np.random.default_rng([seed, i])
        if kind == "crowd":
            from labkit.data.crowd import draw_crowd, write_ground_truth

            image, heads = draw_crowd(size, rng, max_heads=max(20, size * size // 160))
            name = f"IMG_{i + 1}"
            image.save(out / "images" / f"{name}.jpg", quality=90)
            write_ground_truth(out / "ground-truth" / f"GT_{name}.mat", heads)
            items.append({"file": f"images/{name}.jpg", "ground_truth": f"ground-truth/GT_{name}.mat",
                          "count": len(heads)})
            continue
        _, draw, ext = DRAWN[kind]
        module = _drawn(kind)
        label = module.CLASSES[i % len(module.CLASSES)]
        rel = f"images/{label}/{label}_{i + 1:05d}.{ext}"
        getattr(module, draw)(label, size, rng).save(out / rel, quality=90)  # PNG ignores the quality
        items.append({"file": rel, "label": label})
    return items


def _digits(out: Path, count: int, size: int, seed: int) -> list[dict]:
    """scikit-learn's bundled handwritten digits (1,797 images of 8x8), upscaled."""
    from sklearn.datasets import load_digits

    from labkit.data.glyphs import counts_image

    digits = load_digits()
    if count > len(digits.images):
        raise LabkitError(f"the digits dataset has {len(digits.images)} images; --count {count} is more",
                          f"use --count {len(digits.images)} or fewer")
    picked = np.sort(np.random.default_rng(seed).permutation(len(digits.images))[:count])
    items = []
    for i in picked:
        label = str(digits.target[i])
        rel = f"images/{label}/digit_{i + 1:04d}.png"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        counts_image(digits.images[i], size).save(out / rel)
        items.append({"file": rel, "label": label})
    return sorted(items, key=lambda it: it["file"])
