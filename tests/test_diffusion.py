"""The latent diffusion sampler: moments, temperature, save/load, progress, likelihood, copying, bad input."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from latentatlas.cli import build_parser
from latentatlas.cli.common import sampler_options_given
from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.copies import Authenticity, copy_scores
from latentatlas.evaluation.instruments import Reference, Row
from latentatlas.evaluation.instruments.latent_ct import LatentCt
from latentatlas.evaluation.knn import nearest_distances
from latentatlas.samplers import EpochReport, load_sampler, make_sampler
from latentatlas.samplers.diffusion import Diffusion

# A small network that still learns an 8-D mixture in a few seconds on 2 shared cores.
SMALL = {"width": 64, "blocks": 2, "epochs": 25, "steps": 12, "lr": 5e-3, "ema": 0.95}
CENTRES = np.array([[-2.0, 0, 0, 0, 1, 0, 0, 0], [2.0, 0, 0, 0, -1, 0, 0, 0], [0, 2.5, 0, 0, 0, 0, 1, 0]])


def _mixture(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scales = np.linspace(0.4, 1.0, 8)
    return (CENTRES[rng.integers(0, 3, n)] + rng.standard_normal((n, 8)) * scales).astype(np.float32)


@pytest.fixture(scope="module")
def fitted() -> tuple[Diffusion, np.ndarray, list[EpochReport]]:
    z = _mixture(2000, seed=0)
    reports: list[EpochReport] = []
    sampler = make_sampler("diffusion", **SMALL).fit(z, progress=reports.append)
    assert isinstance(sampler, Diffusion)
    return sampler, z, reports


def test_samples_have_the_data_moments(fitted):
    sampler, z, _ = fitted
    samples = sampler.sample(2000, seed=1).astype(np.float64)
    data = z.astype(np.float64)
    std = data.std(axis=0)
    assert np.all(np.abs(samples.mean(axis=0) - data.mean(axis=0)) <= 0.15 * std)
    data_cov, sample_cov = np.cov(data, rowvar=False), np.cov(samples, rowvar=False)
    assert np.abs(sample_cov - data_cov).max() <= 0.15 * np.abs(data_cov).max()
    # the mixture is not one Gaussian: the samples keep its modes (most lie near a centre, as the data do)
    near = (np.linalg.norm(samples[:, None] - CENTRES[None], axis=2).min(axis=1) < 2.5).mean()
    assert near > 0.8 * (np.linalg.norm(data[:, None] - CENTRES[None], axis=2).min(axis=1) < 2.5).mean()


@pytest.mark.parametrize("temperature", [0.5, 0.8])
def test_a_temperature_below_one_shrinks_the_spread(fitted, temperature):
    sampler, _, _ = fitted
    cooled = copy.copy(sampler)
    cooled.temperature = temperature
    spread = np.trace(np.cov(sampler.sample(1000, seed=2).astype(np.float64), rowvar=False))
    cooled_spread = np.trace(np.cov(cooled.sample(1000, seed=2).astype(np.float64), rowvar=False))
    # a Gaussian would scale its variance by T²; a mixture's modes keep part of it (their distance)
    assert temperature**2 * 0.8 * spread < cooled_spread < (0.5 + 0.5 * temperature) * spread


def test_reload_draws_and_scores_identically(fitted, tmp_path):
    sampler, z, _ = fitted
    folder = sampler.save(tmp_path / "diffusion")
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [
        "components.npy", "history.npy", "mean.npy", "sampler.json", "scales.npy", "weights.safetensors",
    ]  # fmt: skip
    reloaded = load_sampler(folder)
    assert isinstance(reloaded, Diffusion) and reloaded.get_params() == sampler.get_params()
    np.testing.assert_array_equal(reloaded.sample(200, seed=5), sampler.sample(200, seed=5))
    np.testing.assert_array_equal(reloaded.score_samples(z[:50]), sampler.score_samples(z[:50]))


def test_progress_gets_one_report_per_epoch(fitted):
    sampler, _, reports = fitted
    assert [r.epoch for r in reports] == list(range(1, len(sampler.history_) + 1))
    assert all(r.sampler == "diffusion" and r.epochs == SMALL["epochs"] for r in reports)
    assert [r.done for r in reports] == [False] * (len(reports) - 1) + [True]
    assert reports[-1].best_epoch == sampler.best_epoch_ + 1
    np.testing.assert_allclose([r.val_loss for r in reports], sampler.history_[:, 1])
    # the kept epoch has the lowest held-out loss, and the loss fell from the first epoch
    assert sampler.history_[sampler.best_epoch_, 1] == sampler.history_[:, 1].min() < sampler.history_[0, 1]


def test_the_ode_log_likelihood_is_near_the_true_one(fitted):
    sampler, _, _ = fitted
    held = _mixture(400, seed=9).astype(np.float64)
    scales = np.linspace(0.4, 1.0, 8)
    squared = (((held[:, None] - CENTRES[None]) / scales) ** 2).sum(axis=2)
    true = np.log(np.exp(-0.5 * squared).mean(axis=1)) - np.log(scales).sum() - 4 * np.log(2 * np.pi)
    model = sampler.score_samples(held)
    np.testing.assert_array_equal(model, sampler.score_samples(held))  # seeded probes: deterministic
    gaussian = make_sampler("gaussian").fit(_mixture(2000, seed=0)).score(held)
    # per point and dimension: within 0.1 nats of the truth, and better than one Gaussian
    assert abs(model.mean() - true.mean()) / 8 < 0.1
    assert model.mean() > gaussian
    assert sampler.validation_log_likelihood_ == pytest.approx(true.mean() / 8, abs=0.15)


def test_an_overfit_model_copies_its_training_points_and_the_copy_tests_see_it():
    """16 points in 4-D, trained well past the point where the held-out loss turns (keep the last epoch):
    its samples sit on the training points, far nearer than fresh draws of the same law do."""
    rng = np.random.default_rng(0)
    train, held = rng.standard_normal((16, 4)), rng.standard_normal((300, 4))
    options = {"width": 128, "blocks": 2, "epochs": 60, "keep": "last", "batch_size": 128, "lr": 1e-2, "ema": 0.9}
    # the 16 points repeated: each step sees many (time, noise) draws of every point, so it memorises sooner
    sampler = make_sampler("diffusion", steps=20, **options).fit(np.tile(train, (32, 1)))
    samples = sampler.sample(300, seed=0)
    scores = copy_scores(nearest_distances(samples, train), nearest_distances(held, train), threshold=0.3)
    assert scores.ratio < 0.5
    reference = Reference(
        z=held, rows=np.arange(300), train_z=train, train_rows=np.arange(16), validation_z=held,
        k=5, chunk_size=256, device="cpu", seed=0,
    )  # fmt: skip
    instrument = LatentCt()
    instrument.prepare(reference)
    assert instrument.score(Row("diffusion", "sampler", "sample", samples))["latent_ct"].value < -3
    # the authenticity share: far below the level fresh draws of the same law reach
    authenticity = Authenticity(seed=0).fit(train)
    overfit, fresh = authenticity.score(samples), authenticity.score(held)
    assert overfit.high < fresh.low and overfit.value < 0.5 * fresh.value


def test_its_options_are_flags_shared_with_the_other_samplers():
    args = build_parser().parse_args(
        ["sample", "RUN", "--sampler", "diffusion", "--steps", "8", "--temperature", "0.8", "--epochs", "3"]
    )
    assert sampler_options_given(args, ["diffusion"]) == {"diffusion": {"steps": 8, "temperature": 0.8, "epochs": 3}}
    assert "keep" in make_sampler("diffusion").get_params()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"temperature": 0.0}, "temperature must be a finite number > 0"),
        ({"temperature": -0.5}, "temperature must be a finite number > 0"),
        ({"steps": 0}, "steps must be an integer >= 1"),
        ({"width": 0}, "width must be an integer >= 1"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"weight_decay": -1.0}, "weight_decay must be a finite number >= 0"),
        ({"keep": "first"}, "keep must be one of best, last"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(LatentAtlasError, match=message):
        make_sampler("diffusion", **options)


def test_too_few_z_points_are_refused_with_the_number_needed():
    z = np.random.default_rng(0).standard_normal((18, 16))
    with pytest.raises(LatentAtlasError, match=r"diffusion needs at least 19 z-points in 16 dimensions .* got 18$"):
        make_sampler("diffusion", **SMALL).fit(z)


def test_a_nan_loss_stops_the_fit_and_keeps_nothing(monkeypatch, tmp_path):
    def nan_error(module, x, t, noise):
        return torch.full((len(x),), float("nan"))

    monkeypatch.setattr(Diffusion, "_velocity_error", staticmethod(nan_error))
    sampler = make_sampler("diffusion", **SMALL)
    with pytest.raises(LatentAtlasError, match=r"^diffusion training diverged in epoch 1 \(the loss is nan\)"):
        sampler.fit(_mixture(100, seed=0))
    assert not hasattr(sampler, "module_")
    with pytest.raises(LatentAtlasError, match="not fitted yet"):
        sampler.save(tmp_path / "s")
    assert not (tmp_path / "s").exists()
