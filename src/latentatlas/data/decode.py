"""The one way an image file becomes a model-sized square: decode, take a centred square crop, resize.

Crop first, then resize: resizing with `box=` would let the filter pull in pixels from outside the crop.
"""

from __future__ import annotations

import io
import math
import re
import warnings
import zipfile
import zlib

import numpy as np
from PIL import Image, UnidentifiedImageError

# The most pixels one image may have (read from its header, before anything is decoded): a 50-megapixel
# photo decodes in about 150 MB; a decompression bomb of 10 GB of pixels is refused instead.
MAX_DECODE_PIXELS = 50_000_000


def crop_box(width: int, height: int, fraction: float | None) -> tuple[int, int, int, int]:
    """Centred square: `fraction` of the width (CelebA face crop) or, with None, the largest one that fits."""
    side = min(width, height) if fraction is None else min(width, height, max(1, round(fraction * width)))
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def _open(data: bytes, name: str | None) -> Image.Image:
    """Image.open on the bytes, quietly: Pillow's own bomb check warns (several lines on stderr) above
    89 megapixels, which our smaller cap refuses anyway; its errors name the file, not a BytesIO."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            what = f"{name} is " if name else ""
            raise UnidentifiedImageError(f"{what}not an image, or a damaged one") from None
        except Image.DecompressionBombError as exc:  # past Pillow's own cap (2 x 89 megapixels)
            found = re.search(r"\((\d+) pixels\)", str(exc))
            size = f"{int(found.group(1)):,} pixels" if found else "its size"
            raise Image.DecompressionBombError(
                f"{size} is more than the {MAX_DECODE_PIXELS:,} decoded per image"
            ) from None


def decode_image(data: bytes, image_size: int, crop_fraction: float | None, name: str | None = None) -> np.ndarray:
    """Decode one file's bytes to a uint8 (S, S, 3) centred square. Raises on anything that is not an image;
    `name` (the file or zip member) is what the messages call it."""
    with _open(data, name) as image:
        width, height = image.size
        if width * height > MAX_DECODE_PIXELS:
            raise Image.DecompressionBombError(
                f"{width} x {height} pixels is more than the {MAX_DECODE_PIXELS:,} decoded per image"
            )
        left, top, right, _ = crop_box(width, height, crop_fraction)
        if image.format == "JPEG":
            # JPEG can decode at 1/2, 1/4, 1/8 scale for free; ask for the smallest that keeps the crop >= size.
            scale = image_size / (right - left)
            image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
        image.load()
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            image = image.convert("RGBA")
            white = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, image)
        elif image.mode in ("I", "F") or image.mode.startswith("I;16"):
            # 16-bit / float grey: rescale to 8 bits before RGB, which would otherwise clip.
            values = np.asarray(image, dtype=np.float64)
            span = max(values.max() - values.min(), 1e-12)
            image = Image.fromarray(((values - values.min()) / span * 255).astype(np.uint8))
        image = image.convert("RGB")
        # Crop first: resizing with `box=` would let the filter pull in pixels from outside the crop.
        image = image.crop(crop_box(image.width, image.height, crop_fraction))
        image = image.resize((image_size, image_size), Image.Resampling.LANCZOS)
        return np.asarray(image, dtype=np.uint8)


# Everything a damaged, truncated or mislabelled file (or zip member) can raise while being read and decoded.
DECODE_ERRORS = (
    OSError,
    UnidentifiedImageError,
    ValueError,
    SyntaxError,
    EOFError,
    Image.DecompressionBombError,
    zipfile.BadZipFile,
    zlib.error,
    KeyError,
)


def decode_error_reason(exc: BaseException) -> str:
    """The one-line reason a file is skipped, for the list of skipped files."""
    if isinstance(exc, KeyError):
        return "missing from the archive"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image, or a damaged one"
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
