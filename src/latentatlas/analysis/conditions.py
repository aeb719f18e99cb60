"""Conditional generation: a sampler fitted on the rows that satisfy a condition, checked by the probes.

A condition such as ``Male=1,Eyeglasses=1`` (1 = has it, 0 or -1 = has it not) selects training rows;
a sampler from the registry (default "gaussian") is fitted on them and draws vectors; the caller's
round trip decodes and re-encodes them, and the share of round-tripped samples that the attribute
probes (`AttributeAnalysis`) classify as satisfying the condition closes the loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from latentatlas import checks
from latentatlas.analysis.attributes import AttributeAnalysis, AttributeLabels, unknown_name
from latentatlas.errors import LatentAtlasError
from latentatlas.samplers import EpochCallback, Sampler, make_sampler, sampler_options
from latentatlas.samplers.base import split_rows
from latentatlas.samplers.neural import NeuralSampler

# One condition language for `sample --where` and `attributes --where`: NAME OP VALUE terms joined by
# commas, OP one of = < > <= >=, on the metadata's attribute or factor columns.
# metadata columns that describe the row, not the image: never conditions
_BOOKKEEPING = {"index", "image_id", "path", "subset", "partition"}
_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|=|<|>)\s*([-+0-9.eE]+)\s*$")
MIN_CONDITIONED_ROWS = 10


def parse_where(text: str) -> list[tuple[str, str, float]]:
    """ "Male=1,Eyeglasses=1" or "face_width>0.5" -> [(name, operator, value), ...]."""
    conditions = []
    for part in text.split(","):
        match = _CONDITION.match(part)
        if not match:
            raise LatentAtlasError(
                f"--where: {part.strip()!r} is not a condition like Male=1 or face_width>0.5 (operators = < > <= >=)"
            )
        name, operator, value = match.groups()
        conditions.append((name, operator, checks.finite_number(value, f"--where value of {name}")))
    return conditions


def attribute_values(meta: pd.DataFrame, name: str, flag: str = "--where") -> np.ndarray:
    """One attribute or factor column as float64; an unknown name suggests the nearest known one."""
    known = [c for c in meta.columns if c not in _BOOKKEEPING]
    if not known:
        raise LatentAtlasError(f"{flag}: this run's source has no attributes or factors to condition on")
    if name not in known:
        raise LatentAtlasError(f"{flag}: {unknown_name(name, known)}")
    return meta[name].to_numpy(dtype=np.float64)


def where_rows(meta: pd.DataFrame, conditions: list[tuple[str, str, float]]) -> np.ndarray:
    """Boolean mask of the metadata rows that satisfy every condition; unknown names suggest the nearest."""
    mask = np.ones(len(meta), dtype=bool)
    for name, operator, value in conditions:
        column = attribute_values(meta, name)
        compare = {"=": np.equal, "<": np.less, ">": np.greater, "<=": np.less_equal, ">=": np.greater_equal}
        mask &= compare[operator](column, value)
    return mask


# Samplers that fit a full covariance: they need more than N + 1 rows for a non-singular estimate.
FULL_COVARIANCE_SAMPLERS = ("gaussian", "robust-gaussian", "ellipsoid", "gmm")


@dataclass(frozen=True)
class Condition:
    """A conjunction of attribute values, e.g. Male=1,Eyeglasses=1 (1 = has it, 0 = has it not)."""

    terms: tuple[tuple[str, int], ...]

    @property
    def text(self) -> str:
        return ",".join(f"{name}={value}" for name, value in self.terms)

    def mask(self, labels: AttributeLabels) -> np.ndarray:
        """Rows whose (known) labels satisfy every term."""
        selected = np.ones(len(labels), bool)
        for name, value in self.terms:
            selected &= labels.column(name) == value
        return selected


def parse_condition(text: str, names: Sequence[str]) -> Condition:
    """Parse 'NAME=VALUE,...' (VALUE 1/true/yes or 0/-1/false/no) against the known attribute names."""
    if not isinstance(text, str) or not text.strip():
        raise LatentAtlasError("empty condition: write it like Male=1,Eyeglasses=1")
    if not names:
        raise LatentAtlasError(f"condition {text!r} needs attributes, but the source has none")
    terms: dict[str, int] = {}
    for name, operator, value in parse_where(text):
        if name not in names:
            raise LatentAtlasError(unknown_name(name, names))
        if operator != "=" or value not in (1.0, 0.0, -1.0):
            raise LatentAtlasError(
                f"condition on {name}: an attribute check needs {name}=1 (has it) or {name}=0 / -1 (has it not)"
            )
        flag = int(value == 1.0)
        if terms.get(name, flag) != flag:
            raise LatentAtlasError(f"condition {text!r} asks for {name} both with and without it")
        terms[name] = flag
    return Condition(tuple(terms.items()))


def rows_needed(sampler: str | Sampler, dim: int) -> int:
    """Fewest training rows `sampler` (a name: default options) can be fitted on in dimension `dim`: N + 2
    for a full covariance; for the neural samplers enough that N + 1 rows remain after their validation
    split (the whitening needs them); else the sampler's own minimum (2 for most)."""
    estimator = make_sampler(sampler) if isinstance(sampler, str) else sampler
    needed = max(2, estimator._min_rows())
    if estimator.name in FULL_COVARIANCE_SAMPLERS:
        needed = max(needed, dim + 2)
    if isinstance(estimator, NeuralSampler):
        fraction = float(estimator.validation_fraction)
        rows = dim + 2
        while rows - len(split_rows(rows, fraction, 0)[1]) < dim + 1:
            rows += 1
        needed = max(needed, rows)
    return needed


def _needed_rule(sampler: str, needed: int) -> str:
    if sampler in FULL_COVARIANCE_SAMPLERS:
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


@dataclass(frozen=True)
class ConditionalCheck:
    """Samples of a sampler fitted on a condition's rows, decoded and re-encoded, classified by the probes.

    `share` is the fraction of round-tripped samples the probes classify as satisfying every term;
    `reference_share` the same fraction for the real held-out rows that satisfy the condition (the
    probes' own ceiling); `share_per_attribute` each term on its own.
    """

    condition: str
    sampler: str
    n_rows: int
    n_samples: int
    seed: int
    share: float
    share_per_attribute: dict[str, float]
    reference_share: float | None
    n_reference: int

    def to_dict(self) -> dict:
        return asdict(self)


def _share_satisfying(analysis: AttributeAnalysis, z: np.ndarray, condition: Condition) -> tuple[float, dict]:
    hits = {name: analysis.predict(z, name) == value for name, value in condition.terms}
    joint = np.logical_and.reduce(list(hits.values()))
    return float(joint.mean()), {name: float(hit.mean()) for name, hit in hits.items()}


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
    share, per_attribute = _share_satisfying(analysis, returned, condition)
    reference, n_reference = None, 0
    if z_held_out is not None and labels_held_out is not None:
        real = condition.mask(labels_held_out)
        n_reference = int(real.sum())
        if n_reference:
            reference = _share_satisfying(analysis, z_held_out[real], condition)[0]
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
