"""The built-in `digits` source: scikit-learn's bundled 1,797 handwritten digits (8 x 8, 17 grey levels),
upscaled to the image size and repeated into RGB, with the digit as `class` in the metadata. A small real
data set with labels that needs no download."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from latentatlas.data.meta import image_rows


def digits_into(out: np.ndarray, n: int, image_size: int) -> pd.DataFrame:
    """Write the first n digits into `out` (n, S, S, 3) uint8; returns their meta."""
    # function-level: sklearn.datasets costs every command its import time; only this source needs it
    from sklearn.datasets import load_digits

    bunch = load_digits()
    grey = np.clip(np.asarray(bunch.images[:n]) * (255 / 16), 0, 255).astype(np.uint8)  # type: ignore[union-attr]
    for i, digit in enumerate(grey):
        # Bicubic keeps the strokes smooth; nearest neighbour would give blocks of 8 x 8 hard edges.
        image = Image.fromarray(digit).resize((image_size, image_size), Image.Resampling.BICUBIC)
        out[i] = np.repeat(np.asarray(image)[:, :, None], 3, axis=2)
    ids = [f"digits-{i:04d}" for i in range(len(grey))]
    labels = np.asarray(bunch.target[:n], dtype=np.int64)  # type: ignore[union-attr]
    return image_rows(ids, ids).assign(**{"class": labels})


DIGITS_COUNT = 1797
