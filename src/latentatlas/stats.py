"""The numeric primitives every analysis, sampler and evaluation shares, one implementation each.

- `ZView`: rows of a (memory-mapped) z-point array read in float64 chunks, with an optional row selection.
- `Moments` / `moments(z)`: the one chunked mean and covariance (plus per-component skewness, kurtosis,
  min and max). `BulkStatistics` adds fine per-component histograms (percentiles, re-binned histograms).
- `PCA`: the eigen-decomposition of a covariance.
- `precision_matrix`, `log_det`, `Mahalanobis`: distances from the bulk centre.
- `min_cov_det`: the robust core (Minimum Covariance Determinant, deterministic starts).
- `gaussian_factor`, `gaussian_log_density`, `subsample`.

Everything here takes arrays and returns arrays or fitted objects; nothing touches a run folder.
"""

from __future__ import annotations

import functools
import math
import mmap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import linalg, stats
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from latentatlas import checks
from latentatlas.errors import LatentAtlasError

DEFAULT_CHUNK = 16384


def single_thread_blas():
    """One BLAS thread. N x N decompositions gain nothing from threads, the chunk products little
    (the passes are bound by reading the store); and on a busy machine OpenBLAS's spinning threads
    slow a 256 x 256 eigh or Cholesky down a hundredfold and the chunk products eightfold."""
    return threadpool_limits(limits=1, user_api="blas")


def one_blas_thread(method):
    """Decorator: run a fit method under `single_thread_blas`."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with single_thread_blas():
            return method(*args, **kwargs)

    return wrapper


# ----------------------------------------------------------------------------- chunked reading


class ZView:
    """Rows of a z-point array (optionally a boolean row selection), read in float64 chunks.

    A selection is applied chunk by chunk, so a subset of a memory-mapped store is never copied whole.
    """

    def __init__(self, z: np.ndarray, rows: np.ndarray | None = None):
        if isinstance(z, ZView):
            z, rows = z.z, z.rows if rows is None else rows
        if not hasattr(z, "ndim") or z.ndim != 2:
            raise LatentAtlasError(f"z-points must be a 2-D array (n, N), got shape {getattr(z, 'shape', None)}")
        if not np.issubdtype(z.dtype, np.floating):
            raise LatentAtlasError(f"z-points must be floating point, got {z.dtype}")
        if rows is not None:
            rows = np.asarray(rows, dtype=bool)
            if rows.shape != (len(z),):
                raise LatentAtlasError(f"row selection has {rows.shape} entries for {len(z)} z-points")
        self.z, self.rows = z, rows
        self.n = int(rows.sum()) if rows is not None else len(z)
        self.dim = int(z.shape[1])

    def chunks(
        self, chunk_size: int = DEFAULT_CHUNK, desc: str | None = None, progress: bool = False
    ) -> Iterator[np.ndarray]:
        total = len(self.z)
        starts = range(0, total, max(1, int(chunk_size)))
        for start in tqdm(starts, desc=desc, disable=None if progress else True, leave=False):
            block = self.z[start : start + chunk_size]
            if self.rows is not None:
                block = block[self.rows[start : start + chunk_size]]
            chunk = np.asarray(block, dtype=np.float64)
            release_pages(self.z)
            if len(chunk):
                yield chunk

    def take(self, indices: np.ndarray) -> np.ndarray:
        """float64 rows at positions `indices` of the selection (sorted for sequential reads)."""
        indices = np.sort(np.asarray(indices, dtype=np.int64))
        absolute = np.flatnonzero(self.rows)[indices] if self.rows is not None else indices
        out = np.empty((len(absolute), self.dim))
        # in small blocks: each scattered row faults in a whole read-around window of the map (~64 KB),
        # so 20k random rows of a 1 GB store would otherwise make all of it resident at once
        for start in range(0, len(absolute), 256):
            out[start : start + 256] = self.z[absolute[start : start + 256]]
            release_pages(self.z)
        return out

    def subsample(self, size: int, seed: int) -> np.ndarray:
        if size >= self.n:
            return self.take(np.arange(self.n))
        return self.take(np.random.default_rng(seed).choice(self.n, size, replace=False))


def release_pages(z: np.ndarray) -> None:
    """Drop already-read pages of a read-only memory map from this process's resident set.

    The pages stay in the OS page cache, but without this a full pass over a 1 GB store counts 1 GB of
    file-backed pages as this process's memory.
    """
    mapping = getattr(z, "_mmap", None)
    if isinstance(mapping, mmap.mmap) and getattr(z, "mode", None) == "r" and hasattr(mapping, "madvise"):
        try:
            mapping.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):
            pass


def as_view(z: Any) -> ZView:
    return z if isinstance(z, ZView) else ZView(z)


# ----------------------------------------------------------------------------- bulk statistics


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


@one_blas_thread
def moments(z: Any, chunk_size: int = DEFAULT_CHUNK, progress: bool = False) -> Moments:
    """The one chunked pass for mean and covariance, with float64 accumulators.

    Shifted power sums (shift = the first chunk's mean) keep the one-pass sums well conditioned when
    the bulk sits far from the origin. Raises on NaN/inf with the first bad row.
    """
    chunk_size = checks.positive_int(chunk_size, "chunk_size")
    view = as_view(z)
    if view.n < 2:
        raise LatentAtlasError(f"need at least 2 z-points, got {view.n}")
    dim = view.dim
    shift = None
    n = 0
    s1, s3, s4 = np.zeros(dim), np.zeros(dim), np.zeros(dim)
    s2 = np.zeros((dim, dim))
    lo, hi = np.full(dim, np.inf), np.full(dim, -np.inf)
    for chunk in view.chunks(chunk_size, "moments", progress):
        if not np.isfinite(chunk).all():
            bad = n + int(np.flatnonzero(~np.isfinite(chunk).all(axis=1))[0])
            raise LatentAtlasError(f"the z-points contain NaN or infinite values (first bad row: {bad})")
        if shift is None:
            shift = chunk.mean(axis=0)
        d = chunk - shift
        n += len(d)
        s1 += d.sum(axis=0)
        s2 += d.T @ d
        d2 = d * d
        s3 += (d2 * d).sum(axis=0)
        s4 += (d2 * d2).sum(axis=0)
        np.minimum(lo, chunk.min(axis=0), out=lo)
        np.maximum(hi, chunk.max(axis=0), out=hi)
    assert shift is not None
    offset = s1 / n
    cov = (s2 - n * np.outer(offset, offset)) / (n - 1)
    # central moments of each component (population normalisation) from the shifted power sums
    m2 = np.diag(s2) / n - offset**2
    m3 = s3 / n - 3 * offset * np.diag(s2) / n + 2 * offset**3
    m4 = s4 / n - 4 * offset * s3 / n + 6 * offset**2 * np.diag(s2) / n - 3 * offset**4
    with np.errstate(divide="ignore", invalid="ignore"):
        skew = np.where(m2 > 0, m3 / np.maximum(m2, 1e-300) ** 1.5, 0.0)
        kurt = np.where(m2 > 0, m4 / np.maximum(m2, 1e-300) ** 2 - 3.0, 0.0)
    return Moments(n, shift + offset, (cov + cov.T) / 2, skew, kurt, lo, hi)


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


# ----------------------------------------------------------------------------- Mahalanobis distances


def log_det(cov: np.ndarray) -> float:
    """log det of a covariance; -inf when singular."""
    with single_thread_blas():
        sign, logdet = np.linalg.slogdet(cov)
    return float(logdet) if sign > 0 else -math.inf


def precision_matrix(cov: np.ndarray, rcond: float = 1e-10) -> tuple[np.ndarray, int]:
    """Pseudo-inverse of a covariance (eigenvalues below rcond x the largest dropped) and its rank."""
    with single_thread_blas():
        values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    keep = values > rcond * max(float(values.max()), 1e-300)
    inverse = np.where(keep, 1.0 / np.where(keep, values, 1.0), 0.0)
    return (vectors * inverse) @ vectors.T, int(keep.sum())


class Mahalanobis:
    """Mahalanobis distances from the bulk centre (pseudo-inverse covariance when singular).

    `sq_distances_` holds the sorted squared distances of all fitted points (computed chunkwise);
    `percentile(points)` is the percentage of fitted points strictly closer to the centre.
    """

    def __init__(self, *, chunk_size: int = DEFAULT_CHUNK, rcond: float = 1e-10, progress: bool = False):
        self.chunk_size = chunk_size
        self.rcond = rcond
        self.progress = progress

    @one_blas_thread
    def fit(self, z: np.ndarray, mean: np.ndarray | None = None, covariance: np.ndarray | None = None) -> Mahalanobis:
        view = as_view(z)
        chunk_size = checks.positive_int(self.chunk_size, "chunk_size")
        if mean is None or covariance is None:
            fitted = moments(view, chunk_size, self.progress)
            mean, covariance = fitted.mean, fitted.cov
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.covariance_ = np.asarray(covariance, dtype=np.float64)
        self.precision_, self.rank_ = precision_matrix(self.covariance_, self.rcond)
        parts = [self._sq(chunk) for chunk in view.chunks(chunk_size, "mahalanobis", self.progress)]
        self.sq_distances_ = np.sort(np.concatenate(parts)) if parts else np.zeros(0)
        self.n_samples_ = len(self.sq_distances_)
        return self

    def _sq(self, points: np.ndarray) -> np.ndarray:
        d = points - self.mean_
        return np.maximum(np.einsum("ij,ij->i", d @ self.precision_, d), 0.0)

    def _points(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64)
        if points.ndim == 1:
            points = points[None, :]
        if points.ndim != 2 or points.shape[1] != len(self.mean_):
            raise LatentAtlasError(f"points must have {len(self.mean_)} components, got shape {points.shape}")
        return points

    def sq_distance(self, points: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distances (m,) of points (m, N) or one point (N,)."""
        points = self._points(points)
        return np.concatenate([self._sq(points[i : i + DEFAULT_CHUNK]) for i in range(0, len(points), DEFAULT_CHUNK)])

    def percentile(self, points: np.ndarray) -> np.ndarray:
        """Percentage (0..100) of the fitted points closer to the centre than each point."""
        closer = np.searchsorted(self.sq_distances_, self.sq_distance(points), side="left")
        return 100.0 * closer / max(self.n_samples_, 1)


# ----------------------------------------------------------------------------- robust core


def _fit_gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, Any]:
    """Mean, covariance (bias=True), log det and a squared-distance function, via Cholesky when possible."""
    location = x.mean(axis=0)
    cov = np.cov(x, rowvar=False, bias=True).reshape(x.shape[1], x.shape[1])
    try:
        lower = linalg.cholesky(cov, lower=True)
    except linalg.LinAlgError:  # singular: pseudo-inverse distances, determinant 0
        precision, _ = precision_matrix(cov)
        return location, cov, -math.inf, lambda y: np.einsum("ij,ij->i", (y - location) @ precision, y - location)
    logdet = 2.0 * float(np.log(np.diag(lower)).sum())

    def sq_distances(y: np.ndarray) -> np.ndarray:
        solved = linalg.solve_triangular(lower, (y - location).T, lower=True, check_finite=False)
        return np.einsum("ij,ij->j", solved, solved)

    return location, cov, logdet, sq_distances


def _c_steps(x: np.ndarray, subset: np.ndarray, h: int, max_iter: int = 50) -> tuple[float, np.ndarray]:
    """Concentration steps of FAST-MCD from one start: refit on the h closest points until the
    covariance determinant stops decreasing. Returns (log det, final subset)."""
    best_logdet, best = math.inf, subset
    for _ in range(max_iter):
        _, _, logdet, sq_distances = _fit_gaussian(x[subset])
        if logdet >= best_logdet - 1e-12:
            break
        best_logdet, best = logdet, subset
        if logdet == -math.inf:
            break
        new = _h_closest(sq_distances(x), h)
        if np.array_equal(new, subset):
            break
        subset = new
    return best_logdet, best


def _h_closest(distances: np.ndarray, h: int) -> np.ndarray:
    return np.sort(np.argpartition(distances, h - 1)[:h])


def min_cov_det(x: np.ndarray, support_fraction: float | None = None) -> dict:
    """Minimum Covariance Determinant with deterministic starts (DetMCD, Hubert, Rousseeuw & Verdonck 2012).

    scikit-learn's MinCovDet draws 500 random (N+1)-point starts and needs minutes at N = 256; DetMCD
    starts instead from the h points closest to the centre under three cheap estimates (classical
    Mahalanobis; median/MAD-standardised Euclidean; Mahalanobis of the ranks), runs C-steps to
    convergence, keeps the lowest determinant, then applies the same consistency correction and
    reweighting (with the consistency factor of Croux & Haesbroeck 1999). Needs more than N + 1 points.
    """
    with single_thread_blas():
        return _min_cov_det(x, support_fraction)


def _min_cov_det(x: np.ndarray, support_fraction: float | None) -> dict:
    n, p = x.shape
    h = math.ceil((n + p + 1) / 2.0 if support_fraction is None else support_fraction * n)
    h = min(max(h, p + 1), n)
    median = np.median(x, axis=0)
    mad = 1.4826 * np.median(np.abs(x - median), axis=0)
    scaled = (x - median) / np.where(mad > 0, mad, 1.0)
    ranks = stats.rankdata(x, axis=0)
    starts = [
        _fit_gaussian(x)[3](x),  # classical Mahalanobis
        np.einsum("ij,ij->i", scaled, scaled),  # median/MAD-standardised Euclidean
        _fit_gaussian(ranks)[3](ranks),  # Mahalanobis of the ranks (Spearman)
    ]
    best_logdet, best = math.inf, None
    for distances in starts:
        logdet, subset = _c_steps(x, _h_closest(distances, h), h)
        if best is None or logdet < best_logdet:
            best_logdet, best = logdet, subset
    raw_location, raw_cov, _, sq_distances = _fit_gaussian(x[best])
    raw_distances = sq_distances(x)
    # consistency: the squared distances of a Gaussian have median chi2_p(0.5)
    correction = np.median(raw_distances) / stats.chi2(p).isf(0.5)
    raw_cov = raw_cov * correction
    raw_distances = raw_distances / correction
    cutoff = stats.chi2(p).isf(0.025)
    support = raw_distances < cutoff
    location = x[support].mean(axis=0)
    # points inside the 97.5 % ellipsoid of a Gaussian have a smaller covariance by chi2_{p+2}(cutoff) / 0.975
    cov = np.cov(x[support], rowvar=False, bias=True).reshape(p, p) * (0.975 / stats.chi2(p + 2).cdf(cutoff))
    return {
        "location": location,
        "covariance": cov,
        "support": support,
        "h": h,
        "raw_location": raw_location,
        "raw_covariance": raw_cov,
    }


def gaussian_factor(cov: np.ndarray) -> np.ndarray:
    """A matrix A with A A^T = cov, valid for semi-definite (rank-deficient) covariances too."""
    with single_thread_blas():
        eigenvalues, eigenvectors = np.linalg.eigh(cov)
    return eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))


def gaussian_log_density(z: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Log density (n,) of a multivariate normal (singular covariances allowed)."""
    law = stats.multivariate_normal(mean=mean, cov=cov, allow_singular=True)  # pyright: ignore[reportArgumentType]
    return np.asarray(law.logpdf(z)).reshape(-1)


def subsample(z: np.ndarray, max_points: int | None, seed: int) -> np.ndarray:
    """A seeded subset of at most `max_points` rows (sorted, so memmap reads stay sequential), as float64."""
    if max_points is None or len(z) <= max_points:
        return np.asarray(z, dtype=np.float64)
    rows = np.sort(np.random.default_rng(seed).choice(len(z), max_points, replace=False))
    return np.asarray(z[rows], dtype=np.float64)
