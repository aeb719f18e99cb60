"""Findings: a claim of the seed, checked against a run's numbers.

Every verdict that the report, the README or a command prints is a `Finding` built by the pure module
that computed the numbers (analysis, evaluation), never fixed text: `evidence` is a sentence made from the
numbers and names the test that decided it, and `verdict` says whether the run agrees with the seed's claim.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

Verdict = Literal["agrees", "disagrees", "mixed", "undecided"]


@dataclass(frozen=True)
class Finding:
    """One seed claim and what this run's numbers say about it.

    Attributes
    ----------
    key : str
        Stable identifier, e.g. "origin-position".
    claim : str
        The seed's claim, in one sentence.
    verdict : {"agrees", "disagrees", "mixed", "undecided"}
    evidence : str
        One sentence computed from the numbers, naming the test that decided the verdict.
    source : str
        Whose claim it is: "the seed" (the blog series) or "the expectation" (a target latentatlas set itself,
        e.g. for attribute probes, which the series does not discuss).
    """

    key: str
    claim: str
    verdict: Verdict
    evidence: str
    source: str = "the seed"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Finding:
        return cls(
            key=str(d["key"]),
            claim=str(d["claim"]),
            verdict=d["verdict"],
            evidence=str(d["evidence"]),
            source=str(d.get("source", "the seed")),
        )

    def sentence(self) -> str:
        """'The run agrees with the seed: <claim> (<evidence>)' and its variants."""
        lead = {
            "agrees": f"agrees with {self.source}",
            "disagrees": f"disagrees with {self.source}",
            "mixed": f"partly agrees with {self.source}",
            "undecided": f"cannot decide {self.source}'s claim",
        }[self.verdict]
        return f"This run {lead}: {self.claim} ({self.evidence})"


def grade(value: float, agree: float, disagree: float, higher_agrees: bool = True) -> Verdict:
    """'agrees' beyond `agree`, 'disagrees' beyond `disagree` (the other way), 'mixed' between; NaN: 'undecided'."""
    if not math.isfinite(value):
        return "undecided"
    sign = 1.0 if higher_agrees else -1.0
    if sign * value >= sign * agree:
        return "agrees"
    if sign * value <= sign * disagree:
        return "disagrees"
    return "mixed"


def count_verdict(passed: int, total: int) -> Verdict:
    """'agrees' when every case passed, 'disagrees' when none did, 'mixed' between; no cases: 'undecided'."""
    if total == 0:
        return "undecided"
    return "agrees" if passed == total else "disagrees" if passed == 0 else "mixed"
