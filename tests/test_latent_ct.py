"""The data-copying test C_T (Meehan et al. 2020) in latent space, on small synthetic z-points."""

from __future__ import annotations

import numpy as np
import pytest

from latentatlas.evaluation.instruments import INSTRUMENTS, Reference, Row, instrument_set
from latentatlas.evaluation.instruments.latent_ct import LatentCt, c_t


@pytest.fixture(scope="module")
def prepared() -> tuple[LatentCt, np.ndarray]:
    rng = np.random.default_rng(0)
    train = rng.standard_normal((1000, 6)) * np.linspace(0.5, 2.0, 6)
    held = rng.standard_normal((200, 6)) * np.linspace(0.5, 2.0, 6)
    reference = Reference(
        z=held, rows=np.arange(200), train_z=train, train_rows=np.arange(1000), validation_z=held,
        k=5, chunk_size=256, device="cpu", seed=0,
    )  # fmt: skip
    instrument = LatentCt()
    instrument.prepare(reference)
    return instrument, train


def _score(instrument: LatentCt, z: np.ndarray) -> float:
    score = instrument.score(Row("sampler", "sampler", "sample", z))["latent_ct"]
    assert score.low <= score.value <= score.high
    return score.value


def test_ct_flags_resampled_training_points_not_a_gaussian_fit(prepared):
    instrument, train = prepared
    assert instrument.cells == 10  # min(20, 1000 // 50, 200 // 20)
    rng = np.random.default_rng(1)
    # what `resample` with a tiny jitter draws, and what a fitted `gaussian` draws, from the same training points
    copies = _score(instrument, train[rng.choice(len(train), 200)] + 0.01 * rng.standard_normal((200, 6)))
    fitted = rng.multivariate_normal(train.mean(axis=0), np.cov(train, rowvar=False), size=200)
    gaussian = _score(instrument, fitted)
    assert copies < -5  # training points with a little jitter: far closer to the training data than unseen data
    assert -3 < gaussian  # new points of the same distribution: not copying (the paper's line is -3)


def test_ct_is_zero_for_the_held_out_points_themselves_and_skips_thin_cells():
    rng = np.random.default_rng(2)
    held, cells = 1 + rng.random(60), np.repeat([0, 1, 2], 20)
    assert c_t(held, cells, held, cells) == pytest.approx(0.0)
    assert np.isnan(c_t(held[:9], cells[:9], held, cells))  # 9 points in one cell: fewer than 10, no cell kept
    nearer = rng.random(20)  # one kept cell, every point nearer its training data than any held-out point
    assert c_t(nearer, cells[:20], held, cells) == pytest.approx((0 - 20 * 20 / 2) / np.sqrt(20 * 20 * 41 / 12))


def test_ct_is_in_every_instrument_set_and_leaves_reference_rows_alone(prepared):
    instrument, train = prepared
    assert INSTRUMENTS["latent_ct"] is LatentCt and "latent_ct" in [i.name for i in instrument_set("quick")]
    assert instrument.score(Row("real", "reference", "training", train[:50])) == {}
