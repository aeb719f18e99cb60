"""The evaluation table: typed rows shared by the writers (JSON, CSV, Markdown), the CLI and the report.

A row holds one `Score` per metric (value and, where computed, a 95 % interval). Flat records
(`precision`, `precision_low`, `precision_high`, ...) are what JSON and CSV store, so a reader needs no
knowledge of the classes; `EvaluationRow.from_record` reads them back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

REAL_ROW, RECONSTRUCTION_ROW = "real (held-out)", "reconstruction"
RowKind = Literal["reference", "sampler"]


@dataclass(frozen=True)
class Metric:
    """One column of the table: its key, whether higher is better, and what it measures."""

    key: str
    higher_is_better: bool | None  # None: neither (a target value, e.g. density ~ 1 or a 50th percentile)
    description: str


METRICS: tuple[Metric, ...] = (
    Metric("precision", True, "share of samples inside the held-out z-points' k-NN balls"),
    Metric("recall", True, "share of held-out z-points inside the samples' k-NN balls"),
    Metric("density", None, "mean number of held-out balls holding a sample / k (about 1 for real data)"),
    Metric("coverage", True, "share of held-out balls holding at least one sample"),
    Metric("mahalanobis_median_pct", None, "median Mahalanobis percentile among the training z-points (real: 50)"),
    Metric("inside_radius", True, "share of samples whose norm lies in the held-out 1st-99th percentile range"),
    Metric("fid", False, "Fréchet Inception distance to the held-out images at this n"),
    Metric("kid", False, "kernel Inception distance (unbiased MMD²) to the held-out images"),
    Metric("kid_se", None, "standard error of KID over its subsets"),
    Metric("face_rate", True, "share of decoded images in which the face detector finds a face"),
)
METRIC_KEYS = tuple(m.key for m in METRICS)


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


@dataclass
class EvaluationRow:
    """One row of the table: a sampler or a reference, scored on `n` points.

    Attributes
    ----------
    name : str
        Sampler name, or "real (held-out)" / "reconstruction" for the reference rows.
    kind : {"reference", "sampler"}
    n : int
        The number of samples this row was scored on.
    scores : dict of str to Score
        Keyed by `METRICS` keys; a metric that was not computed is absent.
    seconds : float
        Wall time of the row, fitting included.
    """

    name: str
    kind: RowKind
    n: int
    scores: dict[str, Score] = field(default_factory=dict)
    seconds: float = math.nan

    def record(self) -> dict[str, Any]:
        """Flat JSON/CSV record: name, kind, n, each metric (+ _low/_high where an interval exists), seconds."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "n": int(self.n)}
        for key in METRIC_KEYS:
            score = self.scores.get(key)
            if score is None:
                continue
            out[key] = score.value
            if score.has_interval:
                out[f"{key}_low"], out[f"{key}_high"] = score.low, score.high
        out["seconds"] = self.seconds
        return out

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> EvaluationRow:
        def number(key: str) -> float:
            value = record.get(key)
            return float(value) if value is not None else math.nan

        scores = {
            key: Score(number(key), number(f"{key}_low"), number(f"{key}_high")) for key in METRIC_KEYS if key in record
        }
        kind: RowKind = "reference" if record.get("kind") == "reference" else "sampler"
        return cls(str(record["name"]), kind, int(record["n"]), scores, number("seconds"))


def table_frame(rows: Sequence[EvaluationRow]) -> pd.DataFrame:
    """The rows as a DataFrame of flat records; a metric column appears when any row has it."""
    return pd.DataFrame([row.record() for row in rows])


def table_markdown(table: pd.DataFrame | Sequence[EvaluationRow]) -> str:
    """Markdown table; a metric with an interval is shown as `value ± half-width`."""
    frame = table if isinstance(table, pd.DataFrame) else table_frame(list(table))
    columns = [c for c in frame.columns if not (c.endswith("_low") or c.endswith("_high"))]

    def cell(record: dict[str, Any], column: str) -> str:
        value = record.get(column)
        if column in METRIC_KEYS:
            low, high = record.get(f"{column}_low", math.nan), record.get(f"{column}_high", math.nan)
            return Score(_float(value), _float(low), _float(high)).cell()
        if isinstance(value, (float, np.floating)):
            return "–" if not np.isfinite(value) else f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    for record in frame.to_dict(orient="records"):
        lines.append("| " + " | ".join(cell(record, c) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
