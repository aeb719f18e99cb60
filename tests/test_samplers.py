"""Samplers: statistical known-answer checks, save/load round trips, determinism, validation."""

from __future__ import annotations

import inspect
import math
import re

import numpy as np
import pytest
from scipy import stats

from cli_helpers import exit_status
from latentatlas.errors import LatentAtlasError
from latentatlas.samplers import SAMPLERS, Sampler, load_sampler, make_sampler, sampler_options
from latentatlas.stats import moments

DIM = 8
N_SAMPLES = 2000
# Small options keep the slow fits (GMM, MCD) to a fraction of a second on 2 shared cores.
FAST_OPTIONS = {
    "gmm": {"components": 3},
    "gmm-bic": {"candidates": (1, 2)},
    "robust-gaussian": {"max_points": 800},
    "regions": {"max_regions": 3},
    "flow": {"epochs": 2, "hidden": 16, "max_points": 600},
    "two-stage": {"epochs": 2, "hidden": 16, "max_points": 600},
    "diffusion": {"epochs": 2, "width": 16, "blocks": 1, "steps": 4, "max_points": 600},
}


def _known_gaussian(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(DIM, DIM)) * 0.6 + np.eye(DIM)
    mean = np.linspace(-2.0, 3.0, DIM)
    z = mean + rng.standard_normal((n, DIM)) @ mixing.T
    return z.astype(np.float32), mean, mixing @ mixing.T


@pytest.fixture(scope="module")
def gaussian_z() -> np.ndarray:
    return _known_gaussian(3000)[0]


@pytest.fixture(scope="module")
def memmapped_z(tmp_path_factory, gaussian_z) -> np.ndarray:
    path = tmp_path_factory.mktemp("z") / "z.npy"
    np.save(path, gaussian_z)
    return np.load(path, mmap_mode="r")


def _assert_mean_cov_match(samples: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> None:
    """Sample moments against fitted ones, within 5 standard errors of the estimators."""
    n = len(samples)
    samples = samples.astype(np.float64)
    var = np.diag(cov)
    assert np.all(np.abs(samples.mean(axis=0) - mean) <= 5 * np.sqrt(var / n))
    # Standard error of a Gaussian sample covariance entry: sqrt((C_ii C_jj + C_ij^2) / n).
    cov_error = np.sqrt((np.outer(var, var) + cov**2) / n)
    assert np.all(np.abs(np.cov(samples, rowvar=False) - cov) <= 5 * cov_error)


# ----------------------------------------------------------------------------- statistics


def mean_and_covariance(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fitted = moments(z)
    return fitted.mean, fitted.cov


@pytest.mark.parametrize("name", ["gaussian", "diagonal-gaussian", "robust-gaussian"])
def test_gaussian_family_samples_have_the_fitted_moments(name, gaussian_z):
    sampler = make_sampler(name, **FAST_OPTIONS.get(name, {})).fit(gaussian_z)
    samples = sampler.sample(N_SAMPLES, seed=3)
    cov = np.diag(sampler.std_**2) if name == "diagonal-gaussian" else sampler.cov_
    _assert_mean_cov_match(samples, sampler.mean_, cov)


def test_gaussian_fit_recovers_the_true_distribution():
    """The fit against the TRUE mean and covariance of the generating law, within 5 standard errors of
    each estimated entry; the same tolerance rejects a fit whose covariance is off by 10 %."""
    n = 20000
    z, true_mean, true_cov = _known_gaussian(n, seed=5)
    sampler = make_sampler("gaussian").fit(z)
    var = np.diag(true_cov)
    mean_error = 5 * np.sqrt(var / n)
    cov_error = 5 * np.sqrt((np.outer(var, var) + true_cov**2) / n)
    assert np.all(np.abs(sampler.mean_ - true_mean) <= mean_error)
    assert np.all(np.abs(sampler.cov_ - true_cov) <= cov_error)
    # The tolerance is tight enough to fail on a wrong fit: a biased scale or a dropped correlation.
    assert not np.all(np.abs(1.1 * sampler.cov_ - true_cov) <= cov_error)
    assert not np.all(np.abs(np.diag(np.diag(sampler.cov_)) - true_cov) <= cov_error)
    assert not np.all(np.abs(sampler.mean_ + 0.1 * np.sqrt(var) - true_mean) <= mean_error)
    # Its samples follow the same true law.
    samples = sampler.sample(n, seed=1).astype(np.float64)
    assert np.all(np.abs(samples.mean(axis=0) - true_mean) <= 2 * mean_error)
    assert np.all(np.abs(np.cov(samples, rowvar=False) - true_cov) <= 2 * cov_error)


@pytest.mark.parametrize("dim", [8, 16])
def test_uniform_box_radii_follow_the_seed_formulas(dim):
    b = 1.5
    samples = make_sampler("uniform-box", b=b).fit(np.ones((2, dim))).sample(N_SAMPLES, seed=1)
    assert samples.min() >= -b and samples.max() <= b
    radii = np.linalg.norm(samples.astype(np.float64), axis=1)
    # E[R] ~ b sqrt(N/3) up to O(1/N); spread of R -> b / sqrt(15) (standard error of a std ~ 1/sqrt(2n)).
    assert radii.mean() == pytest.approx(b * math.sqrt(dim / 3), rel=0.02)
    assert radii.std() == pytest.approx(b / math.sqrt(15), rel=0.12)


def test_uniform_box_matched_b_fits_the_mean_radius(gaussian_z):
    sampler = make_sampler("uniform-box", b="matched").fit(gaussian_z)
    mean_radius = np.linalg.norm(gaussian_z.astype(np.float64), axis=1).mean()
    assert sampler.b_ == pytest.approx(mean_radius / math.sqrt(DIM / 3), rel=1e-9)
    radii = np.linalg.norm(sampler.sample(N_SAMPLES, seed=0).astype(np.float64), axis=1)
    assert radii.mean() == pytest.approx(mean_radius, rel=0.03)


def test_component_box_uses_percentile_intervals(gaussian_z):
    sampler = make_sampler("component-box", percentiles=(5, 95)).fit(gaussian_z)
    lower, upper = np.percentile(gaussian_z.astype(np.float64), [5, 95], axis=0)
    # From BulkStatistics' fine histograms, interpolated between order statistics: at n = 3000 within
    # 0.05 std of np.percentile, less than half the 5th percentile's own standard error (~0.12 std).
    std = gaussian_z.astype(np.float64).std(axis=0)
    assert np.all(np.abs(sampler.lower_ - lower) <= 0.05 * std)
    assert np.all(np.abs(sampler.upper_ - upper) <= 0.05 * std)
    lower, upper = sampler.lower_, sampler.upper_
    samples = sampler.sample(N_SAMPLES, seed=2).astype(np.float64)
    assert np.all(samples >= lower - 1e-5) and np.all(samples <= upper + 1e-5)
    width = upper - lower
    # Uniform on [l, u]: mean (l+u)/2, variance width^2/12; tolerances 5 standard errors.
    assert np.all(np.abs(samples.mean(axis=0) - (lower + upper) / 2) <= 5 * width / math.sqrt(12 * N_SAMPLES))
    np.testing.assert_allclose(samples.var(axis=0), width**2 / 12, rtol=0.12)
    assert np.abs(np.corrcoef(samples, rowvar=False) - np.eye(DIM)).max() < 0.12  # independent components


def test_component_box_k_sigma_intervals(gaussian_z):
    sampler = make_sampler("component-box", k_sigma=2.0).fit(gaussian_z)
    data = gaussian_z.astype(np.float64)
    np.testing.assert_allclose(sampler.lower_, data.mean(0) - 2 * data.std(0, ddof=1), atol=1e-9)
    np.testing.assert_allclose(sampler.upper_, data.mean(0) + 2 * data.std(0, ddof=1), atol=1e-9)


@pytest.mark.parametrize("confidence", [0.5, 0.9])
def test_ellipsoid_samples_stay_inside_their_ellipsoid(confidence, gaussian_z):
    sampler = make_sampler("ellipsoid", confidence=confidence).fit(gaussian_z)
    bound = stats.chi2.ppf(confidence, DIM)
    assert sampler.radius_**2 == pytest.approx(bound)
    samples = sampler.sample(N_SAMPLES, seed=4).astype(np.float64)
    mean, cov = mean_and_covariance(gaussian_z)
    centred = samples - mean
    mahalanobis_sq = np.einsum("ij,ij->i", centred @ np.linalg.inv(cov), centred)
    assert mahalanobis_sq.max() <= bound * (1 + 1e-4)
    # Truncated Gaussian inside the ball: half the squared radii fall below chi2.ppf(c/2, N).
    below = np.mean(mahalanobis_sq <= stats.chi2.ppf(confidence / 2, DIM))
    assert below == pytest.approx(0.5, abs=5 * math.sqrt(0.25 / N_SAMPLES))


def test_ellipsoid_with_confidence_near_one_reproduces_the_covariance(gaussian_z):
    sampler = make_sampler("ellipsoid", confidence=0.99999).fit(gaussian_z)
    mean, cov = mean_and_covariance(gaussian_z)
    _assert_mean_cov_match(sampler.sample(N_SAMPLES, seed=5), mean, cov)


def test_gmm_beats_a_single_gaussian_on_two_clusters():
    rng = np.random.default_rng(7)
    centres = np.zeros((2, DIM))
    centres[0, 0], centres[1, 0] = -4.0, 4.0
    labels = rng.integers(0, 2, 1200)
    z = (centres[labels] + rng.standard_normal((1200, DIM)) * 0.7).astype(np.float32)
    train, held_out = z[:800], z[800:]
    gmm = make_sampler("gmm", components=2).fit(train)
    gaussian = make_sampler("gaussian").fit(train)
    assert gmm.score(held_out) > gaussian.score(held_out) + 0.5
    assert np.sort(gmm.means_[:, 0]) == pytest.approx([-4.0, 4.0], abs=0.2)
    samples = gmm.sample(N_SAMPLES, seed=0)
    # The mixture's samples reproduce both clusters with their weights (binomial 5-sigma tolerance).
    assert np.mean(samples[:, 0] > 0) == pytest.approx(np.mean(train[:, 0] > 0), abs=5 * math.sqrt(0.25 / 800))
    assert np.mean(np.abs(samples[:, 0]) < 1.5) < 0.02  # nothing in the empty gap between the clusters


def test_robust_gaussian_resists_planted_outliers():
    rng = np.random.default_rng(11)
    core = rng.standard_normal((900, DIM))
    outliers = rng.standard_normal((100, DIM)) * 0.5 + 8.0
    z = np.vstack([core, outliers]).astype(np.float32)
    plain = make_sampler("gaussian").fit(z)
    robust = make_sampler("robust-gaussian").fit(z)
    assert np.linalg.norm(robust.mean_) < 0.3 < np.linalg.norm(plain.mean_)
    # The core is N(0, I): the robust covariance's trace stays near DIM, the plain one explodes.
    assert np.trace(robust.cov_) == pytest.approx(DIM, rel=0.25)
    assert np.trace(plain.cov_) > 3 * DIM
    assert robust.support_[900:].sum() == 0  # no planted outlier in the MCD core
    assert robust.support_fraction_ == pytest.approx(0.9 * 0.975, abs=0.03)  # the core minus its 97.5 % tail


def test_resample_jitters_real_points_with_the_bulk_shape(gaussian_z):
    sampler = make_sampler("resample", jitter=0.1).fit(gaussian_z)
    cov = np.cov(gaussian_z.astype(np.float64), rowvar=False)
    np.testing.assert_allclose(sampler.scale_ @ sampler.scale_.T, 0.01 * cov, rtol=1e-6, atol=1e-12)
    samples = sampler.sample(N_SAMPLES, seed=6).astype(np.float64)
    rows = np.random.default_rng(6).integers(0, len(gaussian_z), N_SAMPLES)  # same draws as the sampler
    offsets = samples - gaussian_z[rows]
    assert np.abs(offsets.mean(axis=0)).max() < 5 * 0.1 * np.sqrt(np.diag(cov)).max() / math.sqrt(N_SAMPLES)
    # The jitter's covariance is 0.01 C: whitened by C it has unit variance in every direction.
    whitened = offsets @ np.linalg.inv(np.linalg.cholesky(0.01 * cov)).T
    np.testing.assert_allclose(np.cov(whitened, rowvar=False), np.eye(DIM), atol=0.12)


def test_resample_scott_bandwidth(gaussian_z):
    sampler = make_sampler("resample", jitter="scott").fit(gaussian_z)
    factor = len(gaussian_z) ** (-1 / (DIM + 4))
    cov = np.cov(gaussian_z.astype(np.float64), rowvar=False)
    np.testing.assert_allclose(sampler.scale_ @ sampler.scale_.T, factor**2 * cov, rtol=1e-6, atol=1e-12)


# ----------------------------------------------------------------------------- persistence and determinism


def _as_json(params: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}  # JSON has no tuples


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_save_load_round_trip_samples_identically(name, memmapped_z, tmp_path):
    sampler = make_sampler(name, **FAST_OPTIONS.get(name, {})).fit(memmapped_z)  # fit straight from a memmap
    folder = sampler.save(tmp_path / "sampler")
    assert not list(tmp_path.glob(".*"))  # no temporary leftovers
    assert not list(folder.glob("*.pkl"))
    reloaded = load_sampler(folder)
    assert type(reloaded) is type(sampler)
    assert _as_json(reloaded.get_params()) == _as_json(sampler.get_params())
    np.testing.assert_array_equal(reloaded.sample(300, seed=9), sampler.sample(300, seed=9))


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_sampling_is_deterministic_by_seed(name, gaussian_z):
    sampler = make_sampler(name, **FAST_OPTIONS.get(name, {})).fit(gaussian_z)
    first = sampler.sample(500, seed=1)
    assert first.dtype == np.float32 and first.shape == (500, DIM)
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, sampler.sample(500, seed=1))
    assert not np.array_equal(first, sampler.sample(500, seed=2))
    refitted = make_sampler(name, **FAST_OPTIONS.get(name, {})).fit(gaussian_z)
    np.testing.assert_array_equal(first, refitted.sample(500, seed=1))


def test_save_replaces_an_existing_folder(tmp_path, gaussian_z):
    folder = tmp_path / "s"
    make_sampler("gaussian").fit(gaussian_z).save(folder)
    make_sampler("uniform-box", b=2.0).fit(gaussian_z).save(folder)
    assert load_sampler(folder).name == "uniform-box"
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == ["sampler.json"]


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("no-such-sampler", {}, "unknown sampler"),
        ("uniform-box", {"b": 0}, "b must be a finite number > 0"),
        ("uniform-box", {"b": -1.5}, "b must be a finite number > 0"),
        ("uniform-box", {"b": "big"}, "b must be a number > 0 or 'matched'"),
        ("component-box", {"k_sigma": 0}, "k_sigma must be a finite number > 0"),
        ("component-box", {"percentiles": (99, 1)}, "percentiles must satisfy 0 <= low < high <= 100"),
        ("ellipsoid", {"confidence": 0.0}, "confidence must be in (0, 1)"),
        ("ellipsoid", {"confidence": 1.0}, "confidence must be in (0, 1)"),
        ("gmm", {"components": 0}, "components must be an integer >= 1"),
        ("gmm", {"random_state": -1}, "random_state must be an integer >= 0"),
        ("robust-gaussian", {"support_fraction": 1.5}, "support_fraction must be in (0, 1]"),
        ("robust-gaussian", {"max_points": 0}, "max_points must be an integer >= 1"),
        ("resample", {"jitter": -0.1}, "jitter must be >= 0"),
        ("regions", {"max_regions": 0}, "max_regions must be an integer >= 1"),
        ("regions", {"pca_dims": 1.5}, "pca_dims must be an integer >= 1"),
        ("regions", {"max_samples": 5}, "max_samples must be an integer >= 10"),
        ("regions", {"reg_covar": 0.0}, "reg_covar must be a finite number > 0"),
        ("gaussian", {"b": 1.0}, "has no option b"),
    ],
)
def test_bad_sampler_options_raise(name, options, message):
    with pytest.raises(LatentAtlasError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_sampler(name, **options)


@pytest.mark.parametrize(
    ("z", "message"),
    [
        (np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0]]), "NaN"),
        (np.array([[0.0, 1.0]]), "at least 2"),
        (np.zeros(5), "2-D"),
    ],
)
def test_fitting_on_bad_z_points_raises(z, message):
    with pytest.raises(LatentAtlasError, match=message):
        make_sampler("gaussian").fit(z)


def test_gmm_needs_as_many_points_as_components():
    with pytest.raises(LatentAtlasError, match="at least 10"):
        make_sampler("gmm", components=10).fit(np.random.default_rng(0).normal(size=(5, 3)))


@pytest.mark.parametrize("n", [0, -3, 2.5])
def test_bad_sample_counts_raise(n, gaussian_z):
    sampler = make_sampler("gaussian").fit(gaussian_z)
    with pytest.raises(LatentAtlasError, match="number of samples n must be an integer >= 1"):
        sampler.sample(n)


def test_sampling_or_saving_before_fit_raises(tmp_path):
    with pytest.raises(LatentAtlasError, match="not fitted"):
        make_sampler("gaussian").sample(10)
    with pytest.raises(LatentAtlasError, match="not fitted"):
        make_sampler("gaussian").save(tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_load_sampler_rejects_foreign_folders(tmp_path):
    with pytest.raises(LatentAtlasError, match="not a saved sampler"):
        load_sampler(tmp_path)
    (tmp_path / "sampler.json").write_text('{"format": "other"}')
    with pytest.raises(LatentAtlasError, match="not a latentatlas sampler"):
        load_sampler(tmp_path)


def test_fit_accepts_integer_lists():
    sampler = make_sampler("gaussian").fit([[1, 2], [3, 5], [0, 1]])
    np.testing.assert_allclose(sampler.mean_, [4 / 3, 8 / 3])


def test_samplers_take_keyword_only_parameters():
    with pytest.raises(TypeError):
        SAMPLERS["gmm"](3)  # type: ignore[misc]
    assert sampler_options("gmm") == ["components", "random_state", "max_points", "reg_covar", "temperature"]
    assert all(issubclass(cls, Sampler) for cls in SAMPLERS.values())


def _documented_attributes(cls: type) -> set[str]:
    """The names in the numpydoc "Attributes" section of a class docstring (lines "a_, b_ : type")."""
    _, _, section = (inspect.getdoc(cls) or "").partition("Attributes\n----------\n")
    names: set[str] = set()
    for line in section.splitlines():
        if line and not line.startswith(" "):
            names.update(part.strip() for part in line.split(":")[0].split(","))
    return names


def test_every_sampler_documents_its_construction_and_what_it_saves():
    import latentatlas.samplers

    table = dict(re.findall(r"^\| ([a-z-]+) \| (.+) \|$", latentatlas.samplers.__doc__ or "", flags=re.M))
    for name, cls in SAMPLERS.items():
        assert len(table.get(name, "")) > 20, f"{name}: no row in the construction table of latentatlas.samplers"
        saved = {*cls._learned_arrays, *cls._learned_scalars}
        undocumented = saved - _documented_attributes(cls)
        assert saved and not undocumented, f"{name}: learned attributes {sorted(undocumented)} not in its docstring"


def test_the_documentation_check_notices_a_missing_attribute():
    class Undocumented(SAMPLERS["gaussian"]):
        """A Gaussian whose docstring forgets an attribute.

        Attributes
        ----------
        mean_ : ndarray (N,)
        """

    assert _documented_attributes(Undocumented) == {"mean_"}
    assert {*Undocumented._learned_arrays} - _documented_attributes(Undocumented) == {"cov_"}


# ----------------------------------------------------------------------------- CLI: latentatlas sample


def _written(run_path) -> list[str]:
    return sorted(str(p.relative_to(run_path)) for p in run_path.rglob("*") if "samples" in p.parts)


@pytest.mark.parametrize(
    ("flags", "folder"),
    [
        (["--sampler", "gaussian"], "gaussian-seed0"),
        (["--sampler", "uniform-box", "--b", "matched"], "uniform-box-bmatched-seed0"),
        (["--sampler", "component-box", "--percentiles", "5,95"], "component-box-percentiles5,95-seed0"),
        (["--sampler", "ellipsoid", "--confidence", "0.8"], "ellipsoid-confidence0.8-seed0"),
        (["--sampler", "gmm", "--components", "2"], "gmm-components2-seed0"),
        (["--sampler", "resample", "--jitter", "scott"], "resample-jitterscott-seed0"),
        (["--sampler", "planar-ellipses", "--confidence", "0.8"], "planar-ellipses-confidence0.8-seed0"),
        (
            ["--sampler", "gmm-bic", "--candidates", "1,2", "--criterion", "heldout"],
            "gmm-bic-candidates1,2-criterionheldout-seed0",
        ),
        (["--sampler", "flow", "--epochs", "2"], "flow-epochs2-seed0"),
        (["--sampler", "regions", "--max-regions", "3"], "regions-max-regions3-seed0"),
        (["--sampler", "two-stage", "--epochs", "2"], "two-stage-epochs2-seed0"),
    ],
)
def test_cli_sample_writes_grid_vectors_sampler_and_info(flags, folder, tiny_run_copy, capsys):
    from PIL import Image

    from latentatlas.cli import main
    from latentatlas.io import read_json

    run = tiny_run_copy
    assert main(["sample", str(run.path), *flags, "-n", "12", "--seed", "0"]) == 0
    out = run.path / "samples" / folder
    assert str(out) in capsys.readouterr().out
    vectors = np.load(out / "z.npy")
    assert vectors.shape == (12, run.latent_dim) and vectors.dtype == np.float32
    # The saved sampler regenerates exactly the written vectors.
    np.testing.assert_array_equal(load_sampler(out / "sampler").sample(12, seed=0), vectors)
    with Image.open(out / "grid.png") as grid:
        # 12 images of 32 px in 4 columns x 3 rows, 2 px gutters, enlarged 4x
        assert grid.size == ((4 * 34 + 2) * 4, (3 * 34 + 2) * 4)
    info = read_json(out / "info.json")
    assert info["n"] == 12 and info["seed"] == 0 and info["fitted_on"] == len(run.zpoints("train"))
    assert [f["file"] for f in info["figures"]] == ["grid.png"] and info["figures"][0]["caption"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_cli_sample_is_deterministic_and_grid_is_limited(tiny_run_copy, tmp_path):
    from PIL import Image

    from latentatlas.cli import main

    run = tiny_run_copy
    args = ["sample", str(run.path), "--sampler", "diagonal-gaussian", "-n", "30", "--seed", "4", "--grid", "4"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    for name in ("z.npy", "grid.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert np.load(tmp_path / "a" / "z.npy").shape == (30, run.latent_dim)
    with Image.open(tmp_path / "a" / "grid.png") as grid:
        assert grid.size == ((2 * 34 + 2) * 4,) * 2  # only 4 images shown, 2x2
    assert main([*args[:-4], "--seed", "5", "--out", str(tmp_path / "c")]) == 0
    assert not np.array_equal(np.load(tmp_path / "a" / "z.npy"), np.load(tmp_path / "c" / "z.npy"))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--sampler", "uniform-box", "--b", "0"], "b must be a finite number > 0"),
        (["--sampler", "uniform-box", "--b", "-1"], "b must be a finite number > 0"),
        (["--sampler", "gaussian", "-n", "0"], "number of samples n must be an integer >= 1"),
        (["--sampler", "gmm", "--components", "0"], "components must be an integer >= 1"),
        (["--sampler", "component-box", "--k-sigma", "0"], "k_sigma must be a finite number > 0"),
        (["--sampler", "component-box", "--percentiles", "1,50,99"], "two numbers"),
        (["--sampler", "ellipsoid", "--confidence", "1.5"], "confidence must be in"),
        (["--sampler", "gaussian", "--b", "1.5"], "--b does not apply to sampler gaussian"),
        (["--sampler", "gaussian", "--epochs", "3"], "--epochs does not apply to sampler gaussian"),
        (["--sampler", "flow", "--epochs", "0"], "epochs must be an integer >= 1"),
        (["--sampler", "gmm-bic", "--candidates", "0,2"], "every candidate number of components"),
        (["--sampler", "regions", "--pca-dims", "0"], "pca_dims must be an integer >= 1"),
        (["--sampler", "gaussian", "--max-regions", "3"], "--max-regions does not apply to sampler gaussian"),
        (["--sampler", "no-such"], "invalid choice"),
        (["--sampler", "gaussian", "--grid", "0"], "grid size must be an integer >= 1"),
        (["--sampler", "gaussian", "--seed", "-1"], "seed must be an integer >= 0"),
    ],
)
def test_cli_sample_errors_exit_2_and_write_nothing(flags, message, tiny_run_copy, capsys):
    status = exit_status(["sample", str(tiny_run_copy.path), *flags])
    err = capsys.readouterr().err
    assert status == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert _written(tiny_run_copy.path) == []


def test_cli_sample_needs_z_points(tiny_run_copy, capsys):
    (tiny_run_copy.zpoints_file("zpoints.npy")).unlink()
    assert exit_status(["sample", str(tiny_run_copy.path), "--sampler", "gaussian"]) == 2
    err = capsys.readouterr().err
    assert "no z-points" in err and err.count("\n") == 1
    assert _written(tiny_run_copy.path) == []


# ----------------------------------------------------------------------------- conditional sampling: --where


def test_cli_sample_where_fits_only_the_rows_that_satisfy_the_condition(tiny_run_copy):
    from latentatlas.cli import main
    from latentatlas.io import read_json

    run = tiny_run_copy
    args = ["sample", str(run.path), "--sampler", "gaussian", "-n", "6", "--where", "skin_tone>0.5,eye_size<=0.11"]
    assert main(args) == 0
    out = run.path / "samples" / "gaussian-where-skin_tone-gt0.5,eye_size-le0.11-seed0"
    meta = run.metadata()
    train = meta[meta["subset"] == "train"]
    chosen = (train["skin_tone"].to_numpy() > 0.5) & (train["eye_size"].to_numpy() <= 0.11)
    info = read_json(out / "info.json")
    assert info["where"] == "skin_tone>0.5,eye_size<=0.11" and info["fitted_on"] == chosen.sum() < len(train)
    # the saved sampler is the Gaussian of exactly those z-points
    z = run.zpoints("train")[chosen].astype(np.float64)
    fitted = load_sampler(out / "sampler")
    np.testing.assert_allclose(fitted.mean_, z.mean(axis=0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fitted.cov_, np.cov(z, rowvar=False), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("skin_tnoe>0.5", "unknown attribute 'skin_tnoe'; did you mean 'skin_tone'"),
        ("skin_tone>2", "selects 0 of"),
        ("skin_tone", "is not a condition like Male=1"),
        ("skin_tone=abc", "is not a condition like Male=1"),
    ],
)
def test_cli_sample_where_errors(where, message, tiny_run_copy, capsys):
    status = exit_status(["sample", str(tiny_run_copy.path), "--sampler", "gaussian", "--where", where])
    err = capsys.readouterr().err
    assert status == 2 and message in err and err.count("\n") == 1
    assert _written(tiny_run_copy.path) == []


@pytest.mark.parametrize(("sampler", "needed"), [("gaussian", 18), ("gmm", 18), ("flow", 19), ("resample", 10)])
def test_cli_sample_where_selecting_too_few_rows_for_the_sampler(sampler, needed, tiny_run_copy, capsys):
    """12 training rows: fewer than a full covariance (N + 2 = 18 in 16 dimensions) or a flow (17 after its
    validation split) needs, and than the 10 any conditioned fit gets; the message names the need."""
    meta = tiny_run_copy.metadata()
    skin = np.sort(meta.loc[meta["subset"] == "train", "skin_tone"].to_numpy(np.float64))
    where = f"skin_tone>={float(skin[-12])!r}" if needed > 12 else f"skin_tone>={float(skin[-8])!r}"
    status = exit_status(["sample", str(tiny_run_copy.path), "--sampler", sampler, "--where", where])
    err = capsys.readouterr().err
    selected = 12 if needed > 12 else 8
    assert status == 2 and err.count("\n") == 1
    assert f"selects {selected} of 300 train z-points; {sampler} needs at least {needed}" in err
    assert _written(tiny_run_copy.path) == []


def test_cli_sample_where_on_a_source_without_attributes(tiny_run_copy, capsys):
    run = tiny_run_copy
    run.metadata()[["index", "image_id", "path", "subset", "partition"]].to_parquet(
        run.zpoints_file("zpoints.parquet"), index=False
    )
    assert exit_status(["sample", str(run.path), "--sampler", "gaussian", "--where", "Male=1"]) == 2
    err = capsys.readouterr().err
    assert "--where: this run's source has no attributes or factors" in err and err.count("\n") == 1
    assert _written(run.path) == []


def test_where_rows_on_celeba_style_attributes():
    import pandas as pd

    from latentatlas.analysis.conditions import parse_where, where_rows

    meta = pd.DataFrame(
        {
            "image_id": ["a", "b", "c", "d"],
            "subset": ["train"] * 4,
            "Male": np.array([1, 1, -1, 1], np.int8),
            "Eyeglasses": np.array([1, -1, 1, 1], np.int8),
        }
    )
    np.testing.assert_array_equal(where_rows(meta, parse_where("Male=1, Eyeglasses=1")), [True, False, False, True])
    np.testing.assert_array_equal(where_rows(meta, parse_where("Male<0")), [False, False, True, False])
    with pytest.raises(LatentAtlasError, match="did you mean 'Male'"):
        where_rows(meta, parse_where("male=1"))
    with pytest.raises(LatentAtlasError, match="has no attributes or factors"):
        where_rows(meta[["image_id", "subset"]], parse_where("Male=1"))


def test_cli_sample_save_images_device_and_weights(tiny_run_copy):
    from PIL import Image

    from latentatlas.store import Run

    run = tiny_run_copy
    args = ["sample", str(run.path), "--sampler", "gaussian", "-n", "5", "--grid", "2", "--save-images"]
    assert exit_status([*args, "--device", "cpu", "--weights", "last"]) == 0
    folder = run.path / "samples" / "gaussian-seed0"
    files = sorted(p.name for p in (folder / "images").iterdir())
    assert files == [f"{i:06d}.png" for i in range(5)]
    vectors = np.load(folder / "z.npy")
    expected = Run(run.path, device="cpu", weights="last").decode(vectors)
    np.testing.assert_array_equal(np.asarray(Image.open(folder / "images" / "000004.png")), expected[4])
    assert exit_status([*args, "--device", "tpu"]) == 2
    assert exit_status([*args, "--weights", "middle"]) == 2


# ----------------------------------------------------------------------------- progress of the samplers that train


def test_cli_sample_flow_reports_every_epoch(tiny_run_copy, capsys):
    from latentatlas.cli import main

    run = tiny_run_copy
    assert main(["sample", str(run.path), "--sampler", "flow", "--epochs", "2", "-n", "4"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("latentatlas: flow epoch")]
    history = np.load(run.path / "samples" / "flow-epochs2-seed0" / "sampler" / "history.npy")
    assert len(lines) == len(history) == 2  # stderr is no terminal here: one line per epoch
    for epoch, (line, (train_loss, val_loss)) in enumerate(zip(lines, history), start=1):
        assert line.startswith(
            f"latentatlas: flow epoch {epoch}/2: train {train_loss:.4f}, val {val_loss:.4f} nats/dim"
        )


def _reports(epochs: int, stop: int):
    from latentatlas.samplers import EpochReport

    return [EpochReport("flow", e, epochs, 1.0 / e, 1.5 / e, e, 2.5, e == stop) for e in range(1, stop + 1)]


def test_epoch_progress_lines_off_a_terminal(capsys):
    from latentatlas.progress import epoch_progress

    report = epoch_progress()
    for epoch in _reports(epochs=10, stop=3):
        report(epoch)
    assert capsys.readouterr().err.splitlines() == [
        "latentatlas: flow epoch 1/10: train 1.0000, val 1.5000 nats/dim, best epoch 1, 2.5 s",
        "latentatlas: flow epoch 2/10: train 0.5000, val 0.7500 nats/dim, best epoch 2, 2.5 s",
        "latentatlas: flow epoch 3/10: train 0.3333, val 0.5000 nats/dim, best epoch 3, 2.5 s (early stop)",
    ]


def test_epoch_progress_bar_on_a_terminal(monkeypatch):
    import io
    import sys

    from latentatlas.progress import epoch_progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    report = epoch_progress()
    for epoch in _reports(epochs=4, stop=4):
        report(epoch)
    shown = terminal.getvalue()
    assert "fit flow" in shown and "4/4" in shown and "best epoch 4" in shown
    assert "1/4 [00:02<00:07" in shown  # the first epoch's 2.5 s count: about 7.5 s left
    assert "latentatlas: flow epoch" not in shown  # the bar, not the lines
