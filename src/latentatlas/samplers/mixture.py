"""Gaussian mixtures fitted ex post on the z-points (Ghosh et al. 2020, pythae's GaussianMixtureSampler)."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.samplers.base import Sampler
from latentatlas.stats import gaussian_factor, gaussian_log_density, subsample


def _fit_mixture(points: np.ndarray, components: int, reg_covar: float, random_state: int):
    from sklearn.mixture import GaussianMixture

    return GaussianMixture(
        n_components=components, covariance_type="full", reg_covar=reg_covar, random_state=random_state
    ).fit(points)


class GaussianMixtureSampler(Sampler):
    """A full-covariance Gaussian mixture fitted ex post on the z-points (Ghosh et al. 2020, pythae's
    GaussianMixtureSampler). Fitting uses scikit-learn; sampling uses only the saved weights, means
    and covariances, so a reloaded sampler draws the same vectors.

    Attributes
    ----------
    weights_ : ndarray (K,)
    means_ : ndarray (K, N)
    covariances_ : ndarray (K, N, N)
    """

    name = "gmm"
    _learned_arrays = ("weights_", "means_", "covariances_")

    def __init__(
        self, *, components: int = 10, random_state: int = 0, max_points: int | None = None, reg_covar: float = 1e-6
    ) -> None:
        self.components = components
        self.random_state = random_state
        self.max_points = max_points
        self.reg_covar = reg_covar

    def validate_params(self) -> None:
        checks.positive_int(self.components, "components")
        if self.max_points is not None:
            checks.positive_int(self.max_points, "max_points")
        checks.positive_number(self.reg_covar, "reg_covar")
        checks.seed(self.random_state, "random_state")

    def _min_rows(self) -> int:
        return max(2, int(self.components))

    def _fit(self, z: np.ndarray) -> None:
        points = subsample(z, self.max_points, self.random_state)
        if len(points) < self.components:
            raise LatentAtlasError(f"gmm with {self.components} components needs at least that many z-points")
        self._set_mixture(_fit_mixture(points, int(self.components), float(self.reg_covar), int(self.random_state)))

    def _set_mixture(self, mixture) -> None:
        self.weights_ = mixture.weights_ / mixture.weights_.sum()
        self.means_ = mixture.means_
        self.covariances_ = mixture.covariances_

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        labels = rng.choice(len(self.weights_), size=n, p=self.weights_)
        noise = rng.standard_normal((n, self.n_features_))
        out = np.empty((n, self.n_features_))
        for k in range(len(self.weights_)):
            rows = labels == k
            if rows.any():
                out[rows] = self.means_[k] + noise[rows] @ gaussian_factor(self.covariances_[k]).T
        return out

    def _log_density(self, z: np.ndarray) -> np.ndarray:
        per_component = np.stack(
            [
                np.log(weight) + gaussian_log_density(z, mean, cov)
                for weight, mean, cov in zip(self.weights_, self.means_, self.covariances_)
            ]
        )
        return np.asarray(logsumexp(per_component, axis=0))
