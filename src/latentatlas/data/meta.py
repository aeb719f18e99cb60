"""The bookkeeping columns of the image metadata, spelled once.

Every source's meta rows start with `IMAGE_COLUMNS` (built by `image_rows`); `encode` adds the row `index`
and the `subset`, giving the leading `BOOKKEEPING_COLUMNS` of the z-point metadata (zpoints.parquet).
Every other column is an attribute (CelebA), a class or a synthetic factor.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

IMAGE_COLUMNS = ("image_id", "path", "partition")
BOOKKEEPING_COLUMNS = ("index", "image_id", "path", "subset", "partition")


def image_rows(ids: Sequence[str], paths: Sequence[str], partition: str = "all") -> pd.DataFrame:
    """The leading meta columns of a source's images, one row per image."""
    return pd.DataFrame(dict(zip(IMAGE_COLUMNS, (list(ids), list(paths), partition))))


__all__ = ["BOOKKEEPING_COLUMNS", "IMAGE_COLUMNS", "image_rows"]
