"""Known-answer tests of the z-point analyses: draws from distributions whose statistics are known exactly."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from latentatlas import analysis as an
from latentatlas.cli import main
from latentatlas.errors import LatentAtlasError
from latentatlas.io import load_npy, save_npy, write_json
from latentatlas.pipelines.analyze import analyze_run


def diagonal_gaussian(n: int, mean: np.ndarray, std: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (mean + std * rng.standard_normal((n, len(mean)))).astype(np.float32)


def rotated_gaussian(n: int, angle_deg: float, sd_major: float, sd_minor: float, seed: int = 0) -> np.ndarray:
    theta = math.radians(angle_deg)
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 2)) * [sd_major, sd_minor]) @ rotation.T + [1.0, -2.0]


# ----------------------------------------------------------------------------- bulk statistics


@pytest.mark.parametrize("chunk_size", [7, 1000, 1 << 20])
def test_bulk_statistics_chunked_equals_unchunked(chunk_size: int) -> None:
    rng = np.random.default_rng(1)
    z = (rng.standard_normal((3000, 6)) @ rng.standard_normal((6, 6)) + 5.0).astype(np.float32)
    s = an.BulkStatistics(chunk_size=chunk_size).fit(z)
    x = z.astype(np.float64)
    np.testing.assert_allclose(s.mean_, x.mean(axis=0), rtol=0, atol=1e-10)
    np.testing.assert_allclose(s.cov_, np.cov(x, rowvar=False), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(s.skewness_, stats.skew(x), atol=1e-8)
    np.testing.assert_allclose(s.kurtosis_, stats.kurtosis(x), atol=1e-8)
    np.testing.assert_array_equal(s.min_, x.min(axis=0))
    assert s.hist_counts_.sum(axis=1).tolist() == [3000] * 6
    reference = an.BulkStatistics(chunk_size=1 << 20).fit(z)
    np.testing.assert_array_equal(s.hist_counts_, reference.hist_counts_)
    # percentiles from the 4096-bin histogram: the q-quantile lies within one fine bin of the estimate
    bin_width = (x.max(axis=0) - x.min(axis=0)) / 4096
    for q, estimate in ((0.01, s.lower_), (0.99, s.upper_)):
        assert np.all(np.mean(x <= estimate + bin_width, axis=0) >= q)
        assert np.all(np.mean(x < estimate - bin_width, axis=0) <= q)


@pytest.mark.parametrize("mean,std", [(0.0, 1.0), (3.0, 0.5), (-20.0, 4.0)])
def test_bulk_statistics_known_gaussian(mean: float, std: float) -> None:
    z = diagonal_gaussian(40000, np.full(4, mean), np.full(4, std), seed=2)
    s = an.BulkStatistics(percentiles=(2.5, 97.5), chunk_size=5000).fit(z)
    # standard errors: std/sqrt(n) = 0.005 std for the mean, ~0.0035 std for the std; allow 5 se
    np.testing.assert_allclose(s.mean_, mean, atol=0.025 * std)
    np.testing.assert_allclose(s.std_, std, rtol=0.02)
    np.testing.assert_allclose(s.lower_, mean - 1.95996 * std, atol=0.05 * std)
    np.testing.assert_allclose(s.upper_, mean + 1.95996 * std, atol=0.05 * std)
    assert np.all(np.abs(s.skewness_) < 0.06) and np.all(np.abs(s.kurtosis_) < 0.12)


def test_row_selection_equals_subset() -> None:
    z = diagonal_gaussian(2000, np.arange(5.0), np.ones(5), seed=3)
    rows = np.random.default_rng(0).random(2000) < 0.3
    selected = an.BulkStatistics(chunk_size=128).fit(an.ZView(z, rows))
    direct = an.BulkStatistics().fit(z[rows])
    np.testing.assert_allclose(selected.cov_, direct.cov_, atol=1e-12)
    np.testing.assert_array_equal(selected.hist_counts_, direct.hist_counts_)
    assert selected.n_samples_ == rows.sum()


def test_memmap_store_matches_array(tmp_path) -> None:
    z = diagonal_gaussian(5000, np.zeros(8), np.ones(8), seed=4)
    save_npy(tmp_path / "z.npy", z)
    mapped = load_npy(tmp_path / "z.npy")
    a = an.Mahalanobis(chunk_size=999).fit(mapped)
    b = an.Mahalanobis().fit(z)
    np.testing.assert_allclose(a.sq_distances_, b.sq_distances_, rtol=1e-9)


# ----------------------------------------------------------------------------- distributions, dominant components


@pytest.mark.parametrize("std", [0.5, 2.0])
def test_hwhm_and_ks_of_gaussian_and_uniform(std: float) -> None:
    rng = np.random.default_rng(5)
    gauss = rng.normal(1.0, std, 40000)
    uniform = rng.uniform(-3 * std, 3 * std, 40000)
    z = np.stack([gauss, uniform], axis=1).astype(np.float32)
    d = an.ComponentDistributions(ks_samples=20000).fit(z)
    assert d.hwhm_[0] == pytest.approx(std * math.sqrt(2 * math.log(2)), rel=0.06)
    # a flat distribution keeps its half maximum up to its edge: HWHM ~ half its width (3 std)
    assert d.hwhm_[1] == pytest.approx(3 * std, rel=0.08)
    assert d.ks_[0] < 0.015 and d.ks_[1] > 0.04


@pytest.mark.parametrize(
    "combine,width,expected",
    [
        ("or", None, [0, 1, 2, 3]),  # offset: 0, 1 (|mean|/std = 3, 2); wide: 2, 3 (std 3 >= 1.5 x 1)
        ("and", None, [3]),  # only 3 is both
        ("or", 5.0, [0, 1, 3]),  # absolute width 5: no component wide enough, 3 offset (4/3)
    ],
)
def test_dominant_components_planted(combine: str, width: float | None, expected: list[int]) -> None:
    mean = np.zeros(12)
    std = np.ones(12)
    mean[0], mean[1], mean[3] = 3.0, -2.0, 4.0
    std[2], std[3] = 3.0, 3.0
    z = diagonal_gaussian(20000, mean, std, seed=6)
    dom = an.DominantComponents(offset_k=1.0, width=width, combine=combine).fit(z)
    assert sorted(dom.components_.tolist()) == expected
    rms = np.sqrt(mean**2 + std**2)
    # ranked by rms (component 3: 5.0, 0: 3.2, 2: 3.0, 1: 2.2)
    assert dom.components_.tolist() == sorted(expected, key=lambda j: -rms[j])


# ----------------------------------------------------------------------------- correlations, ellipses, PCA


@pytest.mark.parametrize("rho", [0.8, -0.6])
def test_correlation_and_strongest_pair(rho: float) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((30000, 6))
    x[:, 4] = rho * x[:, 1] + math.sqrt(1 - rho**2) * x[:, 4]
    s = an.BulkStatistics().fit(x * [1, 2, 3, 4, 5, 6])
    corr = an.correlation_matrix(s.cov_)
    (i, j, r), *_ = an.strongest_pairs(corr, 3)
    assert (i, j) == (1, 4)
    assert r == pytest.approx(rho, abs=0.015)
    np.testing.assert_allclose(np.diag(corr), 1.0)


@pytest.mark.parametrize("angle", [-60.0, 0.0, 30.0, 75.0])
def test_confidence_ellipse_tilt_axes_and_coverage(angle: float) -> None:
    x = rotated_gaussian(40000, angle, 3.0, 1.0, seed=8)
    mean, cov = x.mean(axis=0), np.cov(x, rowvar=False)
    for confidence in (0.5, 0.9, 0.99):
        e = an.confidence_ellipse(mean, cov, confidence)
        radius = math.sqrt(stats.chi2(2).ppf(confidence))
        assert e["angle_deg"] == pytest.approx(angle, abs=1.5)
        assert e["half_axes"][0] == pytest.approx(3.0 * radius, rel=0.02)
        assert e["half_axes"][1] == pytest.approx(1.0 * radius, rel=0.02)
        # the ellipse holds `confidence` of the points
        t = math.radians(e["angle_deg"])
        d = x - e["centre"]
        u = d @ [math.cos(t), math.sin(t)]
        v = d @ [-math.sin(t), math.cos(t)]
        inside = (u / e["half_axes"][0]) ** 2 + (v / e["half_axes"][1]) ** 2 <= 1
        assert inside.mean() == pytest.approx(confidence, abs=0.01)


@pytest.mark.parametrize("variances", [[16, 4, 1, 1, 0.25, 0.25], [1.0] * 6])
def test_pca_spectrum(variances: list[float]) -> None:
    lam = np.array(variances, dtype=float)
    z = diagonal_gaussian(50000, np.ones(len(lam)), np.sqrt(lam), seed=9)
    p = an.PCA().fit(z)
    np.testing.assert_allclose(p.eigenvalues_, np.sort(lam)[::-1], rtol=0.04)
    true_pr = lam.sum() ** 2 / (lam**2).sum()
    assert p.participation_ratio_ == pytest.approx(true_pr, rel=0.05)
    ratio = np.cumsum(np.sort(lam)[::-1]) / lam.sum()
    assert p.n_components_90_ == int(np.searchsorted(ratio, 0.9) + 1)


# ----------------------------------------------------------------------------- Mahalanobis, origin


@pytest.mark.parametrize("offset", [0.3, 0.6])
def test_mahalanobis_percentile_of_origin(offset: float) -> None:
    rng = np.random.default_rng(10)
    dim = 8
    std = rng.uniform(0.5, 2.0, dim)
    mean = offset * std * rng.choice([-1, 1], dim) * rng.uniform(1.0, 3.0, dim)
    z = diagonal_gaussian(40000, mean, std, seed=11)
    m = an.Mahalanobis(chunk_size=4096).fit(z)
    truth = float(np.sum((mean / std) ** 2))
    origin = np.zeros(dim)
    assert m.sq_distance(origin)[0] == pytest.approx(truth, rel=0.05)
    assert m.percentile(origin)[0] == pytest.approx(100 * stats.chi2(dim).cdf(truth), abs=1.5)
    assert np.all(np.diff(m.sq_distances_) >= 0) and m.n_samples_ == 40000
    # any point: the percentile is the share of fitted points strictly closer
    point = z[17]
    closer = np.mean(m.sq_distances_ < m.sq_distance(point)[0]) * 100
    assert m.percentile(point)[0] == pytest.approx(closer)


def test_mahalanobis_singular_covariance_uses_pseudo_inverse() -> None:
    rng = np.random.default_rng(12)
    x = rng.standard_normal((5000, 3))
    z = np.column_stack([x, x[:, 0] + x[:, 1]])  # rank 3 in 4 dimensions
    m = an.Mahalanobis().fit(z)
    assert m.rank_ == 3
    assert m.sq_distances_.mean() == pytest.approx(3.0, rel=0.01)  # E[d^2] = rank


# ----------------------------------------------------------------------------- radii


@pytest.mark.parametrize("b", [0.5, 1.5, 5.0])
def test_uniform_radius_moments_formulas(b: float) -> None:
    # N = 1: |x| is uniform on [0, b]
    mean1, std1 = an.uniform_radius_moments(1, b)
    assert mean1 == pytest.approx(b / 2, rel=1e-8) and std1 == pytest.approx(b / math.sqrt(12), rel=1e-6)
    # large N: b sqrt(N/3) (1 - 1/(10N)) and b / sqrt(15)
    mean, std = an.uniform_radius_moments(256, b)
    assert mean == pytest.approx(b * math.sqrt(256 / 3) * (1 - 1 / 2560), rel=1e-5)
    assert std == pytest.approx(b / math.sqrt(15), rel=0.01)
    # small N: simulation
    r = np.linalg.norm(an.uniform_box(100000, 5, b, seed=1).astype(np.float64), axis=1)
    mean5, std5 = an.uniform_radius_moments(5, b)
    assert mean5 == pytest.approx(r.mean(), rel=0.003) and std5 == pytest.approx(r.std(), rel=0.01)


@pytest.mark.parametrize("b", [0.7, 1.3])
def test_radii_b_match_and_overlap(b: float) -> None:
    z = an.uniform_box(20000, 64, b, seed=2)
    r = an.Radii(b_values=(0.5, b, 5.0), simulate=5000).fit(z)
    assert r.b_match_ == pytest.approx(b, rel=0.003)
    assert r.b_overlap_[0] < b < r.b_overlap_[1]
    row = r.uniform_[1]
    assert row["simulated_mean"] == pytest.approx(row["theory_mean"], rel=0.003)
    assert row["simulated_std"] == pytest.approx(row["theory_std"], rel=0.05)
    assert row["data_fraction_within_4_sigma"] > 0.999
    assert r.uniform_[2]["data_fraction_within_4_sigma"] == 0.0


# ----------------------------------------------------------------------------- slices, robust core


@pytest.mark.parametrize("plane,b", [((0, 1), 1.5), ((2, 5), 1.0), ((4, 3), 2.5)])
def test_slice_fraction_matches_closed_form(plane: tuple[int, int], b: float) -> None:
    mean = np.array([2.0, -1.0, 0.5, 0.0, 0.2, -0.4])
    std = np.array([1.0, 0.5, 0.8, 1.2, 0.6, 0.7])
    z = diagonal_gaussian(60000, mean, std, seed=13)
    truth = an.independent_gaussian_slice_fraction(mean, std, plane, b)
    others = [j for j in range(6) if j not in plane]
    expected = np.prod(
        [stats.norm.cdf((b - mean[j]) / std[j]) - stats.norm.cdf((-b - mean[j]) / std[j]) for j in others]
    )
    assert truth == pytest.approx(expected, rel=1e-12)
    fraction = an.slice_fraction(z, plane, b, chunk_size=5000)
    assert fraction == pytest.approx(truth, abs=4 * math.sqrt(truth * (1 - truth) / 60000))
    mask = an.slice_mask(z, plane, b)
    np.testing.assert_array_equal(mask, np.all(np.abs(z[:, others]) <= b, axis=1))
    counts, kept = an.slice_counts(z, [plane], [b], chunk_size=777, keep_indices=50)
    assert counts[0, 0] == mask.sum()
    np.testing.assert_array_equal(kept[0][0], np.flatnonzero(mask)[:50])


def test_robust_core_resists_outliers_and_agrees_with_sklearn() -> None:
    from sklearn.covariance import MinCovDet

    rng = np.random.default_rng(14)
    cov = np.array([[2.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 0.5]])
    z = rng.multivariate_normal([1.0, 0.0, -1.0], cov, size=3000)
    z[:300] += [6.0, -6.0, 6.0]  # 10 % far outliers
    core = an.RobustCore(max_samples=3000).fit(z)
    np.testing.assert_allclose(core.location_, [1.0, 0.0, -1.0], atol=0.1)
    np.testing.assert_allclose(core.covariance_, cov, atol=0.15)
    # the same support as scikit-learn's MinCovDet (random starts); covariances agree to their finite-sample factor
    reference = MinCovDet(random_state=0).fit(z)
    assert core.support_fraction_ == pytest.approx(reference.support_.mean(), abs=0.005)
    np.testing.assert_allclose(core.location_, reference.location_, atol=0.02)
    np.testing.assert_allclose(core.covariance_, reference.covariance_, rtol=0.1, atol=0.02)
    # the plain moments of the mixture: Σ + a d dᵀ with a = 0.1 x 0.9 (Sherman-Morrison gives the exact answers)
    d = np.array([6.0, -6.0, 6.0])
    q = d @ np.linalg.solve(cov, d)
    assert core.log_generalized_variance_ratio_ == pytest.approx(-math.log1p(0.09 * q), abs=0.2)
    assert core.mean_shift_mahalanobis_ == pytest.approx(math.sqrt(0.01 * q / (1 + 0.09 * q)), rel=0.1)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda z: an.slice_mask(z, (0, 9), 1.5), "axis 9 is out of range for latent dimension 4"),
        (lambda z: an.slice_mask(z, (2, 2), 1.5), r"plane \(2, 2\) repeats an axis"),
        (lambda z: an.slice_mask(z, (0, 1), 0.0), "b must be a finite number > 0, got 0.0"),
        (lambda z: an.slice_fraction(z, (0, 1), -1.0), "b must be a finite number > 0, got -1.0"),
        (lambda z: an.confidence_ellipse([0, 0], np.eye(2), 1.0), r"a confidence level must be in \(0, 1\), got 1.0"),
        (lambda z: an.confidence_ellipse([0, 0], np.eye(2), 0.0), r"a confidence level must be in \(0, 1\), got 0.0"),
        (lambda z: an.LatentAnalysis(planes=[(0, 1), (1, 0)]).fit(z), r"plane \(1, 0\) is given twice"),
        (lambda z: an.LatentAnalysis(planes=[(0, 4)]).fit(z), "axis 4 is out of range for latent dimension 4"),
        (lambda z: an.LatentAnalysis(confidences=[0.5, 1.5]).fit(z), r"confidence level must be in \(0, 1\), got 1.5"),
        (lambda z: an.LatentAnalysis(radius_b=[1.0, 0.0]).fit(z), "a radius b must be a finite number > 0, got 0.0"),
        (lambda z: an.LatentAnalysis(slice_b=[-1.5]).fit(z), "a slice b must be a finite number > 0, got -1.5"),
        (lambda z: an.LatentAnalysis(percentiles=(99, 1)).fit(z), "percentiles must be two numbers 0 <= lo < hi"),
        (lambda z: an.LatentAnalysis(random_state=-1).fit(z), "random_state must be an integer >= 0"),
        (lambda z: an.BulkStatistics().fit(np.where(np.arange(4) == 2, np.nan, z)), "NaN or infinite values"),
        (lambda z: an.BulkStatistics().fit(z[:1]), "need at least 2 z-points, got 1"),
        (lambda z: an.RobustCore(max_samples=4).fit(z), r"more than N \+ 1 = 5 points in its subsample, got 4"),
    ],
)
def test_bad_options_raise(call, message: str) -> None:
    z = diagonal_gaussian(200, np.zeros(4), np.ones(4))
    with pytest.raises(LatentAtlasError, match=message):
        call(z)


def test_nan_row_is_reported_with_its_index() -> None:
    z = diagonal_gaussian(500, np.zeros(3), np.ones(3))
    z[321, 1] = np.nan
    with pytest.raises(LatentAtlasError, match="first bad row: 321"):
        an.BulkStatistics(chunk_size=100).fit(z)


# ----------------------------------------------------------------------------- the whole analysis, CLI


def test_latent_analysis_default_planes_and_summary(tmp_path) -> None:
    mean = np.zeros(10)
    mean[2], mean[6] = 4.0, -3.0
    rng = np.random.default_rng(15)
    z = mean + rng.standard_normal((4000, 10))
    z[:, 8] = 0.9 * z[:, 1] + 0.3 * z[:, 8]
    a = an.LatentAnalysis(n_planes=2, mcd_samples=1000, simulate=2000).fit(z)
    result = a.to_dict()
    assert [p["plane"] for p in result["planes"]] == [[2, 6], [1, 8]]
    assert [p["source"] for p in result["planes"]] == ["dominant", "correlation"]
    assert len(result["slices"]) == 2 * 2  # (1.5, b_match) x planes
    assert result["slices"][0]["b"] == 1.5 and result["slices"][2]["b"] == pytest.approx(result["radii"]["b_match"])
    d2 = float(np.sum((mean / a.statistics_.std_) ** 2))
    assert result["origin"]["mahalanobis_sq"] == pytest.approx(d2, rel=0.25)  # columns 1, 8 are correlated
    assert result["normality"]["dof"] == 10
    # brute force on the whole array: the shares of points closer to the centre than the origin
    centre = z.mean(axis=0)
    precision = np.linalg.inv(np.cov(z, rowvar=False))
    sq = np.einsum("ij,jk,ik->i", z - centre, precision, z - centre)
    assert result["origin"]["fraction_closer"] == pytest.approx(np.mean(sq < centre @ precision @ centre))
    assert result["origin"]["euclidean_fraction_closer"] == pytest.approx(
        np.mean(np.sum((z - centre) ** 2, axis=1) < centre @ centre)
    )
    assert result["normality"]["mean_sq"] == pytest.approx(10 * 3999 / 4000)
    write_json(tmp_path / "a.json", result)
    assert json.loads((tmp_path / "a.json").read_text())["pca"]["n_components_99"] == a.pca_.n_components_99_


def test_cli_analyze_end_to_end(tiny_run_copy, capsys) -> None:
    run = tiny_run_copy
    assert main(["analyze", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert "dominant components" in out and "b_match" in out
    assert "seed claims: origin-position " in out and "normal core: " in out and "regions: " in out
    folder = run.path / "analysis"
    result = json.loads((folder / "analysis.json").read_text())
    assert result["schema"] == an.SCHEMA and result["subset"] == "train"
    assert result["n_points"] == int(np.sum(run.metadata()["subset"] == "train"))
    assert result["latent_dim"] == 16 and len(result["components"]) == 16
    assert len(result["planes"]) == 4 and all(len(p["ellipses"]) == 3 for p in result["planes"])
    assert {f["file"] for f in result["figures"]} >= {
        "histograms.png",
        "correlation.png",
        "pca_spectrum.png",
        "radii.png",
        "mahalanobis.png",
        "projections.png",
        "slices.png",
    }
    for figure in result["figures"]:
        assert (folder / figure["file"]).stat().st_size > 1000 and figure["caption"]
    # the seed's claims, the normal core and the regions, each judged from this run's numbers
    keys = [f["key"] for f in result["findings"]]
    assert keys[:6] == [
        "origin-position",
        "dominant-components",
        "gaussian-marginals",
        "strong-correlations",
        "uniform-shell-misses-bulk",
        "bulk-off-centre",
    ]
    assert {"normal-core", "one-compact-region"} <= set(keys)
    assert all(
        f["verdict"] in ("agrees", "disagrees", "mixed", "undecided") and f["evidence"] for f in result["findings"]
    )
    core = result["core_normality"]
    assert 0.5 < core["core_fraction"] <= 1.0 and core["dof"] == 16 and core["core"][-1]["n"] <= result["n_points"]
    assert {"core_normality.png", "regions.png"} <= {f["file"] for f in result["figures"]}
    regions = result["regions"]
    assert regions["n_regions"] == len(regions["regions"]) >= 1
    assert sum(r["share"] for r in regions["regions"]) == pytest.approx(1.0)
    for name in result["arrays"].values():
        assert (folder / name).is_file()
    train = run.zpoints("train").astype(np.float64)
    np.testing.assert_allclose(load_npy(folder / "mean.npy"), train.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(load_npy(folder / "covariance.npy"), np.cov(train, rowvar=False), atol=1e-9)

    assert (
        main(
            [
                "analyze",
                str(run.path),
                "--subset",
                "all",
                "--planes",
                "0,1",
                "--planes",
                "3,5",
                "--no-figures",
                "--slice-b",
                "2.0",
            ]
        )
        == 0
    )
    result = json.loads((folder / "analysis.json").read_text())
    assert result["n_points"] == len(run.zpoints()) and result["figures"] == []
    assert [p["plane"] for p in result["planes"]] == [[0, 1], [3, 5]]
    assert [s["b"] for s in result["slices"]] == [2.0, 2.0]
    with pytest.raises(LatentAtlasError, match="unknown analysis option"):
        analyze_run(run.path, confidence=0.5)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--planes", "0,16"], "out of range"),
        (["--planes", "3,3"], "repeats an axis"),
        (["--planes", "1,2", "--planes", "2,1"], "given twice"),
        (["--radius-b", "1,-2"], "> 0"),
        (["--slice-b", "0"], "> 0"),
        (["--confidences", "0.5,1"], "(0, 1)"),
        (["--percentiles", "5"], "two numbers"),
    ],
)
def test_cli_bad_options_exit_2_with_one_line(tiny_run_copy, capsys, args: list[str], message: str) -> None:
    assert main(["analyze", str(tiny_run_copy.path), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tiny_run_copy.path / "analysis").exists()


def test_cli_nan_store_and_missing_run(tiny_run_copy, tmp_path, capsys) -> None:
    z = np.array(load_npy(tiny_run_copy.zpoints_file("zpoints.npy")))
    z[5, 3] = np.nan
    save_npy(tiny_run_copy.zpoints_file("zpoints.npy"), z)
    assert main(["analyze", str(tiny_run_copy.path), "--subset", "all"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NaN" in err
    assert not (tiny_run_copy.path / "analysis" / "analysis.json").exists()
    assert main(["analyze", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
