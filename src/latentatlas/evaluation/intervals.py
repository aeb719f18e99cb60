"""95 % intervals for every score, FID without its small-sample bias (FID∞), and which differences are real.

Intervals are percentile bootstraps (Efron & Tibshirani 1993, ch. 13), seeded per column (`stream_seed`):
* scores that are a mean over the row's items (precision, density, face rate, inside-radius share, copy
  share: one number per generated sample; recall and coverage: one per held-out point) resample those
  per-item values with replacement; the k-NN balls themselves stay fixed, so the interval is over
  the samples (or the reference points), not over a refit of the balls;
* Fréchet distances (FID, FD-face) resample the rows of both feature sets ("over samples and reference")
  and recompute the distance; the draws are re-centred on the estimate, because repeated rows alone
  inflate a Fréchet distance.
FID∞ follows Chong & Forsyth 2020: FID of random subsets of the generated set at several sizes n_i,
then a least-squares line in 1/n whose intercept is the value at n → ∞.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.score import Score
from latentatlas.stats import single_thread_blas

LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 1000
FRECHET_RESAMPLES = 50  # each resample costs one Fréchet distance (an SVD of n x n at n <= 2048)


def stream_seed(seed: int, name: str) -> int:
    """The seed of the random stream called `name` (a column's or an instrument's) in an evaluation seeded with
    `seed`: numpy's SeedSequence over [seed, crc32(name)], so each name has its own stream, stable across
    processes and platforms (Python's hash of a string is salted per process), and no offsets to hand out."""
    # 32 bits: what every consumer takes (numpy, scikit-learn's random_state, torch)
    return int(np.random.SeedSequence([seed, zlib.crc32(name.encode())]).generate_state(1)[0])


def _bounds(draws: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(draws, [tail, 100.0 - tail])
    return float(low), float(high)


def mean_interval(
    values: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0, level: float = LEVEL
) -> Score:
    """The mean of per-item values with its percentile-bootstrap interval."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if len(values) == 0 or not np.isfinite(values).all():
        raise LatentAtlasError("a bootstrap interval needs at least one finite value")
    resamples = checks.positive_int(resamples, "bootstrap resamples")
    level = checks.confidence(level)
    rng = np.random.default_rng(seed)
    # Counts of each item per resample (multinomial) instead of index arrays: memory resamples x n ints,
    # one matrix product for all means.
    counts = rng.multinomial(len(values), np.full(len(values), 1.0 / len(values)), size=resamples)
    draws = counts @ values / len(values)
    return Score(float(values.mean()), *_bounds(draws, level))


def median_interval(
    values: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0, level: float = LEVEL
) -> Score:
    """The median of per-item values with its percentile-bootstrap interval."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if len(values) == 0 or not np.isfinite(values).all():
        raise LatentAtlasError("a bootstrap interval needs at least one finite value")
    rng = np.random.default_rng(seed)
    draws = np.array([np.median(values[rng.integers(0, len(values), len(values))]) for _ in range(resamples)])
    return Score(float(np.median(values)), *_bounds(draws, checks.confidence(level)))


def statistic_interval(
    statistic: Callable[[np.ndarray], float],
    values: np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
    recentre: bool = False,
) -> Score:
    """statistic(values) of per-item values (e.g. how many classes appear) with its percentile-bootstrap
    interval from resampling the items. `recentre=True` shifts the draws onto the estimate, keeping their
    spread: for a statistic that resampling biases (a distance between distributions grows with the
    repeated items, as a Fréchet distance does)."""
    values = np.asarray(values)
    if len(values) == 0:
        raise LatentAtlasError("a bootstrap interval needs at least one value")
    resamples = checks.positive_int(resamples, "bootstrap resamples")
    rng = np.random.default_rng(seed)
    draws = np.array([statistic(values[rng.integers(0, len(values), len(values))]) for _ in range(resamples)])
    value = float(statistic(values))
    return Score(value, *_bounds(draws - draws.mean() + value if recentre else draws, checks.confidence(level)))


def paired_interval(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    a: np.ndarray,
    b: np.ndarray,
    resamples: int = FRECHET_RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
    threads: int = 1,
) -> Score:
    """statistic(a, b) with the percentile-bootstrap interval from resampling the rows of both sets.
    `threads` > 1: the resamples run in that many threads with one BLAS thread each, for a statistic whose
    work is BLAS / LAPACK (a Fréchet distance: 2x on 2 cores, the same draws)."""
    resamples = checks.positive_int(resamples, "bootstrap resamples")
    level = checks.confidence(level)
    rng = np.random.default_rng(seed)
    pairs = [(rng.integers(0, len(a), len(a)), rng.integers(0, len(b), len(b))) for _ in range(resamples)]
    values = in_threads(lambda rows: statistic(a[rows[0]], b[rows[1]]), [(slice(None), slice(None)), *pairs], threads)
    # Resampling with replacement repeats rows, which inflates a Fréchet distance (fewer distinct points):
    # the draws are re-centred on the estimate, so the interval keeps their spread but not that bias.
    value, draws = float(values[0]), np.array(values[1:])
    low, high = _bounds(draws - draws.mean() + value, level)
    return Score(value, low, high)


def in_threads(function: Callable[[Any], float], items: Sequence[Any], threads: int) -> list[float]:
    """[function(item) for item in items], in `threads` threads with one BLAS thread each when threads > 1."""
    if threads <= 1 or len(items) < 2:
        return [function(item) for item in items]
    with single_thread_blas(), ThreadPoolExecutor(min(threads, len(items))) as pool:
        return list(pool.map(function, items))


def extrapolated_fid(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    generated: np.ndarray,
    reference: np.ndarray,
    fractions: Sequence[float] = (0.2, 0.35, 0.5, 0.65, 0.8, 1.0),
    seed: int = 0,
    threads: int = 1,
) -> tuple[float, list[tuple[int, float]]]:
    """FID∞ (Chong & Forsyth 2020): statistic on subsets of `generated` of several sizes, fitted linearly in 1/n.

    Returns (intercept at 1/n = 0, [(n_i, value_i)]). The reference set stays whole, as in the paper.
    `threads`: as in `paired_interval`.
    """
    rng = np.random.default_rng(seed)
    sizes = sorted({max(2, round(f * len(generated))) for f in fractions})
    if len(sizes) < 2:
        raise LatentAtlasError(f"FID∞ needs subsets of at least two sizes; {len(generated)} samples are too few")
    whole = slice(None)
    subsets = [rng.choice(len(generated), size, replace=False) if size < len(generated) else whole for size in sizes]
    fids = in_threads(lambda rows: float(statistic(generated[rows], reference)), subsets, threads)
    points = list(zip(sizes, fids))
    inverse = np.array([1.0 / size for size, _ in points])
    values = np.array([value for _, value in points])
    _slope, intercept = np.polyfit(inverse, values, 1)
    return float(intercept), points


def significantly_different(a: Score, b: Score) -> bool:
    """True when both intervals exist and do not overlap (a conservative test at about the 1 % level)."""
    if not (a.has_interval and b.has_interval):
        return False
    return a.high < b.low or b.high < a.low
