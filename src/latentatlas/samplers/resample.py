"""Resampling real z-points with a bulk-shaped jitter: a KDE-style baseline."""

from __future__ import annotations

import math

import numpy as np

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.samplers.base import Sampler
from latentatlas.stats import gaussian_factor, moments, subsample


class Resample(Sampler):
    """Real z-points with a small Gaussian jitter: a KDE-style baseline that stays on the data.

    The jitter is shaped like the bulk: N(0, h² C) with C the z-points' covariance, so it follows the
    correlations instead of leaving the bulk along its thin directions (a per-component jitter on a
    strongly correlated bulk puts nearly every sample outside it in Mahalanobis terms). The bandwidth h
    is `jitter` (default 0.1) or, with `jitter="scott"`, Scott's factor n**(-1/(N+4)).

    Attributes
    ----------
    points_ : ndarray (m, N) float32
        The (subsampled) real z-points drawn from.
    scale_ : ndarray (N, N)
        A factor of the jitter covariance: scale_ @ scale_.T = h² C.
    """

    name = "resample"
    _learned_arrays = ("points_", "scale_")

    def __init__(self, *, jitter: float | str = 0.1, max_points: int | None = None, random_state: int = 0) -> None:
        self.jitter = jitter
        self.max_points = max_points
        self.random_state = random_state

    def validate_params(self) -> None:
        if self.jitter != "scott":
            if isinstance(self.jitter, (bool, str)) or not isinstance(self.jitter, (int, float, np.number)):
                raise LatentAtlasError(f"jitter must be a number >= 0 or 'scott', got {self.jitter!r}")
            if not math.isfinite(self.jitter) or self.jitter < 0:
                raise LatentAtlasError(f"jitter must be >= 0, got {self.jitter}")
        if self.max_points is not None:
            checks.positive_int(self.max_points, "max_points")
        checks.seed(self.random_state, "random_state")

    def _fit(self, z: np.ndarray) -> None:
        cov = moments(z).cov
        points = subsample(z, self.max_points, self.random_state)
        factor = len(points) ** (-1.0 / (z.shape[1] + 4)) if self.jitter == "scott" else float(self.jitter)
        self.points_ = points.astype(np.float32)
        self.scale_ = factor * gaussian_factor(cov)

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        rows = rng.integers(0, len(self.points_), size=n)
        return self.points_[rows].astype(np.float64) + rng.standard_normal((n, self.n_features_)) @ self.scale_.T
