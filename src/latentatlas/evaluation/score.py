"""A score with its 95 % interval, and the description of a table column (the instruments' shared vocabulary)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """One column of the table: its key, whether higher is better, and what it measures."""

    key: str
    higher_is_better: bool | None  # None: neither (a target value, e.g. density ~ 1 or a 50th percentile)
    description: str


@dataclass(frozen=True)
class Score:
    """A value with an optional 95 % interval [low, high] (NaN when not computed)."""

    value: float
    low: float = math.nan
    high: float = math.nan

    @property
    def has_interval(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def cell(self) -> str:
        """'0.42 ± 0.03' (half the interval's width), '0.42' without an interval, '–' when missing."""
        if not math.isfinite(self.value):
            return "–"
        if not self.has_interval:
            return f"{self.value:.4g}"
        return f"{self.value:.4g} ± {(self.high - self.low) / 2:.2g}"
