"""The evaluation table: typed rows shared by the writers (JSON, CSV, Markdown), the CLI and the report.

The columns are the registered instruments' (`evaluation.instruments`). A row holds one `Score` per
metric (value and, where computed, a 95 % interval). Flat records
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

from latentatlas.evaluation.instruments import metrics
from latentatlas.evaluation.instruments.cnn_faces import FACES_WITHHELD
from latentatlas.evaluation.score import Metric, Score

REAL_ROW, RECONSTRUCTION_ROW = "real (held-out)", "reconstruction"
# settings.real_images of a run imported from z-points alone: it has no real images, only its decoder's
NO_REAL_IMAGES = "decoded z-points (imported run)"
NO_REAL_IMAGES_NOTE = (
    f'No real images: this run was imported from z-points alone, so the "{REAL_ROW}" and '
    f'"{RECONSTRUCTION_ROW}" rows are its decoder\'s own images of training and held-out z-points, and every '
    "image score (FID, KID, face rates) compares the decoder with itself, not with real data; near-perfect "
    "reference scores mean nothing here. Import the model with --encoder --decoder --data to score it against "
    "real images."
)


def evaluation_notes(settings: dict[str, Any] | None) -> list[str]:
    """The words the table, the report and the findings put beside the scores: that the evaluation had no real
    images, and which scores were withheld and why (`settings` of evaluation.json)."""
    settings = settings or {}
    notes = [NO_REAL_IMAGES_NOTE] if settings.get("real_images") == NO_REAL_IMAGES else []
    if isinstance(settings.get(FACES_WITHHELD), str):
        notes.append(f"Face scores withheld: {settings[FACES_WITHHELD]}.")
    return notes


RowKind = Literal["reference", "sampler"]


def metric_keys() -> tuple[str, ...]:
    """The table's column keys: every registered instrument's columns, in registry order (read live, so an
    instrument registered later has its column)."""
    return tuple(metric.key for metric in metrics())


METRICS: tuple[Metric, ...] = metrics()  # the built-in instruments' columns
METRIC_KEYS = tuple(m.key for m in METRICS)


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
        Keyed by the instruments' column keys (`metric_keys()`); a metric that was not computed is absent.
    seconds : float
        Wall time of the row, fitting included.
    options : dict
        The sampler's options (empty for reference rows), so a row can be matched to a sample folder.
    seed : int or None
        The seed of the draw and of the compared subsets.
    sampler : str
        The registry name of a sampler row (its `name` is the label, e.g. "gaussian T=0.85"; `row_label`);
        "" for reference rows.
    """

    name: str
    kind: RowKind
    n: int
    scores: dict[str, Score] = field(default_factory=dict)
    seconds: float = math.nan
    options: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    sampler: str = ""

    def __post_init__(self) -> None:
        if self.kind == "sampler" and not self.sampler:
            self.sampler = self.name

    @property
    def temperature(self) -> float:
        """The temperature the row was drawn at (1 when its sampler has none or it was not given)."""
        return float(self.options.get("temperature", 1.0))

    @property
    def reencode(self) -> int:
        """Rounds of z <- encode(decode(z)) applied to the row's draws (`pipelines.reencode`; 0: as drawn)."""
        return int(self.options.get("reencode", 0))

    def record(self) -> dict[str, Any]:
        """Flat JSON/CSV record: name, kind, n, seed, options, each metric (+ _low/_high where an interval
        exists), seconds; sampler rows also name their `sampler`."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "n": int(self.n), "seed": self.seed}
        if self.kind == "sampler":
            out["sampler"] = self.sampler
        out["options"] = dict(self.options)
        for key in metric_keys():
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
            key: Score(number(key), number(f"{key}_low"), number(f"{key}_high"))
            for key in metric_keys()
            if key in record
        }
        kind: RowKind = "reference" if record.get("kind") == "reference" else "sampler"
        recorded = record.get("options")
        options: dict[str, Any] = dict(recorded) if isinstance(recorded, dict) else {}
        seed = record.get("seed") if isinstance(record.get("seed"), int) else None
        sampler = str(record.get("sampler") or record["name"]) if kind == "sampler" else ""
        return cls(str(record["name"]), kind, int(record["n"]), scores, number("seconds"), options, seed, sampler)


def row_label(sampler: str, options: dict[str, Any]) -> str:
    """A sampler row's name: the sampler's, with its temperature when that is not 1 ("gaussian T=0.85") and its
    rounds of re-encoding when there are some ("gaussian T=0.85 reencode=2"), so rows of one sampler at several
    temperatures are told apart (and the T = 1 row is the plain sampler's row: its draws are bit for bit those
    without a temperature)."""
    temperature, rounds = float(options.get("temperature", 1.0)), int(options.get("reencode", 0))
    label = sampler if temperature == 1.0 else f"{sampler} T={temperature:g}"
    return f"{label} reencode={rounds}" if rounds else label


def table_frame(rows: Sequence[EvaluationRow]) -> pd.DataFrame:
    """The rows as a DataFrame of flat records; a metric column appears when any row has it."""
    return pd.DataFrame([row.record() for row in rows])


def table_markdown(table: pd.DataFrame | Sequence[EvaluationRow]) -> str:
    """Markdown table; a metric with an interval is shown as `value ± half-width`."""
    frame = table if isinstance(table, pd.DataFrame) else table_frame(list(table))
    hidden = {"sampler"}  # the name column says it
    columns = [c for c in frame.columns if not (c.endswith("_low") or c.endswith("_high")) and c not in hidden]

    keys = set(metric_keys())

    def cell(record: dict[str, Any], column: str) -> str:
        value = record.get(column)
        if column in keys:
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
