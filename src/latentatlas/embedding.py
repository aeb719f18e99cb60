"""A nonlinear 2-D map of z-points: UMAP (`umap-learn`), shared by the explorer and the report.

UMAP keeps neighbourhoods, not distances: it shows clusters and how the bulk is connected, where a
linear plane shows widths and correlations. Its coordinates mean nothing on their own, so nothing is
decoded from them; a click on the map decodes the nearest real z-point. `colour_columns` lists the
z-point metadata columns (attributes, generating factors, subsets) a map can be coloured by.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import numpy as np
import pandas as pd

from latentatlas import checks
from latentatlas.errors import LatentAtlasError

METADATA_BOOKKEEPING = ("index", "image_id", "path")  # per-image identifiers, not something to colour by
CLASS_COLUMNS = ("class",)  # numbers that name a class (digits, synthetic-faces --synthetic-classes): categories
MAX_CATEGORIES = 24
MAX_FIT_POINTS = 5000  # UMAP's cost grows faster than linearly; the rest of the points are placed by transform()


def umap_embedding(
    z: np.ndarray, *, n_neighbors: int = 15, random_state: int = 0, max_fit_points: int = MAX_FIT_POINTS
) -> np.ndarray:
    """(m, 2) float32 UMAP coordinates of the z-points (m, N).

    Fitted on at most `max_fit_points` of them (a seeded subsample); the others are placed by the fitted
    map's `transform`. Seeded, so the same points give the same map.
    """
    z = np.asarray(checks.points(z, min_rows=3), dtype=np.float32)
    n_neighbors = checks.positive_int(n_neighbors, "n_neighbors", minimum=2)
    max_fit_points = checks.positive_int(max_fit_points, "max_fit_points", minimum=3)
    random_state = checks.seed(random_state, "random_state")
    with warnings.catch_warnings():
        # umap-learn warns that a seed turns off its parallel threads, and numba about its own internals
        warnings.simplefilter("ignore")
        # imported here, not at the top: umap-learn compiles with numba on import, which takes seconds. By name:
        # it ships no type information, and inferring its code cost pyright 23 s of `make lint`'s 60 (measured).
        umap = importlib.import_module("umap")

        neighbours = min(n_neighbors, len(z) - 1)
        if len(z) <= max_fit_points:
            # The exact neighbour graph handed over: under 4,096 points umap-learn builds the same exact graph with a
            # parallel numba kernel that is compiled anew in every process (6 s of a 2,000-point map, measured).
            reducer = umap.UMAP(
                n_components=2,
                n_neighbors=neighbours,
                random_state=random_state,
                n_jobs=1,
                precomputed_knn=(*_exact_neighbours(z, neighbours), None),
            )
            out = np.asarray(reducer.fit_transform(z), dtype=np.float32)
        else:
            reducer = umap.UMAP(n_components=2, n_neighbors=neighbours, random_state=random_state, n_jobs=1)
            rng = np.random.default_rng(random_state)
            fit_rows = np.zeros(len(z), dtype=bool)
            fit_rows[rng.choice(len(z), max_fit_points, replace=False)] = True
            out = np.empty((len(z), 2), dtype=np.float32)
            out[fit_rows] = reducer.fit_transform(z[fit_rows])
            out[~fit_rows] = reducer.transform(z[~fit_rows])
    if not np.isfinite(out).all():
        raise LatentAtlasError("the UMAP map has non-finite coordinates; the z-points may be degenerate")
    return out


def _exact_neighbours(z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (int32) and distances (float32) of each point's k nearest points, itself first, as umap-learn wants."""
    from sklearn.neighbors import NearestNeighbors

    distances, indices = NearestNeighbors(n_neighbors=k).fit(z).kneighbors(z)
    distances[:, 0] = 0.0  # a point's distance to itself, not float32 rounding noise
    return indices.astype(np.int32), distances.astype(np.float32)


def nearest(embedding: np.ndarray, point: tuple[float, float]) -> int:
    """Index of the embedded point nearest to `point` (plain Euclidean distance in the map)."""
    d = np.asarray(embedding, dtype=np.float64) - np.asarray(point, dtype=np.float64)
    return int(np.argmin(np.einsum("ij,ij->i", d, d)))


def category_label(value: Any) -> str:
    """A category's label as text: whole numbers without a decimal point (class 3.0 reads "3")."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _category_order(labels: set[str]) -> list[str]:
    """Labels sorted as numbers when they all are numbers ("2" before "10"), else as text."""
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def colour_columns(metadata: Any) -> dict[str, dict]:
    """The z-point metadata columns points can be coloured by: attributes, generating factors, subsets, classes.

    Numbers and booleans are "binary" (two distinct values) or "numeric" (with min and max); text with at
    most MAX_CATEGORIES distinct values, and a class column (`CLASS_COLUMNS`) of up to that many numbers, is
    a "category" (with its labels, numbers in numeric order). Per-image identifiers are left out.
    """
    out: dict[str, dict] = {}
    for name in metadata.columns:
        if name in METADATA_BOOKKEEPING:
            continue
        series = metadata[name]
        numeric = pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series)
        if numeric and (name not in CLASS_COLUMNS or series.nunique() > MAX_CATEGORIES):
            values = series.dropna().astype(np.float64)
            if values.empty:
                continue
            distinct = np.unique(values.to_numpy())
            kind = "binary" if len(distinct) <= 2 else "numeric"
            out[str(name)] = {"name": str(name), "kind": kind, "min": float(distinct[0]), "max": float(distinct[-1])}
            continue
        labels = _category_order({category_label(v) for v in series.dropna().unique()})
        if 1 <= len(labels) <= MAX_CATEGORIES:
            out[str(name)] = {"name": str(name), "kind": "category", "labels": labels}
    return out
