"""Copy detection: is a generated sample closer to some training item than held-out real data is?

For every generated item and every held-out item, the distance to the nearest *training* item
(`knn.nearest_distances`, exact): in latent space to the training z-points; in face-embedding space among
decoded images (samples and held-out reconstructions against the decoder's images of the training
z-points, since against the photographs every decoded image is far). A sampler that copies training data
(e.g. `resample` with little jitter) has much smaller distances than held-out data, which the training
never saw.

* share: fraction of samples closer than `threshold` to some training item; in latent space the
  threshold is half the held-out median, in face-embedding space the stricter of that and dlib's
  same-identity distance 0.6 (documented in docs/evaluation.md), so held-out data itself has a small share;
* ratio: median nearest-training distance of the samples / that of the held-out items (1: like
  unseen real data; near 0: copies).

Two tests that need no threshold, for any space: the data-copying test C_T (`CopyingTest`, Meehan et al.
2020) and the authenticity share (`Authenticity`, Alaa et al. 2022).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.intervals import mean_interval, statistic_interval, stream_seed
from latentatlas.evaluation.knn import nearest_distances
from latentatlas.evaluation.score import Score

SAME_IDENTITY_DISTANCE = 0.6  # dlib's face-recognition threshold: pairs closer than this are one person
LATENT_THRESHOLD_FRACTION = 0.5  # latent copies: closer than this share of the held-out median distance


@dataclass(frozen=True)
class CopyScores:
    """Nearest-training distances of samples against held-out data.

    Attributes
    ----------
    closer : ndarray of bool
        Per sample: its nearest training item is closer than `threshold`.
    held_out_share : float
        The same share for the held-out items (what unseen real data scores).
    ratio : float
        Median sample distance / median held-out distance.
    threshold : float
    """

    closer: np.ndarray
    held_out_share: float
    ratio: float
    threshold: float

    @property
    def share(self) -> float:
        return float(self.closer.mean())


def copy_scores(sample_distances: np.ndarray, held_out_distances: np.ndarray, threshold: float) -> CopyScores:
    """Compare nearest-training distances of samples with those of held-out items."""
    threshold = checks.positive_number(threshold, "copy threshold")
    samples = np.asarray(sample_distances, dtype=np.float64)
    held = np.asarray(held_out_distances, dtype=np.float64)
    if len(samples) == 0 or len(held) == 0:
        raise LatentAtlasError("copy scores need at least one sample and one held-out distance")
    held_median = float(np.median(held))
    ratio = float(np.median(samples) / held_median) if held_median > 0 else float("nan")
    return CopyScores(samples < threshold, float((held < threshold).mean()), ratio, threshold)


def face_threshold(held_out_distances: np.ndarray) -> float:
    """The face copy threshold among decoded images: dlib's same-identity 0.6, or the relative rule of the
    latent space when that is stricter. Decoded 64 px faces are blurred alike, so on celeba-10k every
    decoded sample (even uniform-box's grey images) lay within 0.6 of some decoded training image."""
    return min(SAME_IDENTITY_DISTANCE, latent_threshold(held_out_distances))


def latent_threshold(held_out_distances: np.ndarray) -> float:
    """The latent copy threshold: LATENT_THRESHOLD_FRACTION of the held-out median nearest-training distance."""
    median = float(np.median(np.asarray(held_out_distances, dtype=np.float64)))
    if median <= 0:
        raise LatentAtlasError("held-out z-points coincide with training z-points; the copy threshold is undefined")
    return LATENT_THRESHOLD_FRACTION * median


# ----------------------------------------------------------------------------- the data-copying test C_T
# Meehan, Chaudhuri & Dasgupta 2020. Sizes of the partition: k = min(MAX_CELLS, training points //
# TRAIN_PER_CELL, held-out points // HELD_PER_CELL), at least 1; a cell with fewer than MIN_CELL_POINTS of
# the row's points is skipped (the paper's Π_τ, here τ = MIN_CELL_POINTS / m).
MAX_CELLS = 20
TRAIN_PER_CELL = 50
HELD_PER_CELL = 20
MIN_CELL_POINTS = 10
FIT_POINTS = 20_000  # training points the k-means partition is fitted on (a seeded subset beyond)
CT_RESAMPLES = 200  # each costs one U test per cell
CT_COPYING = -3.0  # the paper's flag: C_T below this is data-copying


def in_cell_distances(points: np.ndarray, cells: np.ndarray, train: np.ndarray, train_cells: np.ndarray) -> np.ndarray:
    """Per point: the distance to the nearest training point of its own cell."""
    out = np.full(len(points), np.nan)
    for cell in np.unique(cells):
        inside = cells == cell
        out[inside] = nearest_distances(points[inside], train[train_cells == cell])
    return out


def c_t(
    row: np.ndarray, row_cells: np.ndarray, held: np.ndarray, held_cells: np.ndarray, kept: np.ndarray | None = None
) -> float:
    """C_T from in-cell nearest-training distances of the row's and the held-out points: over the cells `kept`
    (default: those holding at least MIN_CELL_POINTS of the row's points); NaN when none is.

    Per cell a Mann-Whitney U test, Z_U = (U - mn/2) / sqrt(mn(m + n + 1) / 12), U counting the pairs in which
    the row's point lies farther out (ties half); C_T is the average of the cells' Z_U weighted by their
    held-out shares."""
    return _c_t_of_points(np.arange(len(row)), _u_shares(row, row_cells, held, held_cells), row_cells, held_cells, kept)


def _u_shares(row: np.ndarray, row_cells: np.ndarray, held: np.ndarray, held_cells: np.ndarray) -> np.ndarray:
    """Per row point, its share of its cell's Mann-Whitney U: the held-out points of the cell below it, ties
    counted half. A cell's U is the sum over its points, so a bootstrap draw of the points needs no new test:
    200 draws x 20 cells of scipy's mannwhitneyu took 2.4 s per row and space (1,000 points), these sums
    milliseconds (the same U, as the test against scipy checks)."""
    shares = np.zeros(len(row))
    for cell in np.unique(row_cells):
        inside = row_cells == cell
        ranked = np.sort(held[held_cells == cell])
        below = np.searchsorted(ranked, row[inside], side="left")
        shares[inside] = below + 0.5 * (np.searchsorted(ranked, row[inside], side="right") - below)
    return shares


def _c_t_of_points(
    items: np.ndarray, shares: np.ndarray, row_cells: np.ndarray, held_cells: np.ndarray, kept: np.ndarray | None
) -> float:
    """C_T of the row's points `items` (indices, repeats allowed) from their U shares."""
    cells = row_cells[items]
    if kept is None:
        kept = np.flatnonzero(np.bincount(cells) >= MIN_CELL_POINTS)
    size = int(max(cells.max(initial=-1), held_cells.max(initial=-1), np.max(kept, initial=-1))) + 1
    m_all = np.bincount(cells, minlength=size)
    u, m = np.bincount(cells, weights=shares[items], minlength=size)[kept], m_all[kept].astype(float)
    n = np.bincount(held_cells, minlength=size)[kept].astype(float)
    # a resample can empty a kept cell; a cell without held-out points weighs 0
    use = (m > 0) & (n > 0)
    if not use.any():
        return float("nan")
    u, m, n = u[use], m[use], n[use]
    z_scores = (u - m * n / 2) / np.sqrt(m * n * (m + n + 1) / 12)
    return float(np.dot(n, z_scores) / n.sum())


class CopyingTest:
    """The data-copying test C_T in any space (latent z-points, face embeddings): fitted on the training and
    held-out points, it scores a set of generated points.

    `fit` partitions the training points into cells by k-means (seeded) and keeps every held-out point's
    distance to the nearest training point of its cell; `score` does the same for the generated points and
    returns C_T with a percentile-bootstrap interval over them (partition and held-out distances fixed).
    C_T << 0: data-copying (the paper flags C_T < -3); C_T >> 0: the points lie farther from the training
    data than unseen data does (underfitting); ~0: neither.

    Attributes
    ----------
    cells_ : int
        Number of cells of the partition.
    held_, held_cells_ : ndarray
        The held-out points' in-cell distances and cells.
    """

    def __init__(self, *, seed: int = 0, resamples: int = CT_RESAMPLES) -> None:
        self.seed, self.resamples = seed, resamples

    def fit(self, train: np.ndarray, held: np.ndarray) -> CopyingTest:
        train = np.asarray(train, dtype=np.float64)
        held = np.asarray(held, dtype=np.float64)
        if len(train) == 0 or len(held) == 0:
            raise LatentAtlasError("the copying test needs training and held-out points")
        self.cells_ = int(max(1, min(MAX_CELLS, len(train) // TRAIN_PER_CELL, len(held) // HELD_PER_CELL)))
        rng = np.random.default_rng(self.seed)
        fit = train[np.sort(rng.choice(len(train), FIT_POINTS, replace=False))] if len(train) > FIT_POINTS else train
        self.kmeans_ = KMeans(self.cells_, n_init="auto", random_state=self.seed).fit(fit)
        self.train_, self.train_cells_ = train, self.cells_of(train)
        self.held_cells_ = self.cells_of(held)
        self.held_ = in_cell_distances(held, self.held_cells_, train, self.train_cells_)
        return self

    def cells_of(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(self.kmeans_.predict(np.asarray(points, dtype=np.float64)), dtype=np.int64)

    def score(self, points: np.ndarray) -> Score | None:
        """C_T of the generated points with its 95 % interval; None when no cell holds MIN_CELL_POINTS of them."""
        points = np.asarray(points, dtype=np.float64)
        cells = self.cells_of(points)
        distances = in_cell_distances(points, cells, self.train_, self.train_cells_)
        shares = _u_shares(distances, cells, self.held_, self.held_cells_)
        everything = np.arange(len(points))
        value = _c_t_of_points(everything, shares, cells, self.held_cells_, None)
        if np.isnan(value):
            return None
        found, counts = np.unique(cells, return_counts=True)
        kept = found[counts >= MIN_CELL_POINTS]

        def statistic(items: np.ndarray) -> float:  # the cells kept on the whole row stay the cells of every draw
            return _c_t_of_points(items, shares, cells, self.held_cells_, kept)

        return statistic_interval(statistic, everything, resamples=self.resamples, seed=self.seed)

    def settings(self) -> dict[str, int]:
        return {"cells": self.cells_, "min_cell_points": MIN_CELL_POINTS, "resamples": self.resamples}


# ----------------------------------------------------------------------------- authenticity
class Authenticity:
    """The authenticity of generated points (Alaa et al. 2022, "How faithful is your synthetic data?"):
    a point is authentic when its nearest training point lies closer to another training point than to it,
    i.e. d(g, x*) > d(x*, nearest other training point), x* the training point nearest to g. A copy (or a
    point jittered less than the training points' own spacing) is not authentic.

    The share of authentic points comes with a percentile-bootstrap interval over the points; held-out real
    points score the level that unseen data reaches (scored the same way, they are the baseline).

    Attributes
    ----------
    radii_ : ndarray (training points,)
        Each training point's distance to its nearest other training point.
    """

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, train: np.ndarray) -> Authenticity:
        from sklearn.neighbors import NearestNeighbors

        train = np.asarray(train, dtype=np.float64)
        if len(train) < 2:
            raise LatentAtlasError(f"authenticity needs at least 2 training points, got {len(train)}")
        self.neighbours_ = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(train)
        # the second neighbour of each training point among the training points: the nearest *other* one
        # (a duplicate training point has radius 0, so nothing is authentic against it)
        self.radii_ = self.neighbours_.kneighbors(train, n_neighbors=2)[0][:, 1]
        return self

    def authentic(self, points: np.ndarray) -> np.ndarray:
        """Per point: True when authentic."""
        distance, index = self.neighbours_.kneighbors(np.asarray(points, dtype=np.float64), n_neighbors=1)
        return distance[:, 0] > self.radii_[index[:, 0]]

    def score(self, points: np.ndarray, name: str = "authenticity") -> Score:
        """The authentic share of the points with its 95 % interval (seeded by the column `name`)."""
        return mean_interval(self.authentic(points), seed=stream_seed(self.seed, name))
