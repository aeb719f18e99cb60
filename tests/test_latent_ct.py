"""The data-copying test C_T (Meehan et al. 2020) in latent space, on small synthetic z-points."""

from __future__ import annotations

import numpy as np
import pytest

from latentatlas.evaluation.copies import MIN_CELL_POINTS, CopyingTest, in_cell_distances
from latentatlas.evaluation.instruments import INSTRUMENTS, Reference, Row, instrument_set
from latentatlas.evaluation.instruments.latent_ct import LatentCt, c_t
from latentatlas.evaluation.intervals import statistic_interval


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


def _c_t_with_scipy(row, row_cells, held, held_cells, kept):
    """C_T as the paper states it: one scipy Mann-Whitney U test per kept cell."""
    from scipy.stats import mannwhitneyu

    z_scores, weights = [], []
    for cell in kept:
        a, b = row[row_cells == cell], held[held_cells == cell]
        if len(a) and len(b):
            u = mannwhitneyu(a, b, method="asymptotic").statistic
            z_scores.append((u - len(a) * len(b) / 2) / np.sqrt(len(a) * len(b) * (len(a) + len(b) + 1) / 12))
            weights.append(len(b))
    return np.dot(weights, z_scores) / np.sum(weights)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ct_from_u_shares_is_scipys_mann_whitney_c_t_with_ties_and_resamples(seed):
    rng = np.random.default_rng(seed)
    held, held_cells = rng.integers(0, 30, 300) / 10, rng.integers(0, 6, 300)  # coarse values: many ties
    row, row_cells = rng.integers(0, 30, 200) / 10 + 0.2, rng.integers(0, 5, 200)  # cell 5: no row points
    kept = np.array([0, 1, 2, 3, 4])
    assert c_t(row, row_cells, held, held_cells) == pytest.approx(
        _c_t_with_scipy(row, row_cells, held, held_cells, kept), rel=1e-12
    )
    for _ in range(3):  # bootstrap draws repeat points; a draw may leave a kept cell with none of them
        items = rng.integers(0, 200, 200)
        expected = _c_t_with_scipy(row[items], row_cells[items], held, held_cells, kept)
        assert c_t(row[items], row_cells[items], held, held_cells, kept) == pytest.approx(expected, rel=1e-12)


def test_ct_skips_a_kept_cell_that_no_point_falls_in():
    rng = np.random.default_rng(5)
    held, cells = 1 + rng.random(60), np.repeat([0, 1, 2], 20)
    row = rng.random(40) + 0.5
    expected = c_t(row, cells[:40], held, cells, np.array([0, 1]))
    assert c_t(row, cells[:40], held, cells, np.array([0, 1, 7])) == pytest.approx(expected)  # cell 7: nobody


def test_copying_test_interval_is_the_bootstrap_of_scipys_c_t():
    rng = np.random.default_rng(4)
    train, held, points = rng.standard_normal((1000, 4)), rng.standard_normal((200, 4)), rng.standard_normal((300, 4))
    test = CopyingTest(seed=3, resamples=30).fit(train, held)
    cells = test.cells_of(points)
    distances = in_cell_distances(points, cells, test.train_, test.train_cells_)
    found, counts = np.unique(cells, return_counts=True)
    kept = found[counts >= MIN_CELL_POINTS]

    def statistic(items):
        return _c_t_with_scipy(distances[items], cells[items], test.held_, test.held_cells_, kept)

    expected = statistic_interval(statistic, np.arange(len(points)), resamples=30, seed=3)
    score = test.score(points)
    assert score is not None and score.value == pytest.approx(expected.value, rel=1e-12)
    assert (score.low, score.high) == pytest.approx((expected.low, expected.high), rel=1e-12)


def test_ct_is_in_every_instrument_set_and_leaves_reference_rows_alone(prepared):
    instrument, train = prepared
    assert INSTRUMENTS["latent_ct"] is LatentCt and "latent_ct" in [i.name for i in instrument_set("quick")]
    assert instrument.score(Row("real", "reference", "training", train[:50])) == {}
