"""Image grids: many uint8 images tiled into one picture."""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image, PngImagePlugin

from latentatlas.errors import LatentAtlasError
from latentatlas.io import atomic_path


def image_grid(images: np.ndarray, ncols: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile uint8 images (n, H, W, 3) into one uint8 picture with white gutters."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise LatentAtlasError(f"expected a non-empty uint8 array (n, H, W, 3), got {images.dtype} {images.shape}")
    n, h, w, _ = images.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = img
    return grid


def save_image_grid(
    images: np.ndarray, path: str | os.PathLike, ncols: int | None = None, scale: int = 1, mark: str | None = None
) -> None:
    """Write uint8 images (n, H, W, 3) as one PNG grid; `scale` enlarges small images (nearest neighbour).

    `mark` (io.output_mark) goes into a "Software" text chunk, written before the pixels."""
    picture = Image.fromarray(image_grid(images, ncols))
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    with atomic_path(path) as tmp:
        text = None
        if mark is not None:
            text = PngImagePlugin.PngInfo()
            text.add_text("Software", mark)
        picture.save(tmp, format="PNG", pnginfo=text)


def split_grid(picture: np.ndarray, tile: int, pad: int = 2) -> np.ndarray:
    """The tiles of a grid written by `save_image_grid` (any `scale`), as (rows, cols, tile, tile, 3).

    `tile` is the side of one image before scaling; the scale and the number of columns are read from the
    picture's size. Raises when the picture is not such a grid.
    """
    picture = np.asarray(picture)[..., :3]
    height, width = picture.shape[:2]
    for scale in range(1, 9):
        if height % scale or width % scale:
            continue
        h, w = height // scale, width // scale
        if (h - pad) % (tile + pad) or (w - pad) % (tile + pad) or h <= pad or w <= pad:
            continue
        small = picture[::scale, ::scale]
        nrows, ncols = (h - pad) // (tile + pad), (w - pad) // (tile + pad)
        step = tile + pad
        tiles = [
            [
                small[pad + r * step : pad + r * step + tile, pad + c * step : pad + c * step + tile]
                for c in range(ncols)
            ]
            for r in range(nrows)
        ]
        return np.asarray(tiles, dtype=np.uint8)
    raise LatentAtlasError(f"a {width}x{height} picture is not a grid of {tile}-pixel tiles with {pad}-pixel gutters")
