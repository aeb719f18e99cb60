"""The closed-loop conditional check: a sampler fitted on the rows that satisfy a condition, checked by the probes.

It lives in pipelines because it joins two layers that do not import each other: the samplers (fitted on
the condition's rows) and the analysis (the condition language and the attribute probes,
`latentatlas.analysis.conditions`). The caller's round trip decodes and re-encodes the draws.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from latentatlas import checks
from latentatlas.analysis.attributes import AttributeAnalysis
from latentatlas.analysis.conditions import Condition, ConditionalCheck, share_satisfying
from latentatlas.analysis.labels import AttributeLabels
from latentatlas.errors import LatentAtlasError
from latentatlas.samplers import EpochCallback, Sampler, make_sampler, sampler_options
from latentatlas.samplers.base import split_rows
from latentatlas.samplers.neural import NeuralSampler


def rows_needed(sampler: str | Sampler, dim: int) -> int:
    """Fewest training rows `sampler` (a name: default options) can be fitted on in dimension `dim`: N + 2
    for a full covariance; for the neural samplers enough that N + 1 rows remain after their validation
    split (the whitening needs them); else the sampler's own minimum (2 for most)."""
    estimator = make_sampler(sampler) if isinstance(sampler, str) else sampler
    needed = max(2, estimator._min_rows())
    if estimator.full_covariance:
        needed = max(needed, dim + 2)
    if isinstance(estimator, NeuralSampler):  # the split fraction is a NeuralSampler option
        fraction = float(estimator.validation_fraction)
        rows = dim + 2
        while rows - len(split_rows(rows, fraction, 0)[1]) < dim + 1:
            rows += 1
        needed = max(needed, rows)
    return needed


def _needed_rule(sampler: str, needed: int) -> str:
    if make_sampler(sampler).full_covariance:
        return f"more than N + 1 for a full covariance ({needed})"
    if make_sampler(sampler).neural:
        return f"N + 1 left after its validation split ({needed})"
    return f"at least {needed}"


def condition_rows(condition: Condition, labels: AttributeLabels, sampler: str, dim: int) -> np.ndarray:
    """The rows satisfying `condition`; raises when they are too few to fit `sampler` in dimension `dim`."""
    rows = condition.mask(labels)
    needed = rows_needed(sampler, dim)
    if rows.sum() < needed:
        raise LatentAtlasError(
            f"condition {condition.text} selects {int(rows.sum())} training z-points; "
            f"the {sampler} sampler needs {_needed_rule(sampler, needed)}"
        )
    return rows


def conditional_check(
    analysis: AttributeAnalysis,
    condition: Condition,
    z: np.ndarray,
    labels: AttributeLabels,
    roundtrip: Callable[[np.ndarray], np.ndarray],
    *,
    sampler: str = "gaussian",
    n: int = 256,
    seed: int = 0,
    z_held_out: np.ndarray | None = None,
    labels_held_out: AttributeLabels | None = None,
    progress: EpochCallback | None = None,
) -> ConditionalCheck:
    """Fit `sampler` on the rows of `z` that satisfy `condition`, draw n vectors, pass them through
    `roundtrip` (decode then re-encode) and report the share the probes find the condition in.
    `progress` goes to the sampler's `fit` (epochs of a sampler that trains)."""
    n = checks.positive_int(n, "n")
    seed = checks.seed(seed)
    for name, _ in condition.terms:
        analysis.effect(name)  # every term needs a probe
    rows = condition_rows(condition, labels, sampler, z.shape[1])
    options = {"random_state": seed} if "random_state" in sampler_options(sampler) else {}
    fitted = make_sampler(sampler, **options).fit(np.asarray(z[rows], dtype=np.float64), progress=progress)
    drawn = fitted.sample(n, seed=seed)
    returned = np.asarray(roundtrip(drawn))
    if returned.shape != drawn.shape:
        raise LatentAtlasError(f"the round trip returned shape {returned.shape} for {drawn.shape} samples")
    share, per_attribute = share_satisfying(analysis, returned, condition)
    reference, n_reference = None, 0
    if z_held_out is not None and labels_held_out is not None:
        real = condition.mask(labels_held_out)
        n_reference = int(real.sum())
        if n_reference:
            reference = share_satisfying(analysis, z_held_out[real], condition)[0]
    return ConditionalCheck(
        condition=condition.text,
        sampler=sampler,
        n_rows=int(rows.sum()),
        n_samples=n,
        seed=seed,
        share=share,
        share_per_attribute=per_attribute,
        reference_share=reference,
        n_reference=n_reference,
    )
