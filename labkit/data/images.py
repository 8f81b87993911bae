"""Checking that a file is an image labkit can use, before it enters the workspace."""
from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
# Larger than any photo a lab needs; a decompression bomb claims far more.
MAX_PIXELS = 40_000_000


def image_problem(path: Path) -> str | None:
    """Why ``path`` cannot be used as an image (``None`` when it can): not an image file,
    corrupt or truncated, or claiming more than ``MAX_PIXELS`` pixels."""
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        return f"not an image file (extension {path.suffix or 'none'!r})"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    return f"image too large: {w}x{h} pixels (at most {MAX_PIXELS:,}); resize it first"
                im.load()  # decodes every pixel: catches truncated and corrupt data
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return f"image too large, a possible decompression bomb: {exc}"
    except UnidentifiedImageError as exc:
        return f"corrupt or not an image: {exc}"
    except (OSError, SyntaxError, ValueError) as exc:
        return f"corrupt image: {exc}"
    return None
