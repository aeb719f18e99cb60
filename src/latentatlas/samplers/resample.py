"""Resampling real z-points with a bulk-shaped jitter: a KDE-style baseline."""

from __future__ import annotations

import math

import numpy as np

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.samplers.base import Sampler
from latentatlas.samplers.options import number_or_word, option, optional
from latentatlas.stats import gaussian_factor, moments, subsample


def _check_jitter(value: float | str, name: str) -> None:
    if value != "scott":
        if isinstance(value, (bool, str)) or not isinstance(value, (int, float, np.number)):
            raise LatentAtlasError(f"jitter must be a number >= 0 or 'scott', got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise LatentAtlasError(f"jitter must be >= 0, got {value}")


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

    jitter: float | str = option(
        0.1, help="fraction of std, or 'scott'", parse=number_or_word("scott"), check=_check_jitter
    )
    max_points: int | None = option(None, check=optional(checks.positive_int))
    random_state: int = option(0, check=checks.seed)

    def _fit(self, z: np.ndarray) -> None:
        cov = moments(z).cov
        points = subsample(z, self.max_points, self.random_state)
        factor = len(points) ** (-1.0 / (z.shape[1] + 4)) if self.jitter == "scott" else float(self.jitter)
        self.points_ = points.astype(np.float32)
        self.scale_ = factor * gaussian_factor(cov)

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        rows = rng.integers(0, len(self.points_), size=n)
        return self.points_[rows].astype(np.float64) + rng.standard_normal((n, self.n_features_)) @ self.scale_.T
