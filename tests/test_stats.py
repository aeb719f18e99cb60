"""The numeric primitives' one implementations: the moment accumulator, the Mahalanobis distance in its
three uses (fitted, from known moments, the robust core's Gaussian fits) and the regions' moments."""

from __future__ import annotations

import numpy as np
import pytest

from latentatlas.errors import LatentAtlasError
from latentatlas.region_model import fit_regions
from latentatlas.stats import Mahalanobis, MomentSums, fit_gaussian, moments, sq_mahalanobis


@pytest.fixture(scope="module")
def far_points() -> np.ndarray:
    """Correlated points far from the origin (the case the shifted sums are for)."""
    rng = np.random.default_rng(3)
    return rng.standard_normal((2000, 6)) @ rng.standard_normal((6, 6)) + 1e4


def test_moment_sums_give_numpy_moments_whatever_the_chunking(far_points):
    sums = MomentSums(6)
    for start, stop in ((0, 1), (1, 1), (1, 700), (700, 2000)):  # an empty chunk is ignored
        sums.add(far_points[start:stop])
    result = sums.result()
    assert result.n_samples == 2000
    np.testing.assert_allclose(result.mean, far_points.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(result.cov, np.cov(far_points, rowvar=False), rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(result.min, far_points.min(axis=0))
    chunked = moments(far_points, chunk_size=500)
    np.testing.assert_allclose(chunked.cov, result.cov, rtol=1e-10, atol=1e-10)


def test_moment_sums_of_one_row_and_of_none():
    one = MomentSums(3)
    one.add(np.array([[1.0, 2.0, 3.0]]))
    assert np.array_equal(one.result().mean, [1.0, 2.0, 3.0]) and not one.result().cov.any()
    with pytest.raises(LatentAtlasError, match="no z-points were accumulated"):
        MomentSums(3).result()


def test_the_mahalanobis_distance_is_the_explicit_quadratic_form(far_points):
    fitted = Mahalanobis(chunk_size=300).fit(far_points)
    d = far_points[:50] - fitted.mean_
    explicit = np.einsum("ij,ij->i", d @ np.linalg.inv(fitted.covariance_), d)
    np.testing.assert_allclose(fitted.sq_distance(far_points[:50]), explicit, rtol=1e-8)
    np.testing.assert_allclose(fitted.sq_distances_.mean(), 6 * 1999 / 2000, rtol=1e-9)  # E d^2 = N (n-1)/n


def test_mahalanobis_from_known_moments_scores_points_but_has_no_percentiles(far_points):
    fitted = Mahalanobis().fit(far_points)
    known = Mahalanobis.from_moments(fitted.mean_, fitted.covariance_)
    assert known.rank_ == 6 and known.n_samples_ == 0
    np.testing.assert_array_equal(known.sq_distance(far_points), fitted.sq_distance(far_points))
    with pytest.raises(LatentAtlasError, match="percentiles need fitted points"):
        known.percentile(far_points[:3])


def test_squared_distances_are_never_negative():
    precision = np.diag([1.0, 0.0])  # a singular direction: rounding may give -0.0 or a hair below
    points = np.array([[0.0, 5.0], [1e-9, -3.0]])
    assert (sq_mahalanobis(points, np.zeros(2), precision) >= 0).all()


def test_gaussian_fits_agree_between_the_cholesky_and_the_pseudo_inverse_paths(far_points):
    x = far_points[:300]
    fit = fit_gaussian(x)
    assert fit.cholesky is not None and np.isfinite(fit.log_det)
    np.testing.assert_allclose(fit.log_det, np.linalg.slogdet(np.cov(x, rowvar=False, bias=True))[1], rtol=1e-10)
    singular = fit_gaussian(np.c_[x, x[:, :1]])  # a repeated column: no Cholesky factor
    assert singular.cholesky is None and singular.log_det == -np.inf
    np.testing.assert_allclose(singular.sq_distances(np.c_[x, x[:, :1]]), fit.sq_distances(x), rtol=1e-6)


def test_region_moments_are_each_regions_own_mean_and_covariance():
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(-6, 1, (400, 4)), rng.normal(6, 0.5, (300, 4))]) + 100.0
    fit = fit_regions(z, max_regions=3, pca_dims=2, chunk_size=128)
    assert fit.model.n_regions == 2
    for r in range(2):
        rows = z[fit.labels == r]
        np.testing.assert_allclose(fit.model.weights[r], len(rows) / len(z))
        np.testing.assert_allclose(fit.model.means[r], rows.mean(axis=0), rtol=1e-13)
        np.testing.assert_allclose(fit.model.covariances[r], np.cov(rows, rowvar=False), rtol=1e-9, atol=1e-10)
