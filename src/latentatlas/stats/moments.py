"""Moments of a z-point set: the one chunked mean and covariance (`moments`, `MomentSums`), fine
per-component histograms (`BulkStatistics`) and the eigen-spectrum of a covariance (`PCA`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.stats.blas import one_blas_thread, single_thread_blas
from latentatlas.stats.views import DEFAULT_CHUNK, as_view


@dataclass
class Moments:
    """Mean, sample covariance (ddof=1) and per-component shape of a z-point set, all float64."""

    n_samples: int
    mean: np.ndarray
    cov: np.ndarray
    skewness: np.ndarray
    kurtosis: np.ndarray  # excess kurtosis: 0 for a Gaussian
    min: np.ndarray
    max: np.ndarray

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.cov), 0.0, None))


class MomentSums:
    """Shifted power sums of a stream of row chunks, in float64: the one accumulator behind `moments` (and
    the per-region moments of `region_model`, which feeds each region its rows chunk by chunk).

    The shift is the first non-empty chunk's mean, which keeps the one-pass sums well conditioned when
    the points sit far from the origin.
    """

    def __init__(self, dim: int):
        self.n = 0
        self.shift: np.ndarray | None = None
        self.s1, self.s3, self.s4 = np.zeros(dim), np.zeros(dim), np.zeros(dim)
        self.s2 = np.zeros((dim, dim))
        self.lo, self.hi = np.full(dim, np.inf), np.full(dim, -np.inf)

    def add(self, chunk: np.ndarray) -> None:
        """Accumulate the rows of a float64 chunk (m, N); an empty chunk is ignored."""
        if not len(chunk):
            return
        if self.shift is None:
            self.shift = chunk.mean(axis=0)
        d = chunk - self.shift
        self.n += len(d)
        self.s1 += d.sum(axis=0)
        self.s2 += d.T @ d
        d2 = d * d
        self.s3 += (d2 * d).sum(axis=0)
        self.s4 += (d2 * d2).sum(axis=0)
        np.minimum(self.lo, chunk.min(axis=0), out=self.lo)
        np.maximum(self.hi, chunk.max(axis=0), out=self.hi)

    def result(self) -> Moments:
        """The moments of the rows added so far (covariance with ddof=1; 0 for a single row)."""
        if self.shift is None:
            raise LatentAtlasError("no z-points were accumulated")
        n, s2, s3, s4 = self.n, self.s2, self.s3, self.s4
        offset = self.s1 / n
        cov = (s2 - n * np.outer(offset, offset)) / max(n - 1, 1)
        # central moments of each component (population normalisation) from the shifted power sums
        m2 = np.diag(s2) / n - offset**2
        m3 = s3 / n - 3 * offset * np.diag(s2) / n + 2 * offset**3
        m4 = s4 / n - 4 * offset * s3 / n + 6 * offset**2 * np.diag(s2) / n - 3 * offset**4
        with np.errstate(divide="ignore", invalid="ignore"):
            skew = np.where(m2 > 0, m3 / np.maximum(m2, 1e-300) ** 1.5, 0.0)
            kurt = np.where(m2 > 0, m4 / np.maximum(m2, 1e-300) ** 2 - 3.0, 0.0)
        return Moments(n, self.shift + offset, (cov + cov.T) / 2, skew, kurt, self.lo.copy(), self.hi.copy())


@one_blas_thread
def moments(z: Any, chunk_size: int = DEFAULT_CHUNK, progress: bool = False) -> Moments:
    """The one chunked pass for mean and covariance, with float64 accumulators (`MomentSums`).

    Raises on NaN/inf with the first bad row.
    """
    chunk_size = checks.positive_int(chunk_size, "chunk_size")
    view = as_view(z)
    if view.n < 2:
        raise LatentAtlasError(f"need at least 2 z-points, got {view.n}")
    sums = MomentSums(view.dim)
    for chunk in view.chunks(chunk_size, "moments", progress):
        if not np.isfinite(chunk).all():
            bad = sums.n + int(np.flatnonzero(~np.isfinite(chunk).all(axis=1))[0])
            raise LatentAtlasError(f"the z-points contain NaN or infinite values (first bad row: {bad})")
        sums.add(chunk)
    return sums.result()


class BulkStatistics:
    """`moments` plus fine histograms of every component (a second chunked pass).

    Pass 2 bins every component into `bins` equal bins between its min and max. Percentiles come from
    those fine histograms (linear within a bin), never from sorting.

    Attributes
    ----------
    n_samples_, n_features_ : int
    mean_, cov_, std_, min_, max_, skewness_, kurtosis_ : ndarray
        From `moments` (kurtosis is the excess kurtosis).
    hist_counts_ : ndarray (N, bins)
    hist_edges_ : ndarray (N, bins + 1)
    lower_, upper_ : ndarray (N,)
        Per-component percentiles at `percentiles`.
    """

    def __init__(
        self,
        *,
        percentiles: Sequence[float] = (1.0, 99.0),
        chunk_size: int = DEFAULT_CHUNK,
        bins: int = 4096,
        progress: bool = False,
    ):
        self.percentiles = percentiles
        self.chunk_size = chunk_size
        self.bins = bins
        self.progress = progress

    @one_blas_thread
    def fit(self, z: np.ndarray) -> BulkStatistics:
        percentiles = [float(p) for p in self.percentiles]
        if len(percentiles) != 2 or not 0.0 <= percentiles[0] < percentiles[1] <= 100.0:
            raise LatentAtlasError(f"percentiles must be two numbers 0 <= lo < hi <= 100, got {self.percentiles!r}")
        chunk_size = checks.positive_int(self.chunk_size, "chunk_size")
        bins = checks.positive_int(self.bins, "bins", 2)
        view = as_view(z)
        m = moments(view, chunk_size, self.progress)
        dim, lo, hi = view.dim, m.min, m.max
        # constant components still get a usable (unit) bin range
        width = np.where(hi > lo, hi - lo, 1.0)
        left = np.where(hi > lo, lo, lo - 0.5)
        counts = np.zeros(dim * bins, dtype=np.int64)
        column_offset = np.arange(dim, dtype=np.int64) * bins
        for chunk in view.chunks(chunk_size, "histograms", self.progress):
            index = ((chunk - left) * (bins / width)).astype(np.int64)
            np.clip(index, 0, bins - 1, out=index)
            index += column_offset
            counts += np.bincount(index.ravel(), minlength=dim * bins)
        self.n_samples_ = m.n_samples
        self.n_features_ = dim
        self.mean_ = m.mean
        self.cov_ = m.cov
        self.std_ = m.std
        self.min_, self.max_ = lo, hi
        self.skewness_ = m.skewness
        self.kurtosis_ = m.kurtosis
        self.hist_counts_ = counts.reshape(dim, bins)
        self.hist_edges_ = left[:, None] + width[:, None] * np.linspace(0.0, 1.0, bins + 1)[None, :]
        self.lower_ = self.percentile(percentiles[0])
        self.upper_ = self.percentile(percentiles[1])
        return self

    def _cdf_at_edges(self) -> np.ndarray:
        cum = np.concatenate([np.zeros((self.n_features_, 1)), np.cumsum(self.hist_counts_, axis=1)], axis=1)
        return cum / self.n_samples_

    def percentile(self, q: float) -> np.ndarray:
        """Per-component q-th percentile (0..100), interpolated within the fine histogram's bins."""
        q = float(q)
        if not 0.0 <= q <= 100.0:
            raise LatentAtlasError(f"a percentile must be in [0, 100], got {q}")
        cdf = self._cdf_at_edges()
        out = np.empty(self.n_features_)
        for j in range(self.n_features_):
            # the first edge where the CDF reaches q, interpolated inside that bin
            k = int(np.searchsorted(cdf[j], q / 100.0, side="left"))
            k = min(max(k, 1), cdf.shape[1] - 1)
            c0, c1 = cdf[j, k - 1], cdf[j, k]
            e0, e1 = self.hist_edges_[j, k - 1], self.hist_edges_[j, k]
            out[j] = e0 if c1 <= c0 else e0 + (e1 - e0) * (q / 100.0 - c0) / (c1 - c0)
        return np.clip(out, self.min_, self.max_)

    def histogram(self, component: int, edges: np.ndarray) -> np.ndarray:
        """Counts of one component between `edges`, re-binned from the fine histogram."""
        cdf = np.interp(edges, self.hist_edges_[component], self._cdf_at_edges()[component], left=0.0, right=1.0)
        return np.diff(cdf) * self.n_samples_


class PCA:
    """Eigen-spectrum of a covariance: explained variance, components for 90/99 %, participation ratio."""

    def __init__(self, *, chunk_size: int = DEFAULT_CHUNK):
        self.chunk_size = chunk_size

    @one_blas_thread
    def fit(self, z: np.ndarray | None = None, covariance: np.ndarray | None = None) -> PCA:
        if covariance is None:
            if z is None:
                raise LatentAtlasError("PCA.fit needs z-points or a covariance")
            covariance = moments(z, self.chunk_size).cov
        with single_thread_blas():
            values, vectors = np.linalg.eigh(covariance)
        order = np.argsort(values)[::-1]
        values = np.clip(values[order], 0.0, None)
        total = float(values.sum())
        self.eigenvalues_ = values
        self.components_ = vectors[:, order].T
        self.explained_variance_ratio_ = values / total if total > 0 else np.zeros_like(values)
        cumulative = np.cumsum(self.explained_variance_ratio_)
        self.n_components_90_ = int(np.searchsorted(cumulative, 0.90 - 1e-12) + 1)
        self.n_components_99_ = int(np.searchsorted(cumulative, 0.99 - 1e-12) + 1)
        self.participation_ratio_ = total**2 / float((values**2).sum()) if total > 0 else 0.0
        return self
