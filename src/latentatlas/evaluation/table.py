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
    Metric("latent_copy_share", None, "share of samples closer to a training z-point than half the held-out median"),
    Metric("latent_copy_ratio", None, "median nearest-training distance of samples / of held-out z-points (1: new)"),
    Metric("log_likelihood", True, "mean log-density of the held-out z-points, nats per dimension"),
    Metric("void_share", False, "share of the row's z-points in no region's core (regions of the training z-points)"),
    Metric("fid", False, "Fréchet Inception distance to the held-out images at this n"),
    Metric("fid_infinity", False, "FID extrapolated to n → ∞ (Chong & Forsyth 2020)"),
    Metric("kid", False, "kernel Inception distance (unbiased MMD²) to the held-out images"),
    Metric("kid_se", None, "standard error of KID over its subsets"),
    Metric("face_rate", True, "share of decoded images in which the Haar cascade finds a face"),
    Metric("cnn_face_rate", True, "share of decoded images in which dlib's CNN detector finds a face"),
    Metric("cnn_confidence", True, "median confidence of dlib's CNN detector where it finds a face"),
    Metric("fd_face", False, "Fréchet distance between dlib face embeddings of samples and held-out images"),
    Metric("face_precision", True, "precision on face embeddings against the held-out images"),
    Metric("face_recall", True, "recall on face embeddings against the held-out images"),
    Metric("face_density", None, "density on face embeddings against the held-out images"),
    Metric("face_coverage", True, "coverage on face embeddings against the held-out images"),
    Metric("face_copy_share", None, "share of samples within dlib's same-identity distance 0.6 of a training face"),
    Metric("face_copy_ratio", None, "median face distance to the nearest training image, samples / held-out"),
    Metric("class_accuracy", True, "reference rows: share of images the class instrument assigns their true class"),
    Metric("class_confident", True, "share of images the class instrument assigns one class with probability >= 0.9"),
    Metric("class_coverage", True, "share of the classes that receive at least one confident image"),
    Metric("class_tv", False, "total-variation distance of the predicted classes from the training class shares"),
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
    options : dict
        The sampler's options (empty for reference rows), so a row can be matched to a sample folder.
    seed : int or None
        The seed of the draw and of the compared subsets.
    """

    name: str
    kind: RowKind
    n: int
    scores: dict[str, Score] = field(default_factory=dict)
    seconds: float = math.nan
    options: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None

    def record(self) -> dict[str, Any]:
        """Flat JSON/CSV record: name, kind, n, seed, options, each metric (+ _low/_high where an interval
        exists), seconds; sampler rows also name their `sampler`."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "n": int(self.n), "seed": self.seed}
        if self.kind == "sampler":
            out["sampler"] = self.name
        out["options"] = dict(self.options)
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
        recorded = record.get("options")
        options: dict[str, Any] = dict(recorded) if isinstance(recorded, dict) else {}
        seed = record.get("seed") if isinstance(record.get("seed"), int) else None
        return cls(str(record["name"]), kind, int(record["n"]), scores, number("seconds"), options, seed)


def table_frame(rows: Sequence[EvaluationRow]) -> pd.DataFrame:
    """The rows as a DataFrame of flat records; a metric column appears when any row has it."""
    return pd.DataFrame([row.record() for row in rows])


def table_markdown(table: pd.DataFrame | Sequence[EvaluationRow]) -> str:
    """Markdown table; a metric with an interval is shown as `value ± half-width`."""
    frame = table if isinstance(table, pd.DataFrame) else table_frame(list(table))
    hidden = {"sampler"}  # the name column says it
    columns = [c for c in frame.columns if not (c.endswith("_low") or c.endswith("_high")) and c not in hidden]

    def cell(record: dict[str, Any], column: str) -> str:
        value = record.get(column)
        if column in METRIC_KEYS:
            low, high = record.get(f"{column}_low", math.nan), record.get(f"{column}_high", math.nan)
            return Score(_float(value), _float(low), _float(high)).cell()
        if isinstance(value, dict):
            return ", ".join(f"{k}={v}" for k, v in value.items()) or "–"
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
