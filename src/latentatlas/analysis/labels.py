"""Attribute labels: binary labels per z-point from the run's metadata (zpoints.parquet).

CelebA's 40 attributes are stored as -1/1 (0 marks an image without an attribute row); the synthetic faces'
generating factors are floats, split at the training rows' median ("has it" means "above the median").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from latentatlas import checks
from latentatlas.data.meta import BOOKKEEPING_COLUMNS
from latentatlas.errors import LatentAtlasError

# Columns of zpoints.parquet that describe the row, not the image's content: never attributes or conditions.
RESERVED_COLUMNS = BOOKKEEPING_COLUMNS  # the metadata columns that are not attributes


@dataclass(frozen=True)
class AttributeLabels:
    """Binary labels per z-point, one column per attribute: 1 has it, 0 has not, -1 unknown.

    Attributes
    ----------
    names : tuple of str
    values : ndarray of int8, shape (n, k)
    kinds : tuple of str
        "binary" (stored as -1/1 or 0/1) or "median-split" (a float factor above its median).
    thresholds : tuple of float or None
        The median of a split factor, None for binary attributes.
    skipped : dict
        Columns that are not attributes, with the reason.
    """

    names: tuple[str, ...]
    values: np.ndarray
    kinds: tuple[str, ...]
    thresholds: tuple[float | None, ...]
    skipped: dict[str, str]

    def __len__(self) -> int:
        return len(self.values)

    def rows(self, mask: np.ndarray | slice) -> AttributeLabels:
        """The labels of the selected rows (boolean mask, indices or a slice)."""
        return AttributeLabels(self.names, self.values[mask], self.kinds, self.thresholds, self.skipped)

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.index(name)]

    def index(self, name: str) -> int:
        if name not in self.names:
            raise LatentAtlasError(unknown_name(name, self.names))
        return self.names.index(name)


def unknown_name(name: str, names: Sequence[str]) -> str:
    """'unknown attribute X; did you mean Y?' with the nearest names by difflib (case-insensitive)."""
    by_lower = {n.lower(): n for n in names}
    nearest = [by_lower[m] for m in checks.nearest_names(name.lower(), by_lower, n=3, cutoff=0.5)]
    hint = f"did you mean {' or '.join(repr(n) for n in nearest)}?" if nearest else f"choose from {', '.join(names)}"
    return f"unknown attribute {name!r}; {hint}"


def attribute_labels(
    meta: pd.DataFrame, reference: np.ndarray | None = None, binarise: str = "median"
) -> AttributeLabels:
    """Binary labels from z-point metadata (zpoints.parquet) for every attribute-like column.

    Columns holding only -1/0/1 are binary (-1 or 0 = without, 1 = with; with -1 present, 0 = unknown as
    in CelebA rows without attributes); other numeric columns are split at the median of the
    `reference` rows (default all rows; pass the training rows so held-out rows do not move the split)
    when `binarise="median"`, and skipped when `binarise="skip"`.
    """
    if binarise not in ("median", "skip"):
        raise LatentAtlasError(f"binarise must be 'median' or 'skip', got {binarise!r}")
    reference = np.ones(len(meta), bool) if reference is None else np.asarray(reference, bool)
    if reference.shape != (len(meta),):
        raise LatentAtlasError(f"reference mask has {reference.shape} entries for {len(meta)} rows")
    names, columns, kinds, thresholds, skipped = [], [], [], [], {}
    for name in meta.columns:
        if name in RESERVED_COLUMNS:
            continue
        column = meta[name]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            skipped[str(name)] = "not numeric" if not pd.api.types.is_bool_dtype(column) else "boolean, not 0/1"
            continue
        values = column.to_numpy(dtype=np.float64)
        present = set(np.unique(values[np.isfinite(values)]).tolist())
        labels = np.full(len(values), -1, np.int8)
        without = -1.0 if -1.0 in present else 0.0
        if present <= {-1.0, 0.0, 1.0} and {without, 1.0} <= present:
            labels[values == 1] = 1  # with -1 present, 0 marks an image without attribute values: unknown
            labels[values == without] = 0
            kind, threshold = "binary", None
        elif len(present) <= 2:
            reason = "two values other than -1/1 or 0/1" if not present <= {-1.0, 0.0, 1.0} else "one class only"
            skipped[str(name)] = "constant" if len(present) < 2 else reason
            continue
        elif binarise == "skip":
            skipped[str(name)] = "not binary (binarise='skip')"
            continue
        else:
            threshold = float(np.nanmedian(values[reference]))
            finite = np.isfinite(values)
            labels[finite] = (values[finite] > threshold).astype(np.int8)
            kind = "median-split"
        names.append(str(name))
        columns.append(labels)
        kinds.append(kind)
        thresholds.append(threshold)
    stacked = np.stack(columns, axis=1) if columns else np.zeros((len(meta), 0), np.int8)
    return AttributeLabels(tuple(names), stacked, tuple(kinds), tuple(thresholds), skipped)
