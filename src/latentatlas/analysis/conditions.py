"""The condition language and the closed loop's verdict: which rows satisfy a condition, and did samples keep it.

A condition such as ``Male=1,Eyeglasses=1`` (1 = has it, 0 or -1 = has it not) selects training rows; the
conditional check (`latentatlas.pipelines.conditional`, which fits a sampler on them, decodes and re-encodes
its draws) reports a `ConditionalCheck`, the share of round-tripped samples that the attribute probes
(`AttributeAnalysis`) classify as satisfying the condition; `conditional_findings` judges those checks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from latentatlas import checks
from latentatlas.analysis.attributes import AttributeAnalysis
from latentatlas.analysis.labels import RESERVED_COLUMNS, AttributeLabels, unknown_name
from latentatlas.errors import LatentAtlasError
from latentatlas.findings import Finding, count_verdict

# the closed loop holds when the probes find the condition in at least this share of the samples
LOOP_SHARE = 0.9

# One condition language for `sample --where` and `attributes --where`: NAME OP VALUE terms joined by
# commas, OP one of = < > <= >=, on the metadata's attribute or factor columns.
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
    known = [c for c in meta.columns if c not in RESERVED_COLUMNS]
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


def share_satisfying(analysis: AttributeAnalysis, z: np.ndarray, condition: Condition) -> tuple[float, dict]:
    """The share of `z` the probes classify as satisfying every term, and each term's own share."""
    hits = {name: analysis.predict(z, name) == value for name, value in condition.terms}
    joint = np.logical_and.reduce(list(hits.values()))
    return float(joint.mean()), {name: float(hit.mean()) for name, hit in hits.items()}


def conditional_findings(conditional: Sequence[ConditionalCheck]) -> list[Finding]:
    """The closed loop: do samples fitted on a condition keep it? Empty without checks."""
    if not conditional:
        return []
    shares = "; ".join(f"{c.condition}: {c.share:.2f} of {c.n_samples}" for c in conditional)
    loop = Finding(
        key="attributes-conditional",
        source="the expectation",
        claim=f"Samples fitted on a condition keep it: decoded and re-encoded, the probes find it in "
        f">= {LOOP_SHARE:.0%} of them",
        verdict=count_verdict(sum(c.share >= LOOP_SHARE for c in conditional), len(conditional)),
        evidence=f"probe-positive share after decode and re-encode ({conditional[0].sampler} sampler): {shares}",
    )
    return [loop]
