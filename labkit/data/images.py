"""Checking that a file is an image labkit can use, before it enters the workspace, and
decoding untrusted images (uploads to the service, folders to predict) the same careful way."""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from PIL import Image, UnidentifiedImageError

from labkit.errors import LabkitError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
# Larger than any photo a lab needs; a decompression bomb claims far more.
MAX_PIXELS = 40_000_000


def list_images(folder: str | Path) -> list[Path]:
    """Every image file under ``folder`` (by extension), sorted; an error when there is none."""
    images = sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        raise LabkitError(f"no images in {folder}", f"put {', '.join(sorted(IMAGE_EXTENSIONS))} files there")
    return images


def image_problem(path: Path) -> str | None:
    """Why ``path`` cannot be used as an image (``None`` when it can): not an image file,
    corrupt or truncated, or claiming more than ``MAX_PIXELS`` pixels."""
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        return f"not an image file (extension {path.suffix or 'none'!r})"
    try:
        decode(path)
    except ImageError as exc:
        return str(exc)
    return None


class ImageError(ValueError):
    """An image that cannot be used; the message says why."""


def decode(source: Path | bytes, mode: str | None = None, size: int | None = None) -> np.ndarray:
    """Decode every pixel of an image file or bytes, refusing what is corrupt, truncated or
    claims more than ``MAX_PIXELS`` (checked before decoding); optionally convert it to
    ``mode`` ("RGB", "L") and resize it to ``size`` x ``size``. Returns uint8 HWC or HW."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise ImageError(f"image too large: {w}x{h} pixels (at most {MAX_PIXELS:,}); resize it first")
                im.load()  # decodes every pixel: catches truncated and corrupt data
                if mode:
                    im = im.convert(mode)
                if size:
                    im = im.resize((size, size), Image.Resampling.BILINEAR)
                return np.asarray(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"image too large, a possible decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise ImageError("corrupt or not an image: the bytes are not a known image format") from None
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, ImageError):
            raise
        raise ImageError(f"corrupt image: {exc}") from None
