"""The normal core after trimming (issue 12 item 1) and fragmentation into regions (item 3), on known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special
from sklearn.metrics import adjusted_rand_score

from latentatlas import analysis as an
from latentatlas.analysis import normality_tests
from latentatlas.errors import LatentAtlasError

THREE_SIGMA = float(special.erf(3 / np.sqrt(2)))


def gaussian_with_outliers(n: int, dim: int, share: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A correlated Gaussian with `share` of its rows replaced by a cloud 8 units off on every axis."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim) + np.eye(dim)
    z = rng.standard_normal((n, dim)) @ mixing.T + 3.0
    outlier = np.zeros(n, dtype=bool)
    outlier[rng.choice(n, int(share * n), replace=False)] = True
    z[outlier] += 8.0 + 0.5 * rng.standard_normal((int(outlier.sum()), dim))
    return z, outlier


@pytest.mark.slow
def test_trimmed_core_passes_henze_zirkler_where_the_whole_sample_fails() -> None:
    z, outlier = gaussian_with_outliers(6000, 8, 0.05)
    normality = an.CoreNormality(sizes=(5000,), pairwise_points=5000).fit(z)
    # every planted outlier is trimmed, and 3σ of the Gaussian keeps 99.73 % of it
    assert normality.core_fraction_ == pytest.approx(0.95 * THREE_SIGMA, abs=0.005)
    assert np.all(normality.robust_sq_distances_[outlier] > normality.cutoff_)
    (core,), (everything,) = normality.core_, normality.all_
    assert core.n == everything.n == 5000
    assert core.henze_zirkler_p is not None and core.henze_zirkler_p > 0.05
    assert everything.henze_zirkler_p is not None and everything.henze_zirkler_p < 1e-6
    assert core.passes() and not everything.passes()
    assert everything.component_pass_share < 0.5 and everything.mardia_kurtosis_p < 1e-6
    verdicts = {f.key: f.verdict for f in normality.findings()}
    assert verdicts == {"normal-core": "agrees", "henze-zirkler-power": "agrees"}


def test_heavy_tailed_core_is_not_called_normal() -> None:
    rng = np.random.default_rng(3)
    # multivariate Student-t with 4 dof: elliptical, so trimming keeps a core that is still heavy-tailed
    z = rng.standard_normal((4000, 6)) / np.sqrt(rng.chisquare(4, (4000, 1)) / 4)
    normality = an.CoreNormality(sizes=(1000, "all"), pairwise_points=1000).fit(z)
    assert normality.core_fraction_ < 0.95
    assert not normality.core_[-1].passes()
    assert normality.findings()[0].verdict in ("disagrees", "mixed")


def test_core_sizes_are_capped_and_deduplicated() -> None:
    z, _ = gaussian_with_outliers(1200, 4, 0.05, seed=1)
    normality = an.CoreNormality(sizes=(500, 5000, 10000, "all"), pairwise_points=600).fit(z)
    core_n = int(round(normality.core_fraction_ * 1200))
    assert [t.n for t in normality.core_] == [500, core_n]
    assert [t.n for t in normality.all_] == [500, 1200]
    assert normality.core_[0].henze_zirkler is not None and normality.core_[1].henze_zirkler is None


def test_mardia_matches_brute_force_and_flags_flat_tails() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((700, 3)) @ np.array([[2.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.5, 0.3]])
    y = normality_tests.whiten(x)
    np.testing.assert_allclose(np.cov(y, rowvar=False, bias=True), np.eye(3), atol=1e-10)
    g = y @ y.T
    result = an.mardia(y)
    assert result["skewness"] == pytest.approx(np.sum(g**3) / 700 / 6, rel=1e-10)
    assert result["kurtosis_p"] > 0.01 and result["skewness_p"] > 0.01
    flat = an.mardia(normality_tests.whiten(rng.uniform(-1, 1, (700, 3))))
    assert flat["kurtosis"] < -5  # uniform: b2 = 3 x 1.8 + 6 = 11.4 < p(p+2) = 15


@pytest.mark.parametrize("dim,blind", [(4, False), (256, True)])
def test_henze_zirkler_loses_its_power_in_high_dimension(dim: int, blind: bool) -> None:
    heavy = np.random.default_rng(5).standard_t(3, size=(600, dim))
    _, p = normality_tests.henze_zirkler(heavy)
    assert (p > 0.05) == blind


# ----------------------------------------------------------------------------- regions


def three_gaussians(n: int, dim: int, shares: list[float], seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 0.8, (len(shares), dim))  # centres ~18 units apart, spreads ~1 per axis
    labels = rng.choice(len(shares), n, p=shares)
    mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim) * 0.5 + 0.5 * np.eye(dim)
    return centres[labels] + rng.standard_normal((n, dim)) @ mixing.T, labels, centres


def test_three_separated_gaussians_are_three_regions() -> None:
    shares = [0.5, 0.3, 0.2]
    z, labels, centres = three_gaussians(6000, 256, shares)
    regions = an.Regions().fit(z)
    assert regions.n_regions_ == 3 and regions.hdbscan_n_regions_ == 3
    assert regions.adjusted_rand_ == pytest.approx(1.0)
    order = [int(np.argmin(np.linalg.norm(regions.means_ - c, axis=1))) for c in centres]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(regions.shares_[order], shares, atol=0.02)
    for found, centre in zip(regions.means_[order], centres):
        assert np.linalg.norm(found - centre) < 0.1 * np.linalg.norm(centre)
    assert adjusted_rand_score(labels, regions.labels_) > 0.99
    model = regions.model()
    np.testing.assert_array_equal(model.predict(z[:500]), regions.labels_[:500])
    assert model.covariances.shape == (3, 256, 256) and model.weights.sum() == pytest.approx(1.0)
    # one Gaussian over all three mostly falls between them; the z-points themselves sit in the cores
    assert regions.void_share_ > 0.5 and regions.data_outside_cores_ < 0.03
    assert regions.separation_[np.triu_indices(3, 1)].min() > 10
    assert regions.finding().verdict == "disagrees"
    assert "the most the sweep tried" not in regions.finding().evidence


def test_a_region_count_at_the_sweeps_cap_says_so() -> None:
    z, _, _ = three_gaussians(3000, 64, [0.5, 0.3, 0.2])
    capped = an.Regions(max_regions=2).fit(z)
    assert capped.n_regions_ == 2
    assert "picks 2 region(s) (the most the sweep tried: more regions may fit better" in capped.finding().evidence


def test_one_gaussian_is_one_region() -> None:
    z, _, _ = three_gaussians(5000, 256, [1.0])
    regions = an.Regions().fit(z)
    assert regions.n_regions_ == 1 and regions.hdbscan_n_regions_ <= 1
    assert regions.shares_.tolist() == [1.0]
    assert regions.void_share_ < 0.03
    assert regions.finding().verdict == "agrees"
    assert regions.to_dict()["regions"]["regions"][0]["share"] == 1.0


def test_heavy_tails_are_one_region_not_fragments() -> None:
    # a multivariate Student-t needs several mixture components, but they overlap: no voids between them
    rng = np.random.default_rng(3)
    z = rng.standard_normal((5000, 64)) / np.sqrt(rng.chisquare(4, (5000, 1)) / 4)
    regions = an.Regions().fit(z)
    assert regions.n_regions_ > 1 and regions.hdbscan_n_regions_ <= 1
    assert regions.void_share_ < 0.02
    assert regions.finding().verdict == "agrees"


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: an.CoreNormality(sizes=()), "at least one normality sample size"),
        (lambda: an.CoreNormality(sizes=(1000, 3)), "a normality sample size must be an integer >= 8, got 3"),
        (lambda: an.CoreNormality(sigma=0), "sigma must be a finite number > 0"),
        (lambda: an.Regions(min_share=1.5), r"min_share must be in \(0, 1\), got 1.5"),
        (lambda: an.Regions(core_level=0.0), r"core_level must be in \(0, 1\), got 0.0"),
        (lambda: an.Regions(max_regions=0), "max_regions must be an integer >= 1, got 0"),
    ],
)
def test_bad_options_raise(make, message: str) -> None:
    z = np.random.default_rng(0).standard_normal((300, 4))
    with pytest.raises(LatentAtlasError, match=message):
        make().fit(z)


def test_too_few_points_are_reported() -> None:
    z = np.random.default_rng(0).standard_normal((30, 16))
    with pytest.raises(LatentAtlasError, match=r"needs at least 2 N \+ 4 = 36 z-points, got 30"):
        an.CoreNormality().fit(z)
    analysis = an.LatentAnalysis(mcd_samples=100, simulate=100).fit(z)
    summary = analysis.to_dict()
    assert summary["core_normality"] == {"skipped": analysis.skipped_["core_normality"]}
    assert "normal-core" not in {f["key"] for f in summary["findings"]}
