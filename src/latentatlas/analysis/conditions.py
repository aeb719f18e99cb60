"""Conditional generation: a sampler fitted on the rows that satisfy a condition, checked by the probes.

A condition such as ``Male=1,Eyeglasses=1`` (1 = has it, 0 or -1 = has it not) selects training rows;
a sampler from the registry (default "gaussian") is fitted on them and draws vectors; the caller's
round trip decodes and re-encodes them, and the share of round-tripped samples that the attribute
probes (`AttributeAnalysis`) classify as satisfying the condition closes the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from latentatlas import checks
from latentatlas.analysis.attributes import AttributeAnalysis, AttributeLabels, unknown_name
from latentatlas.errors import LatentAtlasError
from latentatlas.samplers import make_sampler, sampler_options

# Samplers that fit a full covariance: they need more than N + 1 rows for a non-singular estimate.
FULL_COVARIANCE_SAMPLERS = ("gaussian", "robust-gaussian", "ellipsoid", "gmm")
_TRUE, _FALSE = ("1", "true", "yes"), ("0", "-1", "false", "no")


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
    for item in text.split(","):
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not name:
            raise LatentAtlasError(f"condition item {item.strip()!r} must look like NAME=1 or NAME=0")
        if name not in names:
            raise LatentAtlasError(unknown_name(name, names))
        if value.lower() not in _TRUE + _FALSE:
            raise LatentAtlasError(f"condition {name}={value}: the value must be 1 (has it) or 0 / -1 (has it not)")
        flag = int(value.lower() in _TRUE)
        if terms.get(name, flag) != flag:
            raise LatentAtlasError(f"condition {text!r} asks for {name} both with and without it")
        terms[name] = flag
    return Condition(tuple(terms.items()))


def rows_needed(sampler: str, dim: int) -> int:
    """Fewest training rows `sampler` can be fitted on: N + 2 for a full covariance, else 2."""
    return dim + 2 if sampler in FULL_COVARIANCE_SAMPLERS else 2


def condition_rows(condition: Condition, labels: AttributeLabels, sampler: str, dim: int) -> np.ndarray:
    """The rows satisfying `condition`; raises when they are too few to fit `sampler` in dimension `dim`."""
    rows = condition.mask(labels)
    needed = rows_needed(sampler, dim)
    if rows.sum() < needed:
        rule = "more than N + 1 for a full covariance" if needed > 2 else "at least 2"
        raise LatentAtlasError(
            f"condition {condition.text} selects {int(rows.sum())} training z-points; "
            f"the {sampler} sampler needs {rule} ({needed})"
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
) -> ConditionalCheck:
    """Fit `sampler` on the rows of `z` that satisfy `condition`, draw n vectors, pass them through
    `roundtrip` (decode then re-encode) and report the share the probes find the condition in."""
    n = checks.positive_int(n, "n")
    seed = checks.seed(seed)
    for name, _ in condition.terms:
        analysis.effect(name)  # every term needs a probe
    rows = condition_rows(condition, labels, sampler, z.shape[1])
    options = {"random_state": seed} if "random_state" in sampler_options(sampler) else {}
    drawn = make_sampler(sampler, **options).fit(np.asarray(z[rows], dtype=np.float64)).sample(n, seed=seed)
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
