"""Gaussian samplers: per-component, full covariance, robust core, and the confidence ellipsoid."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
from scipy import stats as scipy_stats

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.samplers.base import Sampler
from latentatlas.samplers.options import option, optional, temperature_option
from latentatlas.stats import PCA, gaussian_factor, gaussian_log_density, min_cov_det, moments, subsample


def principal_frame(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The affine frame of part X: (mean, principal axes as rows largest first, spread along each axis)."""
    fitted = moments(z)
    pca = PCA().fit(covariance=fitted.cov)
    return fitted.mean, pca.components_, np.sqrt(pca.eigenvalues_)


def truncated_normal_ball(rng: np.random.Generator, n: int, dim: int, radius: float) -> np.ndarray:
    """n standard normal vectors (n, dim) restricted to the ball of `radius`: a uniform direction and a
    squared radius drawn by inverse CDF from chi2_dim truncated at radius² (exact, no rejection loop)."""
    directions = rng.standard_normal((n, dim))
    directions /= np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-300)
    squared_radii = scipy_stats.chi2.ppf(rng.random(n) * scipy_stats.chi2.cdf(radius**2, dim), dim)
    return directions * np.sqrt(squared_radii)[:, None]


class DiagonalGaussian(Sampler):
    """Independent per-component Gaussians with the data's means and widths (part II's fits), no correlations.

    `temperature` T multiplies every width (the diagonal covariance by T²); fitting ignores it.

    Attributes
    ----------
    mean_, std_ : ndarray (N,)
    """

    name = "diagonal-gaussian"
    independent_components = True
    _learned_arrays = ("mean_", "std_")

    temperature: float = temperature_option()  # each width times T (the covariance times T²)

    def _fit(self, z: np.ndarray) -> None:
        fitted = moments(z)
        self.mean_, self.std_ = fitted.mean, fitted.std

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        # the noise times T first: at T = 1 the product is exact, so the draw is bit for bit the untempered one
        return self.mean_ + (rng.standard_normal((n, self.n_features_)) * self.temperature) * self.std_

    def _log_density(self, z: np.ndarray) -> np.ndarray:
        return scipy_stats.norm.logpdf(z, self.mean_, np.maximum(self.std_, 1e-12)).sum(axis=1)


class Gaussian(Sampler):
    """One multivariate normal with the data's mean and full covariance (part VIII's hypothesis).

    `temperature` T draws from N(mean, T² cov): the same fit, its noise scaled (T < 1 nearer the mean).

    Attributes
    ----------
    mean_ : ndarray (N,)
    cov_ : ndarray (N, N)
    """

    name = "gaussian"
    full_covariance = True
    _learned_arrays = ("mean_", "cov_")

    temperature: float = temperature_option()  # the covariance times T² (robust-gaussian inherits it)

    def _fit(self, z: np.ndarray) -> None:
        fitted = moments(z)
        self.mean_, self.cov_ = fitted.mean, fitted.cov

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        noise = rng.standard_normal((n, self.n_features_)) * self.temperature  # exact at T = 1
        return self.mean_ + noise @ gaussian_factor(self.cov_).T

    def _log_density(self, z: np.ndarray) -> np.ndarray:
        return gaussian_log_density(z, self.mean_, self.cov_)


class RobustGaussian(Gaussian):
    """A multivariate normal whose location and covariance come from the robust core (Minimum
    Covariance Determinant), so asymmetric outer layers do not inflate it (the series' later posts).

    The core is the project's one MCD, `stats.min_cov_det` (DetMCD: deterministic starts, then the
    consistency correction and reweighting), run on a seeded subsample of at most `max_points` z-points.

    Attributes
    ----------
    mean_, cov_ : ndarray
        The reweighted robust location and covariance.
    support_ : ndarray of bool (fitted points,)
        Which points of the (subsampled) fit set lie in the reweighted core.
    support_fraction_ : float
        The share of those points in the core.
    """

    name = "robust-gaussian"
    _learned_arrays = ("mean_", "cov_", "support_")
    _learned_scalars = ("support_fraction_",)

    support_fraction: float | None = option(
        None,
        help="MCD support fraction in (0, 1]",
        parse=float,
        check=optional(partial(checks.fraction, open_high=False)),
    )
    max_points: int = option(5000, check=checks.positive_int)
    random_state: int = option(0, check=checks.seed)

    def _fit(self, z: np.ndarray) -> None:
        points = subsample(z, self.max_points, self.random_state)
        if len(points) <= points.shape[1] + 1:
            raise LatentAtlasError(
                f"robust-gaussian needs more than {points.shape[1] + 1} z-points (the dimension + 1), got {len(points)}"
            )
        core = min_cov_det(points, self.support_fraction)
        self.mean_, self.cov_ = core["location"], (core["covariance"] + core["covariance"].T) / 2
        self.support_ = np.asarray(core["support"], dtype=bool)
        self.support_fraction_ = float(self.support_.mean())


class Ellipsoid(Sampler):
    """A whitened confidence ellipsoid: centre the z-points, rotate onto the PCA axes of the full
    covariance, scale by sqrt(eigenvalues); sample inside the N-dimensional confidence ball, map back.

    Inside the ball of squared radius chi2.ppf(confidence, N) the whitened points follow a
    *truncated standard Gaussian* (exactly: a uniform direction and a squared radius drawn from
    the chi-square law truncated at that bound). A uniform ball would, in high N, put nearly
    every point on its surface, i.e. beyond the data's typical radius. This is one joint
    N-dimensional ellipsoid; part X's own generator, independent 2-D ellipses in coordinate planes,
    is `planar-ellipses`.

    Attributes
    ----------
    mean_ : ndarray (N,)
    components_ : ndarray (N, N)
        Principal axes as rows, largest variance first.
    explained_variance_ : ndarray (N,)
    radius_ : float
        The whitened radius sqrt(chi2.ppf(confidence, N)).
    """

    name = "ellipsoid"
    full_covariance = True
    _learned_arrays = ("mean_", "components_", "explained_variance_")
    _learned_scalars = ("radius_",)

    confidence: float = option(0.9, help="confidence level in (0, 1) (default 0.9)", parse=float, check=checks.fraction)

    def _fit(self, z: np.ndarray) -> None:
        self.mean_, self.components_, scales = principal_frame(z)
        self.explained_variance_ = scales**2
        self.radius_ = float(math.sqrt(scipy_stats.chi2.ppf(float(self.confidence), z.shape[1])))

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        whitened = truncated_normal_ball(rng, n, self.n_features_, self.radius_)
        return self.mean_ + (whitened * np.sqrt(self.explained_variance_)) @ self.components_
