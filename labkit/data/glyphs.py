"""The ``glyphs`` generator: capital letters made the way the UCI handwritten digits were (the
``digits`` generator's source): a 32x32 bitmap counted in 4x4 blocks, 8x8 pixels of 17 grey
levels, then upscaled. Fonts, sizes, slants and offsets vary per image.

It is the transfer lab's base dataset: the same kind of image as ``digits`` with other classes,
so a model pre-trained on it starts fine-tuning on digits well ahead (docs/BENCHMARKS.md). The
fonts are the DejaVu faces matplotlib ships, so nothing is downloaded.
"""
from __future__ import annotations

import string
from functools import cache
from pathlib import Path

import numpy as np

CLASSES = tuple(string.ascii_uppercase)
FACES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSansMono.ttf",
         "DejaVuSansMono-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf")
BITMAP, BLOCK = 32, 4  # the UCI digits' 32x32 bitmaps, counted in 4x4 blocks: 8x8 pixels of 0-16


def counts_image(counts: np.ndarray, size: int):
    """An 8x8 array of block counts (0-16) as a grey image of ``size`` pixels."""
    from PIL import Image

    pixels = (np.asarray(counts) * (255 / BLOCK ** 2)).astype(np.uint8)
    return Image.fromarray(pixels, "L").resize((size, size), Image.Resampling.BILINEAR)


@cache
def _font(face: str, points: int):
    import matplotlib
    from PIL import ImageFont

    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / face), points)


def draw_glyph(label: str, size: int, rng: np.random.Generator):
    """Letter ``label`` in a random face, slant and width, as the UCI digits were digitised."""
    from PIL import Image, ImageDraw

    big = Image.new("L", (2 * BITMAP, 2 * BITMAP), 0)
    font = _font(FACES[rng.integers(len(FACES))], int(rng.integers(20, 30)))
    centre = (BITMAP + int(rng.integers(-3, 4)), BITMAP + int(rng.integers(-3, 4)))
    ImageDraw.Draw(big).text(centre, label, fill=255, font=font, anchor="mm")
    big = big.rotate(float(rng.uniform(-15, 15)), resample=Image.Resampling.BILINEAR)
    # As the digits: the character scaled to the bitmap's height, centred across its width.
    glyph = big.crop(big.getbbox()).resize((int(rng.integers(20, 29)), BITMAP), Image.Resampling.BILINEAR)
    bitmap = Image.new("L", (BITMAP, BITMAP), 0)
    bitmap.paste(glyph, ((BITMAP - glyph.width) // 2, 0))
    bits = np.asarray(bitmap) > 127
    n = BITMAP // BLOCK
    return counts_image(bits.reshape(n, BLOCK, n, BLOCK).sum(axis=(1, 3)), size)
