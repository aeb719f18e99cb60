"""The sampler ranking of a run's evaluation, in one sentence: which samplers are indistinguishable from the
reconstruction ceiling, which copy their training points, which miss the data.

Computed from the evaluation's rows (flat records) at one n, the largest: a sampler is at the ceiling when its
95 % interval on the quality score overlaps the reconstruction row's (the best a decoder can do; the held-out
row's for a latent score, which the reconstruction row lacks), it copies when its copy share lies above the
held-out row's or a copy test flags it (C_T or the authenticity share, `evaluation.frontier.copies`, the rule
of the verdict "ceiling-without-copying"), and it misses when its coverage or face rate lies below half of the
held-out row's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentatlas.evaluation.frontier import copies as copy_test
from latentatlas.evaluation.score import Score
from latentatlas.evaluation.table import METRICS, REAL_ROW, RECONSTRUCTION_ROW, EvaluationRow
from latentatlas.report.blocks import format_number

QUALITY = ("fd_face", "fid_infinity", "fid", "kid", "precision")
COPY_SCORES = ("face_copy_share", "latent_copy_share")
# Without a held-out copy share, a copy ratio (nearest-training distance, samples / held-out; 1 by
# construction for held-out points) whose whole interval lies below this counts as copying.
COPY_RATIOS = ("face_copy_ratio", "latent_copy_ratio")
COPY_RATIO = 0.5
MISS_SCORES = ("coverage", "cnn_face_rate", "face_rate")
MISS_FRACTION = 0.5  # "misses": the whole interval below half of the held-out row's value
HIGHER_IS_BETTER = {m.key: m.higher_is_better for m in METRICS}
LABELS = {
    "fd_face": "FD-face",
    "fid_infinity": "FID∞",
    "fid": "FID",
    "kid": "KID",
    "precision": "latent precision",
    "coverage": "latent coverage",
    "cnn_face_rate": "CNN face rate",
    "face_rate": "face rate",
    "face_copy_share": "face copy share",
    "latent_copy_share": "latent copy share",
}


# A score with its 95 % interval: the evaluation's own type (read back from evaluation.json's records).
Interval = Score


def interval_text(score: Score) -> str:
    """'0.875 [0.83, 0.92]', or the value alone without an interval."""
    if not score.has_interval:
        return format_number(score.value)
    return f"{format_number(score.value)} [{format_number(score.low)}, {format_number(score.high)}]"


@dataclass(frozen=True)
class RankedSampler:
    name: str
    quality: Interval | None
    group: str  # "ceiling" | "copies" | "misses" | "between"


@dataclass(frozen=True)
class Ranking:
    """The evaluation's samplers at one n, judged against the reference rows."""

    n: int
    metric: str  # the quality score's key
    samplers: list[RankedSampler]  # best first
    ceiling: Interval | None  # the reconstruction row's quality (or the held-out row's, see `ceiling_row`)
    ceiling_row: str
    real: Interval | None
    best: str | None  # the best sampler that neither copies nor misses

    def names(self, group: str) -> list[str]:
        return [s.name for s in self.samplers if s.group == group]


def as_number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def score_of(record: dict, key: str) -> Interval | None:
    value = as_number(record.get(key))
    if value is None or not math.isfinite(value):
        return None
    low, high = as_number(record.get(f"{key}_low")), as_number(record.get(f"{key}_high"))
    return Interval(value, math.nan if low is None else low, math.nan if high is None else high)


def _overlap(a: Interval, b: Interval) -> bool:
    return a.has_interval and b.has_interval and a.low <= b.high and b.low <= a.high


def _better(a: Interval, b: Interval, key: str) -> bool:
    """`a` lies entirely on the better side of `b`'s interval (or value); a key without a direction (a copy
    share) counts higher as "better", i.e. more copying."""
    higher = HIGHER_IS_BETTER.get(key) is not False
    edge = (b.high if b.has_interval else b.value) if higher else (b.low if b.has_interval else b.value)
    worst = (a.low if a.has_interval else a.value) if higher else (a.high if a.has_interval else a.value)
    return worst > edge if higher else worst < edge


def sampler_ranking(records: list[dict]) -> Ranking | None:
    """The samplers of the evaluation rows (flat records) at the largest n, grouped and sorted; None without
    sampler rows."""
    samplers = [r for r in records if r.get("kind") == "sampler" and as_number(r.get("n")) is not None]
    if not samplers:
        return None
    n = int(max(as_number(r["n"]) or 0 for r in samplers))
    samplers = [r for r in samplers if as_number(r["n"]) == n]
    references = {str(r.get("name")): r for r in records if r.get("kind") == "reference"}
    same_n = {str(r.get("name")): r for r in records if r.get("kind") == "reference" and as_number(r.get("n")) == n}
    references.update(same_n)
    real = references.get(REAL_ROW, {})
    metric, ceiling_row = "", RECONSTRUCTION_ROW
    for key in QUALITY:
        if any(score_of(r, key) is not None for r in samplers):
            metric = key
            break
    ceiling = score_of(references.get(RECONSTRUCTION_ROW, {}), metric) if metric else None
    if ceiling is None and metric:  # a latent score: the held-out points themselves are the ceiling
        ceiling, ceiling_row = score_of(real, metric), REAL_ROW
    tested = table_rows([*references.values(), *samplers])
    ranked = []
    for record in samplers:
        name = str(record.get("name"))
        quality = score_of(record, metric) if metric else None
        group = "between"
        miss_key = next((k for k in MISS_SCORES if score_of(record, k) and score_of(real, k)), None)
        if _copies(record, real) or _flagged(record, tested):
            group = "copies"
        elif miss_key is not None and _misses(score_of(record, miss_key), score_of(real, miss_key)):
            group = "misses"
        elif (
            quality is not None
            and ceiling is not None
            and (_overlap(quality, ceiling) or _better(quality, ceiling, metric))
        ):
            group = "ceiling"
        ranked.append(RankedSampler(name, quality, group))
    higher = HIGHER_IS_BETTER.get(metric) is not False
    ranked.sort(key=lambda s: math.inf if s.quality is None else (-s.quality.value if higher else s.quality.value))
    best = next((s.name for s in ranked if s.group in ("ceiling", "between") and s.quality is not None), None)
    return Ranking(n, metric, ranked, ceiling, ceiling_row, score_of(real, metric) if metric else None, best)


def _copies(record: dict, real: dict) -> bool:
    key = next((k for k in COPY_SCORES if score_of(record, k) and score_of(real, k)), None)
    if key is not None:
        copy, level = score_of(record, key), score_of(real, key)
        return copy is not None and level is not None and _better(copy, level, "copy share")
    ratio = next((s for k in COPY_RATIOS if (s := score_of(record, k)) is not None), None)
    return ratio is not None and (ratio.high if ratio.has_interval else ratio.value) < COPY_RATIO


def table_rows(records: list[dict]) -> list[EvaluationRow]:
    """The records that parse as evaluation rows (a damaged one is skipped: the artifacts reader reports it)."""
    rows = []
    for record in records:
        try:
            rows.append(EvaluationRow.from_record(record))
        except (KeyError, TypeError, ValueError):
            continue  # a damaged record: the artifacts reader reports it
    return rows


def _flagged(record: dict, rows: list[EvaluationRow]) -> bool:
    """A copy test (C_T, authenticity) flags the row."""
    row = next((r for r in rows if r.kind == "sampler" and r.name == record.get("name")), None)
    return row is not None and copy_test(row, rows)[0] is True


def _misses(score: Interval | None, real: Interval | None) -> bool:
    if score is None or real is None:
        return False
    top = score.high if score.has_interval else score.value
    return top < MISS_FRACTION * real.value


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def ranking_sentence(ranking: Ranking | None, run: Path) -> str:
    if ranking is None:
        return f"No sampler has been evaluated yet: run `latentatlas evaluate {run}`."
    if not ranking.metric:
        return f"The evaluation at n = {ranking.n} has no quality score with which to rank its samplers."
    label = LABELS.get(ranking.metric, ranking.metric)
    parts = []
    ceiling = ranking.names("ceiling")
    reference = "the reconstruction ceiling" if ranking.ceiling_row == RECONSTRUCTION_ROW else "the held-out data"
    if ceiling:
        verb = "is" if len(ceiling) == 1 else "are"
        parts.append(f"{_names(ceiling)} {verb} indistinguishable from {reference} (95 % intervals overlap)")
    else:
        parts.append(f"no sampler reaches {reference}")
    copies, misses = ranking.names("copies"), ranking.names("misses")
    if copies:
        parts.append(
            f"{_names(copies)} {'copies' if len(copies) == 1 else 'copy'} training points "
            "(copy share above the held-out level, nearer to them than half the held-out distance, C_T "
            "significantly below 0 or authenticity below the held-out level)"
        )
    if misses:
        parts.append(
            f"{_names(misses)} {'misses' if len(misses) == 1 else 'miss'} the data "
            "(coverage or face rate below half the held-out level)"
        )
    best = f"; best: {ranking.best}" if ranking.best else ""
    return f"At n = {ranking.n}, by {label}: " + "; ".join(parts) + best + "."


__all__ = [
    "LABELS",
    "Interval",
    "interval_text",
    "RankedSampler",
    "Ranking",
    "as_number",
    "ranking_sentence",
    "sampler_ranking",
    "score_of",
]
