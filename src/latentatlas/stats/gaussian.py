"""The Gaussian law of a z-point set: precision and log determinant of a covariance, Mahalanobis distances
(the one implementation: `sq_mahalanobis`, the fitted `Mahalanobis`, and `fit_gaussian` for the robust
core's Cholesky steps), a square-root factor for sampling and the log density."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import linalg, stats

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.stats.blas import one_blas_thread, single_thread_blas
from latentatlas.stats.moments import moments
from latentatlas.stats.views import DEFAULT_CHUNK, as_view


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


def sq_mahalanobis(points: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distances (m,) of points (m, N) from `mean` under a precision matrix: the one
    formula every distance in the project goes through (rounding can make d' P d a hair below 0: clipped)."""
    d = points - mean
    return np.maximum(np.einsum("ij,ij->i", d @ precision, d), 0.0)


class Mahalanobis:
    """Mahalanobis distances from the bulk centre (pseudo-inverse covariance when singular).

    `sq_distances_` holds the sorted squared distances of all fitted points (computed chunkwise);
    `percentile(points)` is the percentage of fitted points strictly closer to the centre.
    `Mahalanobis.from_moments(mean, covariance)` gives the distances of a known law (e.g. a robust
    core's) without fitted points: `sq_distance` works, `percentile` does not.
    """

    def __init__(self, *, chunk_size: int = DEFAULT_CHUNK, rcond: float = 1e-10, progress: bool = False):
        self.chunk_size = chunk_size
        self.rcond = rcond
        self.progress = progress

    @classmethod
    def from_moments(cls, mean: np.ndarray, covariance: np.ndarray, *, rcond: float = 1e-10) -> Mahalanobis:
        """Distances from `mean` under `covariance`, with no reference points (`n_samples_` = 0)."""
        out = cls(rcond=rcond)
        out._set_law(mean, covariance)
        out.sq_distances_, out.n_samples_ = np.zeros(0), 0
        return out

    def _set_law(self, mean: np.ndarray, covariance: np.ndarray) -> None:
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.covariance_ = np.asarray(covariance, dtype=np.float64)
        self.precision_, self.rank_ = precision_matrix(self.covariance_, self.rcond)

    @one_blas_thread
    def fit(self, z: np.ndarray, mean: np.ndarray | None = None, covariance: np.ndarray | None = None) -> Mahalanobis:
        view = as_view(z)
        chunk_size = checks.positive_int(self.chunk_size, "chunk_size")
        if mean is None or covariance is None:
            fitted = moments(view, chunk_size, self.progress)
            mean, covariance = fitted.mean, fitted.cov
        self._set_law(mean, covariance)
        parts = [self._sq(chunk) for chunk in view.chunks(chunk_size, "mahalanobis", self.progress)]
        self.sq_distances_ = np.sort(np.concatenate(parts)) if parts else np.zeros(0)
        self.n_samples_ = len(self.sq_distances_)
        return self

    def _sq(self, points: np.ndarray) -> np.ndarray:
        return sq_mahalanobis(points, self.mean_, self.precision_)

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
        if self.n_samples_ == 0:
            raise LatentAtlasError("percentiles need fitted points; this Mahalanobis was built from moments only")
        closer = np.searchsorted(self.sq_distances_, self.sq_distance(points), side="left")
        return 100.0 * closer / self.n_samples_


@dataclass(frozen=True)
class GaussianFit:
    """Mean, covariance (bias=True) and log det of a point set, with its squared Mahalanobis distances:
    by a Cholesky solve when the covariance is positive definite (the robust core's C-steps, thousands
    of fits: faster and exact there), else by the pseudo-inverse (`sq_mahalanobis`, log det -inf)."""

    location: np.ndarray
    covariance: np.ndarray
    log_det: float
    cholesky: np.ndarray | None
    precision: np.ndarray | None

    def sq_distances(self, points: np.ndarray) -> np.ndarray:
        if self.cholesky is None:
            assert self.precision is not None
            return sq_mahalanobis(points, self.location, self.precision)
        solved = linalg.solve_triangular(self.cholesky, (points - self.location).T, lower=True, check_finite=False)
        return np.einsum("ij,ij->j", solved, solved)


def fit_gaussian(x: np.ndarray) -> GaussianFit:
    """The Gaussian of the rows of `x` (n, N), see `GaussianFit`."""
    location = x.mean(axis=0)
    cov = np.cov(x, rowvar=False, bias=True).reshape(x.shape[1], x.shape[1])
    try:
        lower = linalg.cholesky(cov, lower=True)
    except linalg.LinAlgError:  # singular: pseudo-inverse distances, determinant 0
        return GaussianFit(location, cov, -math.inf, None, precision_matrix(cov)[0])
    return GaussianFit(location, cov, 2.0 * float(np.log(np.diag(lower)).sum()), lower, None)


def gaussian_factor(cov: np.ndarray) -> np.ndarray:
    """A matrix A with A A^T = cov, valid for semi-definite (rank-deficient) covariances too.

    Cached by the covariance's bytes: the samplers draw from the same few covariances again and again (the
    explorer on every request) and the eigendecomposition of a 256 x 256 covariance (~40 ms on 2 cores) cost
    far more than the draw itself. Returned read-only, so a caller cannot change the cached factor.
    """
    cov = np.ascontiguousarray(cov)
    return _factor_of(cov.tobytes(), cov.shape, cov.dtype.str)


@functools.lru_cache(maxsize=16)
def _factor_of(data: bytes, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    cov = np.frombuffer(data, dtype=dtype).reshape(shape)
    with single_thread_blas():
        eigenvalues, eigenvectors = np.linalg.eigh(cov)
    factor = eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))
    factor.flags.writeable = False
    return factor


def gaussian_log_density(z: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Log density (n,) of a multivariate normal (singular covariances allowed)."""
    law = stats.multivariate_normal(mean=mean, cov=cov, allow_singular=True)  # pyright: ignore[reportArgumentType]
    return np.asarray(law.logpdf(z)).reshape(-1)
