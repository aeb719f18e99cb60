"""Gaussian mixtures fitted ex post on the z-points (Ghosh et al. 2020, pythae's GaussianMixtureSampler)."""

from __future__ import annotations

from functools import partial

import numpy as np
from scipy.special import logsumexp

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.samplers.base import Sampler, split_rows
from latentatlas.samplers.options import int_tuple, option, optional, temperature_option
from latentatlas.stats import gaussian_factor, gaussian_log_density, subsample


def _fit_mixture(points: np.ndarray, components: int, reg_covar: float, random_state: int):
    from sklearn.mixture import GaussianMixture

    return GaussianMixture(
        n_components=components, covariance_type="full", reg_covar=reg_covar, random_state=random_state
    ).fit(points)


class MixtureDensity(Sampler):
    """What every full-covariance Gaussian mixture sampler shares (gmm, gmm-bic, regions): drawing from
    and scoring the saved weights, means and covariances. The subclasses differ in how they fit them and
    in their parameters, so each declares its own (a subclass of `gmm` would inherit `components`); the one
    parameter they share is `temperature` T, which draws from each component with its covariance times T²
    (weights and means unchanged; fitting and the density ignore it).

    Attributes
    ----------
    weights_ : ndarray (K,)
    means_ : ndarray (K, N)
    covariances_ : ndarray (K, N, N)
    """

    _learned_arrays = ("weights_", "means_", "covariances_")

    # each component's covariance times T² (weights and means kept): every subclass has it
    temperature: float = temperature_option()

    def _set_mixture(self, mixture) -> None:
        self.weights_ = mixture.weights_ / mixture.weights_.sum()
        self.means_ = mixture.means_
        self.covariances_ = mixture.covariances_

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        labels = rng.choice(len(self.weights_), size=n, p=self.weights_)
        noise = rng.standard_normal((n, self.n_features_)) * self.temperature  # exact at T = 1
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


class GaussianMixtureSampler(MixtureDensity):
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
    full_covariance = True

    components: int = option(10, help="number of mixture components (default 10)", parse=int, check=checks.positive_int)
    random_state: int = option(0, check=checks.seed)
    max_points: int | None = option(None, check=optional(checks.positive_int))
    reg_covar: float = option(1e-6, check=checks.positive_number)

    def _min_rows(self) -> int:
        return max(2, int(self.components))

    def _fit(self, z: np.ndarray) -> None:
        points = subsample(z, self.max_points, self.random_state)
        if len(points) < self.components:
            raise LatentAtlasError(f"gmm with {self.components} components needs at least that many z-points")
        self._set_mixture(_fit_mixture(points, int(self.components), float(self.reg_covar), int(self.random_state)))


CRITERIA = ("bic", "heldout")


def _check_candidates(candidates: tuple[int, ...], name: str) -> None:
    try:
        counts = list(candidates)
    except TypeError:
        raise LatentAtlasError(f"{name} must be a list of component counts, got {candidates!r}") from None
    if not counts:
        raise LatentAtlasError(f"{name} must name at least one component count")
    for count in counts:
        checks.positive_int(count, "every candidate number of components")


class GaussianMixtureSweep(MixtureDensity):
    """A full-covariance Gaussian mixture whose number of components is chosen from `candidates` by
    BIC on the training rows (`criterion="bic"`) or by the held-out log-likelihood of a seeded
    validation split (`criterion="heldout"`); RAE (Ghosh et al. 2020) sweeps 1-200 components this way.
    Every candidate is fitted on the training rows, the sweep is kept, and the chosen mixture samples.

    Attributes
    ----------
    weights_, means_, covariances_ : ndarray
        The chosen mixture.
    n_components_ : int
        Its number of components.
    sweep_components_ : ndarray (C,)
        The candidates that were fitted (those with at most as many components as training rows).
    sweep_bic_ : ndarray (C,)
        BIC of each on the training rows (lower is better).
    sweep_log_likelihood_ : ndarray (C,)
        Held-out log-likelihood of each, nats per dimension (higher is better).
    """

    name = "gmm-bic"
    _learned_arrays = ("weights_", "means_", "covariances_", "sweep_components_", "sweep_bic_", "sweep_log_likelihood_")
    _learned_scalars = ("n_components_",)

    candidates: tuple[int, ...] = option(
        (1, 2, 4, 8, 16),
        help="component counts to sweep, e.g. 1,2,4,8,16",
        parse=int_tuple,
        check=_check_candidates,
    )
    criterion: str = option("bic", help="how to choose (default bic)", choices=CRITERIA)
    validation_fraction: float = option(0.1, check=partial(checks.fraction, high=0.5, open_high=False))
    random_state: int = option(0, check=checks.seed)
    max_points: int | None = option(None, check=optional(checks.positive_int))
    reg_covar: float = option(1e-6, check=checks.positive_number)

    def _min_rows(self) -> int:
        return max(4, min(int(c) for c in self.candidates) + 1)

    def _fit(self, z: np.ndarray) -> None:
        points = subsample(z, self.max_points, self.random_state)
        train_rows, val_rows = split_rows(len(points), float(self.validation_fraction), int(self.random_state))
        train, val = points[train_rows], points[val_rows]
        counts = sorted({int(c) for c in self.candidates if int(c) <= len(train)})
        if not counts:
            raise LatentAtlasError(f"gmm-bic: no candidate fits {len(train)} training z-points; give smaller ones")
        fits, bic, heldout = [], [], []
        for count in counts:
            mixture = _fit_mixture(train, count, float(self.reg_covar), int(self.random_state))
            fits.append(mixture)
            bic.append(float(mixture.bic(train)))
            heldout.append(float(mixture.score(val)) / points.shape[1])
        best = int(np.argmin(bic)) if self.criterion == "bic" else int(np.argmax(heldout))
        self._set_mixture(fits[best])
        self.n_components_ = counts[best]
        self.sweep_components_ = np.asarray(counts)
        self.sweep_bic_ = np.asarray(bic)
        self.sweep_log_likelihood_ = np.asarray(heldout)
