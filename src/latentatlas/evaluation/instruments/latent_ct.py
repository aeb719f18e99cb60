"""The data-copying test C_T of Meehan, Chaudhuri & Dasgupta (2020) in latent space: does a sampler put its
points closer to the training z-points than unseen data lies, cell by cell?

The training z-points are partitioned into cells by k-means (seeded; k = min(MAX_CELLS, training points //
TRAIN_PER_CELL, held-out points // HELD_PER_CELL), at least 1). In each cell, every point's distance to the
nearest training z-point *of that cell* is taken, for the row's points and for the held-out points, and a
Mann-Whitney U test compares the two: Z_U = (U - mn/2) / sqrt(mn(m + n + 1) / 12), U counting the pairs in
which the row's point lies farther out. Cells holding fewer than MIN_CELL_POINTS of the row's points are
skipped (the paper's Π_τ, here τ = MIN_CELL_POINTS / m), and C_T is the average of the kept cells' Z_U
weighted by their shares of the held-out points. C_T << 0: data-copying (the paper flags C_T < -3);
C_T >> 0: the samples lie farther from the training data than real data does (underfitting); ~0: neither.
Its interval is a percentile bootstrap over the row's points (partition and held-out distances fixed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import mannwhitneyu
from sklearn.cluster import KMeans

from latentatlas.evaluation.instruments.base import Instrument, Reference, Row
from latentatlas.evaluation.intervals import statistic_interval, stream_seed
from latentatlas.evaluation.knn import nearest_distances
from latentatlas.evaluation.score import Metric, Score

MAX_CELLS = 20
TRAIN_PER_CELL = 50
HELD_PER_CELL = 20
MIN_CELL_POINTS = 10
FIT_POINTS = 20_000  # training z-points the k-means partition is fitted on (a seeded subset beyond)
RESAMPLES = 200  # each costs one U test per cell


def in_cell_distances(
    points: np.ndarray, cells: np.ndarray, train_z: np.ndarray, train_cells: np.ndarray
) -> np.ndarray:
    """Per point: the distance to the nearest training z-point of its own cell."""
    out = np.full(len(points), np.nan)
    for cell in np.unique(cells):
        inside = cells == cell
        out[inside] = nearest_distances(points[inside], train_z[train_cells == cell])
    return out


def c_t(
    row: np.ndarray, row_cells: np.ndarray, held: np.ndarray, held_cells: np.ndarray, kept: np.ndarray | None = None
) -> float:
    """C_T from in-cell nearest-training distances of the row's and the held-out points: over the cells `kept`
    (default: those holding at least MIN_CELL_POINTS of the row's points); NaN when none is."""
    if kept is None:
        cells, counts = np.unique(row_cells, return_counts=True)
        kept = cells[counts >= MIN_CELL_POINTS]
    z_scores, weights = [], []
    for cell in kept:
        a, b = row[row_cells == cell], held[held_cells == cell]
        if len(a) == 0 or len(b) == 0:  # (a resample can empty a kept cell; a cell without held-out points weighs 0)
            continue
        m, n = len(a), len(b)
        u = mannwhitneyu(a, b, method="asymptotic").statistic  # U of the row's points: pairs in which theirs is larger
        z_scores.append((u - m * n / 2) / np.sqrt(m * n * (m + n + 1) / 12))
        weights.append(n)
    return float(np.dot(weights, z_scores) / np.sum(weights)) if weights else float("nan")


class LatentCt(Instrument):
    name = "latent_ct"
    columns = (Metric("latent_ct", None, "data-copying test C_T in latent space (Meehan et al. 2020): << 0 copies"),)

    def prepare(self, reference: Reference) -> None:
        self.seed, train_z = stream_seed(reference.seed, self.name), reference.train_z
        self.cells = int(max(1, min(MAX_CELLS, len(train_z) // TRAIN_PER_CELL, len(reference.z) // HELD_PER_CELL)))
        rng = np.random.default_rng(self.seed)
        fit = (
            train_z[np.sort(rng.choice(len(train_z), FIT_POINTS, replace=False))]
            if len(train_z) > FIT_POINTS
            else train_z
        )
        self.kmeans = KMeans(self.cells, n_init="auto", random_state=self.seed).fit(np.asarray(fit, dtype=np.float64))
        self.train_z, self.train_cells = train_z, self._cells(train_z)
        self.held_cells = self._cells(reference.z)
        self.held = in_cell_distances(reference.z, self.held_cells, train_z, self.train_cells)

    def score(self, row: Row) -> dict[str, Score]:
        if row.role != "sample":  # training points are the reference itself; held-out points score 0 by definition
            return {}
        cells = self._cells(row.z)
        distances = in_cell_distances(np.asarray(row.z), cells, self.train_z, self.train_cells)

        everything = np.arange(len(cells))
        value = c_t(distances, cells, self.held, self.held_cells)
        if np.isnan(value):
            return {}  # no cell holds MIN_CELL_POINTS of the row's points (or none holds held-out points)
        found, counts = np.unique(cells, return_counts=True)
        kept = found[counts >= MIN_CELL_POINTS]

        def statistic(items: np.ndarray) -> float:  # the cells kept on the whole row stay the cells of every draw
            return c_t(distances[items], cells[items], self.held, self.held_cells, kept)

        return {"latent_ct": statistic_interval(statistic, everything, resamples=RESAMPLES, seed=self.seed)}

    def _cells(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(self.kmeans.predict(np.asarray(z, dtype=np.float64)), dtype=np.int64)

    def settings(self) -> dict[str, Any]:
        return {"latent_ct": {"cells": self.cells, "min_cell_points": MIN_CELL_POINTS, "resamples": RESAMPLES}}
