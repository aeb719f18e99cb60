"""Part X's planar ellipses and the density ladder: gmm-bic, flow, two-stage, log_likelihood."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from latentatlas.errors import LatentAtlasError
from latentatlas.samplers import RegionSampler, load_sampler, make_sampler
from latentatlas.samplers.planar import plane_groups

DIM = 8


def _correlated_gaussian(n: int, dim: int = DIM, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(dim, dim)) * 0.6 + np.eye(dim)
    mean = np.linspace(-2.0, 3.0, dim)
    return mean + rng.standard_normal((n, dim)) @ mixing.T, mean, mixing @ mixing.T


def _plane_sq_radii(sampler, points: np.ndarray) -> np.ndarray:
    """Squared whitened radius of each point in each coordinate plane of the sampler's principal frame."""
    whitened = ((points - sampler.mean_) @ sampler.components_.T) / sampler.scales_
    return np.stack([(whitened[:, g] ** 2).sum(axis=1) for g in plane_groups(points.shape[1])], axis=1)


# ----------------------------------------------------------------------------- planar-ellipses (part X)


@pytest.mark.parametrize("dim", [8, 7])
def test_planar_ellipses_sample_each_plane_inside_its_measured_ellipse(dim):
    z, _, _ = _correlated_gaussian(4000, dim)
    sampler = make_sampler("planar-ellipses", confidence=0.9).fit(z)
    radii = _plane_sq_radii(sampler, z)
    assert len(sampler.plane_radius_) == math.ceil(dim / 2)
    # the ellipse is measured: it holds 90 % of the real points of its plane ...
    np.testing.assert_allclose(sampler.plane_radius_**2, np.quantile(radii, 0.9, axis=0), rtol=1e-9)
    # ... which for Gaussian data is chi2_k's 90 % point (k = 2, or 1 for an odd last axis)
    degrees = [len(g) for g in plane_groups(dim)]
    expected = np.array([stats.chi2.ppf(0.9, k) for k in degrees])
    np.testing.assert_allclose(sampler.plane_radius_**2, expected, rtol=0.1)
    samples = sampler.sample(3000, seed=1).astype(np.float64)
    sample_radii = _plane_sq_radii(sampler, samples)
    assert np.all(sample_radii <= sampler.plane_radius_**2 * (1 + 1e-4))
    # inside its ellipse each plane is a truncated Gaussian: P(r^2 <= q) = F(q) / F(R^2)
    for plane, (k, bound) in enumerate(zip(degrees, sampler.plane_radius_**2)):
        half = stats.chi2.ppf(stats.chi2.cdf(bound, k) / 2, k)
        assert np.mean(sample_radii[:, plane] <= half) == pytest.approx(0.5, abs=5 * math.sqrt(0.25 / 3000))
    # the planes are independent problems: the radii of two planes do not correlate
    assert abs(np.corrcoef(sample_radii[:, 0], sample_radii[:, 1])[0, 1]) < 0.08


def test_planar_ellipses_differ_from_the_joint_ellipsoid():
    """The ellipsoid truncates one N-dimensional Gaussian: its samples leave the planes' own ellipses."""
    z, _, _ = _correlated_gaussian(4000)
    planar = make_sampler("planar-ellipses", confidence=0.9).fit(z)
    ellipsoid = make_sampler("ellipsoid", confidence=0.9).fit(z)
    bounds = planar.plane_radius_**2
    outside_planar = np.mean((_plane_sq_radii(planar, planar.sample(3000, seed=2)) > bounds * 1.0001).any(axis=1))
    outside_ellipsoid = np.mean((_plane_sq_radii(planar, ellipsoid.sample(3000, seed=2)) > bounds).any(axis=1))
    assert outside_planar == 0.0
    assert outside_ellipsoid > 0.1


def test_planar_ellipses_near_full_confidence_reproduce_the_covariance():
    z, _, _ = _correlated_gaussian(4000)
    sampler = make_sampler("planar-ellipses", confidence=0.99999).fit(z)
    samples = sampler.sample(6000, seed=3).astype(np.float64)
    cov = np.cov(z, rowvar=False)
    assert np.linalg.norm(np.cov(samples, rowvar=False) - cov) / np.linalg.norm(cov) < 0.06
    assert np.abs(samples.mean(axis=0) - z.mean(axis=0)).max() < 5 * np.sqrt(np.diag(cov).max() / 6000)


# ----------------------------------------------------------------------------- densities


def test_gaussian_log_likelihood_is_the_true_negative_entropy_per_dimension():
    z, _, true_cov = _correlated_gaussian(20000)
    train, held_out = z[:15000], z[15000:]
    entropy = 0.5 * np.linalg.slogdet(2 * math.pi * math.e * true_cov)[1]
    gaussian = make_sampler("gaussian").fit(train)
    assert gaussian.log_likelihood(held_out) == pytest.approx(-entropy / DIM, abs=0.02)
    assert gaussian.score(held_out) == pytest.approx(DIM * gaussian.log_likelihood(held_out))
    # ignoring the correlations costs likelihood
    assert (
        make_sampler("diagonal-gaussian").fit(train).log_likelihood(held_out) < gaussian.log_likelihood(held_out) - 0.1
    )


@pytest.mark.parametrize("name", ["uniform-box", "component-box", "ellipsoid", "planar-ellipses", "resample"])
def test_samplers_without_a_density_refuse_log_likelihood(name):
    z, _, _ = _correlated_gaussian(300)
    with pytest.raises(LatentAtlasError, match="defines no density"):
        make_sampler(name).fit(z).log_likelihood(z)


def test_sampler_names_can_leave_out_the_neural_ones():
    from latentatlas.samplers import sampler_names

    assert {"flow", "two-stage"} <= set(sampler_names())
    assert set(sampler_names()) - set(sampler_names(neural=False)) == {"flow", "two-stage", "diffusion"}


def test_log_likelihood_checks_its_points():
    z, _, _ = _correlated_gaussian(300)
    gaussian = make_sampler("gaussian").fit(z)
    with pytest.raises(LatentAtlasError, match="have 3 components, expected 8"):
        gaussian.log_likelihood(z[:, :3])
    with pytest.raises(LatentAtlasError, match="not fitted"):
        make_sampler("gaussian").log_likelihood(z)


def _three_clusters(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.zeros((3, DIM))
    centres[0, 0], centres[1, 0], centres[2, 1] = -5.0, 5.0, 6.0
    return centres[rng.integers(0, 3, n)] + rng.standard_normal((n, DIM)) * 0.7


@pytest.mark.parametrize("criterion", ["bic", "heldout"])
def test_gmm_bic_finds_the_number_of_clusters_and_keeps_the_sweep(criterion):
    z = _three_clusters(1500, seed=4)
    sampler = make_sampler("gmm-bic", candidates=(1, 2, 3, 5), criterion=criterion).fit(z)
    assert sampler.n_components_ == 3 and len(sampler.weights_) == 3
    np.testing.assert_array_equal(sampler.sweep_components_, [1, 2, 3, 5])
    assert int(np.argmin(sampler.sweep_bic_)) == 2
    # held-out likelihood climbs (by more than 0.04 nats per dimension each) up to 3 components, then stalls
    heldout = sampler.sweep_log_likelihood_
    assert heldout[0] + 0.04 < heldout[1] and heldout[1] + 0.04 < heldout[2]
    assert heldout[3] < heldout[2] + 0.01
    held_out = _three_clusters(500, seed=5)
    assert sampler.log_likelihood(held_out) > make_sampler("gaussian").fit(z).log_likelihood(held_out) + 0.2


def _separated_gaussians(n: int, dim: int, shares: list[float], seed: int = 0):
    """Gaussians with centres ~18 units apart and spreads ~1 per axis (as the regions analysis tests)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 0.8, (len(shares), dim))
    labels = rng.choice(len(shares), n, p=shares)
    mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim) * 0.5 + 0.5 * np.eye(dim)
    return centres[labels] + rng.standard_normal((n, dim)) @ mixing.T, centres


def test_regions_sampler_draws_each_region_with_its_share_at_its_centre():
    shares = [0.5, 0.3, 0.2]
    z, centres = _separated_gaussians(6300, 256, shares)
    z, held_out = z[:6000], z[6000:]
    sampler = RegionSampler()  # make_sampler("regions"), typed
    sampler.fit(z)
    assert sampler.n_regions_ == 3 and sampler.covariances_.shape == (3, 256, 256)
    draws = sampler.sample(20000, seed=1).astype(np.float64)
    distances = np.linalg.norm(draws[:, None, :] - centres[None], axis=2)  # (draws, centres)
    nearest = distances.argmin(axis=1)
    np.testing.assert_allclose(np.bincount(nearest, minlength=3) / len(draws), shares, atol=0.02)
    # draws lie as far from their centre as the z-points do from theirs, and none between the regions
    real = np.linalg.norm(z[:, None, :] - centres[None], axis=2).min(axis=1)
    assert np.median(distances.min(axis=1)) == pytest.approx(np.median(real), rel=0.02)
    assert distances.min(axis=1).max() < 1.1 * real.max()
    ordered = np.sort(distances, axis=1)
    assert (ordered[:, 1] > 1.3 * ordered[:, 0]).all()  # a blend of two regions would sit about equally far
    # a density for the held-out likelihood column: held-out points score like training points, and a point
    # between the regions (where one Gaussian puts its centre) far lower
    assert sampler.defines_density
    assert sampler.log_likelihood(held_out) == pytest.approx(sampler.log_likelihood(z[:300]), abs=0.2)
    assert sampler.score_samples(centres.mean(axis=0, keepdims=True))[0] < sampler.score_samples(held_out).min() - 100


def test_regions_sampler_on_one_gaussian_is_one_gaussian():
    z, centres = _separated_gaussians(5000, 256, [1.0])
    sampler = RegionSampler()
    sampler.fit(z)
    assert sampler.n_regions_ == 1 and sampler.weights_.tolist() == [1.0]
    np.testing.assert_allclose(sampler.means_[0], z.mean(axis=0), atol=1e-9)
    assert int(np.argmin(sampler.sweep_bic_)) == 0 and list(sampler.sweep_components_[:2]) == [1, 2]


def test_gmm_bic_refuses_candidates_larger_than_the_data():
    with pytest.raises(LatentAtlasError, match="no candidate fits"):
        make_sampler("gmm-bic", candidates=(38,)).fit(_three_clusters(40, seed=0))


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("gmm-bic", {"candidates": ()}, "at least one component count"),
        ("gmm-bic", {"candidates": (2, 0)}, "every candidate number of components must be an integer >= 1"),
        ("gmm-bic", {"criterion": "aic"}, "criterion must be one of bic, heldout"),
        ("flow", {"kind": "realnvp"}, "flow kind must be one of maf, nsf"),
        ("flow", {"passes": 1}, "passes must be an integer >= 2"),
        ("flow", {"validation_fraction": 0.7}, "validation_fraction must be in (0, 0.5]"),
        ("flow", {"epochs": 0}, "epochs must be an integer >= 1"),
        ("two-stage", {"latent": 0}, "latent must be an integer >= 1"),
        ("two-stage", {"lr": -1.0}, "lr must be a finite number > 0"),
        ("planar-ellipses", {"confidence": 1.0}, "confidence must be in (0, 1)"),
    ],
)
def test_bad_density_options_raise(name, options, message):
    with pytest.raises(LatentAtlasError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_sampler(name, **options)


# ----------------------------------------------------------------------------- flow and two-stage VAE


def _moons_in_16_dims(n: int) -> np.ndarray:
    """Two moons (a non-Gaussian 2-D density) rotated into 16 dimensions with thin Gaussian noise."""
    from sklearn.datasets import make_moons

    rng = np.random.default_rng(0)
    moons, _ = make_moons(n, noise=0.05, random_state=0)
    rotation, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    return np.hstack([moons, rng.normal(size=(n, 14)) * 0.05]) @ rotation.T + 1.0


@pytest.mark.slow
def test_flow_learns_two_moons_better_than_a_gaussian():
    z = _moons_in_16_dims(4000)
    train, held_out = z[:3000], z[3000:]
    flow = make_sampler("flow", hidden=32, lr=3e-3, epochs=40, patience=8).fit(train)
    gaussian = make_sampler("gaussian").fit(train)
    assert flow.log_likelihood(held_out) > gaussian.log_likelihood(held_out) + 0.02  # > 0.3 nats per point
    # early stopping kept the best validation epoch, and training ran past it by at most `patience` epochs
    assert flow.history_.shape[1] == 2 and flow.best_epoch_ < len(flow.history_) <= flow.best_epoch_ + 9
    # the kept epoch's validation loss (in the whitened frame) plus the whitening's Jacobian
    jacobian = np.log(flow.scales_).sum() / 16
    assert flow.validation_log_likelihood_ == pytest.approx(-flow.history_[flow.best_epoch_, 1] - jacobian, abs=1e-4)


def test_flow_save_load_round_trip(tmp_path):
    z = _moons_in_16_dims(600)
    flow = make_sampler("flow", hidden=16, epochs=3).fit(z)
    folder = flow.save(tmp_path / "flow")
    assert (folder / "weights.safetensors").is_file() and not list(folder.glob("*.pkl"))
    reloaded = load_sampler(folder)
    np.testing.assert_array_equal(reloaded.sample(200, seed=4), flow.sample(200, seed=4))
    assert reloaded.log_likelihood(z[:100]) == flow.log_likelihood(z[:100])
    (folder / "weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(LatentAtlasError, match="corrupt flow weights"):
        load_sampler(folder)


@pytest.mark.parametrize("passes", [None, 4, 2])
def test_flow_inverse_is_exact_with_its_passes(passes):
    z = np.random.default_rng(0).normal(size=(400, 24)) @ np.random.default_rng(1).normal(size=(24, 24))
    flow = make_sampler("flow", hidden=16, epochs=2, passes=passes).fit(z)
    assert flow._blocks() == (24 if passes is None else passes)
    noise = torch.as_tensor(np.random.default_rng(2).standard_normal((50, 24)), dtype=torch.float32)
    with torch.no_grad():
        x = flow._decode_noise(noise)
        back = flow.module_().transform(x)
    np.testing.assert_allclose(back.numpy(), noise.numpy(), atol=2e-4)  # too few passes would leave it inexact


def test_a_flow_saved_before_passes_reloads_fully_autoregressive(tmp_path):
    z = np.random.default_rng(3).normal(size=(600, 32))
    flow = make_sampler("flow", hidden=16, epochs=2, passes=None).fit(z)
    folder = flow.save(tmp_path / "flow")
    manifest = json.loads((folder / "sampler.json").read_text())
    del manifest["params"]["passes"]  # as written before the option existed: the default (16) would be wrong
    (folder / "sampler.json").write_text(json.dumps(manifest))
    reloaded = load_sampler(folder)
    assert reloaded.passes is None and reloaded._blocks() == 32
    np.testing.assert_array_equal(reloaded.sample(20, seed=4), flow.sample(20, seed=4))


def test_flow_training_is_seeded():
    z = _moons_in_16_dims(600)
    first = make_sampler("flow", hidden=16, epochs=3, random_state=1).fit(z)
    again = make_sampler("flow", hidden=16, epochs=3, random_state=1).fit(z)
    other = make_sampler("flow", hidden=16, epochs=3, random_state=2).fit(z)
    np.testing.assert_array_equal(first.history_, again.history_)
    np.testing.assert_array_equal(first.sample(50, seed=0), again.sample(50, seed=0))
    assert not np.array_equal(first.history_, other.history_)


@pytest.mark.slow
def test_two_stage_vae_matches_a_gaussian_bulk():
    z, _, _ = _correlated_gaussian(2400)
    train, held_out = z[:2000], z[2000:]
    vae = make_sampler("two-stage", hidden=32, epochs=40).fit(train)
    gaussian = make_sampler("gaussian").fit(train)
    # on Gaussian data the VAE's density (an importance-sampled bound) comes close to the exact Gaussian's
    assert vae.log_likelihood(held_out) == pytest.approx(gaussian.log_likelihood(held_out), abs=0.05)
    samples = vae.sample(4000, seed=0).astype(np.float64)
    cov = np.cov(train, rowvar=False)
    assert np.linalg.norm(np.cov(samples, rowvar=False) - cov) / np.linalg.norm(cov) < 0.15
    assert np.abs(samples.mean(axis=0) - train.mean(axis=0)).max() < 0.3


@pytest.mark.parametrize(("name", "options"), [("flow", {"hidden": 16}), ("two-stage", {"hidden": 16})])
def test_training_reports_every_epoch_without_changing_the_fit(name, options):
    z = _moons_in_16_dims(200)
    # patience 1: early stopping may end the fit before the 5 epochs; every epoch run is reported either way
    options = {**options, "epochs": 5, "patience": 1, "random_state": 3}
    reports = []
    observed = make_sampler(name, **options).fit(z, progress=reports.append)
    plain = make_sampler(name, **options).fit(z)
    assert len(reports) == len(observed.history_) >= 2
    assert [r.epoch for r in reports] == list(range(1, len(reports) + 1))
    assert {r.sampler for r in reports} == {name} and {r.epochs for r in reports} == {5}
    assert [r.done for r in reports] == [False] * (len(reports) - 1) + [True]
    np.testing.assert_allclose([(r.train_loss, r.val_loss) for r in reports], observed.history_)
    assert reports[-1].best_epoch == observed.best_epoch_ + 1 and all(r.seconds > 0 for r in reports)
    # observing changes nothing: same history, same weights, same samples
    np.testing.assert_array_equal(observed.history_, plain.history_)
    np.testing.assert_array_equal(observed.sample(50, seed=2), plain.sample(50, seed=2))


def test_samplers_without_epochs_never_report():
    z, _, _ = _correlated_gaussian(200)
    make_sampler("gmm", components=2).fit(z, progress=lambda report: pytest.fail(f"reported {report}"))
