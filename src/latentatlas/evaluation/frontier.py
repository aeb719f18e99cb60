"""The quality-novelty frontier: each sampler row's quality against its novelty, which rows copy, the best
operating point per sampler, and whether some sampler reaches the reconstruction ceiling without copying.

* quality: FID∞ where computed with an interval, else FID (all rows share one n, so its small-sample bias
  is shared), else FD-face, else latent precision (`QUALITY`: the first that some sampler row has with a
  95 % interval; the evaluation's FID∞ has none today, so FID decides); the ceiling is the reconstruction
  row's score (for latent precision, which the reconstruction row lacks, the held-out row's, as in the
  report's ranking);
* novelty: C_T in latent space, else among face embeddings, else the latent copy share (`NOVELTY`);
* copying (`copies`): a C_T whose whole 95 % interval lies below 0 (latent or face space), or an
  authenticity share whose interval lies entirely below the held-out level (the reconstruction row's,
  whose points are the held-out points); None when no such test scored the row;
* reaching the ceiling: the quality interval overlaps the ceiling's, or lies on its better side; latent
  precision alone rises as a sampler cools towards its mode (on celeba-10k, gaussian at T = 0.7: 0.998
  against the held-out row's 0.686), so with it the row must also keep its recall (`COMPANION`) at the
  held-out row's: the latent ceiling is two-sided;
* the best operating point of a sampler: its row (temperature) of best quality among those that do not
  copy (a row no copy test scored is not a candidate) and keep the companion score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from latentatlas.evaluation.score import Score
from latentatlas.evaluation.table import REAL_ROW, RECONSTRUCTION_ROW, EvaluationRow

QUALITY = ("fid_infinity", "fid", "fd_face", "precision")
LOWER_IS_BETTER = {"fid_infinity": True, "fid": True, "fd_face": True, "precision": False, "recall": False}
NOVELTY = ("latent_ct", "face_ct", "latent_copy_share", "face_copy_share")
COMPANION = {"precision": "recall"}  # a quality score that cooling inflates, and the score it must keep
CT_KEYS = ("latent_ct", "face_ct")
AUTHENTICITY_KEYS = ("latent_authenticity", "face_authenticity")
LABELS = {
    "fid_infinity": "FID∞",
    "fid": "FID",
    "fd_face": "FD-face",
    "precision": "latent precision",
    "recall": "latent recall",
    "latent_ct": "C_T (latent)",
    "face_ct": "C_T (faces)",
    "latent_copy_share": "latent copy share",
    "face_copy_share": "face copy share",
    "latent_authenticity": "latent authenticity",
    "face_authenticity": "face authenticity",
}


def _score(row: EvaluationRow | None, key: str) -> Score | None:
    score = row.scores.get(key) if row is not None else None
    return score if score is not None and score.value == score.value else None  # NaN: not computed


def _row(rows: Sequence[EvaluationRow], name: str) -> EvaluationRow | None:
    return next((row for row in rows if row.kind == "reference" and row.name == name), None)


def score_text(key: str, score: Score) -> str:
    """'FID∞ 123.6 [120.3, 126.9]' (the value alone without an interval)."""
    interval = f" [{score.low:.4g}, {score.high:.4g}]" if score.has_interval else ""
    return f"{LABELS.get(key, key)} {score.value:.4g}{interval}"


def quality_key(rows: Sequence[EvaluationRow]) -> str | None:
    """The quality score of the frontier: the first of QUALITY that some sampler row has with an interval."""
    present = {
        key for row in rows if row.kind == "sampler" for key in row.scores if (s := _score(row, key)) and s.has_interval
    }
    return next((key for key in QUALITY if key in present), None)


def novelty_key(rows: Sequence[EvaluationRow]) -> str | None:
    present = {key for row in rows if row.kind == "sampler" for key in row.scores if _score(row, key)}
    return next((key for key in NOVELTY if key in present), None)


def ceiling(rows: Sequence[EvaluationRow], quality: str) -> tuple[str, Score] | None:
    """(row name, score) of the quality ceiling: the reconstruction row's, else the held-out row's."""
    for name in (RECONSTRUCTION_ROW, REAL_ROW):
        score = _score(_row(rows, name), quality)
        if score is not None:
            return name, score
    return None


def copies(row: EvaluationRow, rows: Sequence[EvaluationRow]) -> tuple[bool | None, str]:
    """(whether the row copies its training points, the evidence); None: no copy test scored it."""
    held = _row(rows, RECONSTRUCTION_ROW)
    evidence, verdicts = [], []
    for key in CT_KEYS:
        score = _score(row, key)
        if score is not None and score.has_interval:
            verdicts.append(score.high < 0)
            evidence.append(score_text(key, score))
    for key in AUTHENTICITY_KEYS:
        score, level = _score(row, key), _score(held, key)
        if score is not None and level is not None and score.has_interval and level.has_interval:
            verdicts.append(score.high < level.low)
            evidence.append(f"{score_text(key, score)} vs. held-out {level.value:.3g}")
    if not verdicts:
        return None, "no copy test"
    return any(verdicts), ", ".join(evidence)


def reaches(score: Score, top: Score, quality: str) -> bool:
    """The quality interval overlaps the ceiling's or lies on its better side."""
    lower = LOWER_IS_BETTER[quality]
    low, high = (score.low, score.high) if score.has_interval else (score.value, score.value)
    top_low, top_high = (top.low, top.high) if top.has_interval else (top.value, top.value)
    return low <= top_high if lower else high >= top_low


@dataclass(frozen=True)
class OperatingPoint:
    """One sampler row on the frontier."""

    row: str  # the row's label, e.g. "gaussian T=0.85"
    sampler: str
    temperature: float
    quality: Score
    novelty: Score | None
    copies: bool | None
    copy_evidence: str
    keeps: bool = True  # keeps the companion score (recall, for latent precision) at the ceiling row's
    reencode: int = 0  # rounds of z <- encode(decode(z)) applied to the draws

    @property
    def setting(self) -> str:
        """'T = 0.95', or 'T = 0.95, re-encoded 2×' for a row whose draws were re-encoded."""
        return f"T = {self.temperature:g}" + (f", re-encoded {self.reencode}×" if self.reencode else "")


def _keeps(row: EvaluationRow, rows: Sequence[EvaluationRow], quality: str) -> bool:
    companion = COMPANION.get(quality)
    if companion is None:
        return True
    score, top = _score(row, companion), ceiling(rows, companion)
    return score is not None and top is not None and reaches(score, top[1], companion)


def operating_points(rows: Sequence[EvaluationRow]) -> tuple[str | None, str | None, list[OperatingPoint]]:
    """(quality key, novelty key, the sampler rows that have the quality score as operating points)."""
    quality, novelty = quality_key(rows), novelty_key(rows)
    points = []
    for row in rows:
        score = _score(row, quality) if quality else None
        if row.kind != "sampler" or score is None:
            continue
        copying, evidence = copies(row, rows)
        found = _score(row, novelty) if novelty else None
        keeps = _keeps(row, rows, quality)  # type: ignore[arg-type]  (quality is set when score is)
        points.append(
            OperatingPoint(row.name, row.sampler, row.temperature, score, found, copying, evidence, keeps, row.reencode)
        )
    return quality, novelty, points


def best_operating_points(rows: Sequence[EvaluationRow]) -> list[OperatingPoint]:
    """Per sampler (in the table's order): its row of best quality among those that do not copy."""
    quality, _, points = operating_points(rows)
    if quality is None:
        return []
    sign = 1.0 if LOWER_IS_BETTER[quality] else -1.0
    best: dict[str, OperatingPoint] = {}
    for point in points:
        if point.copies is not False or not point.keeps:
            continue
        known = best.get(point.sampler)
        if known is None or sign * point.quality.value < sign * known.quality.value:
            best[point.sampler] = point
    return list(best.values())


def frontier_lines(rows: Sequence[EvaluationRow]) -> list[str]:
    """The best operating point of each sampler, one sentence each."""
    quality, _, points = operating_points(rows)
    if quality is None:
        return []
    chosen = {point.sampler: point for point in best_operating_points(rows)}
    lines = []
    for sampler in dict.fromkeys(point.sampler for point in points):
        point = chosen.get(sampler)
        if point is None:
            tried = [p for p in points if p.sampler == sampler]
            why = [
                "copies" if p.copies else "no copy test" if p.copies is None else f"{COMPANION[quality]} lost"
                for p in tried
            ]
            reasons = ", ".join(f"{p.row}: {reason}" for p, reason in zip(tried, why))
            lines.append(f"{sampler}: no operating point without copying ({reasons})")
            continue
        lines.append(
            f"{sampler}: {point.setting} ({point.row}): {score_text(quality, point.quality)}; "
            f"not copying ({point.copy_evidence})"
        )
    return lines


@dataclass(frozen=True)
class CeilingVerdict:
    """Whether some sampler reaches the reconstruction ceiling without copying, and the numbers."""

    verdict: str  # "agrees" | "disagrees" | "undecided"
    quality: str
    ceiling_row: str
    ceiling: Score
    deciding: OperatingPoint | None  # the best row that reaches it without copying (or, else, the best row)
    evidence: str


def ceiling_verdict(rows: Sequence[EvaluationRow]) -> CeilingVerdict | None:
    """agrees: some sampler row reaches the ceiling and no copy test flags it; undecided: a row reaches it but
    no copy test scored it; disagrees: every row that reaches it copies, or none reaches it. None when not
    measured (no sampler row with a quality score, or no ceiling)."""
    quality, _, points = operating_points(rows)
    top = ceiling(rows, quality) if quality else None
    if quality is None or top is None or not points:
        return None
    name, level = top
    sign = 1.0 if LOWER_IS_BETTER[quality] else -1.0
    points = sorted(points, key=lambda point: sign * point.quality.value)
    at_ceiling = [point for point in points if reaches(point.quality, level, quality) and point.keeps]
    clean = [point for point in at_ceiling if point.copies is False]
    unknown = [point for point in at_ceiling if point.copies is None]
    line = f"the ceiling: {name} {score_text(quality, level)}"
    companion = COMPANION.get(quality)
    if companion is not None and (kept := ceiling(rows, companion)) is not None:
        line += f" with {score_text(companion, kept[1])} kept"
    if clean:
        point = clean[0]
        evidence = f"{point.row} {score_text(quality, point.quality)} within it, not copying ({point.copy_evidence})"
        return CeilingVerdict("agrees", quality, name, level, point, f"{evidence}; {line}")
    if unknown:
        point = unknown[0]
        evidence = f"{point.row} {score_text(quality, point.quality)} reaches it, but no copy test scored it"
        return CeilingVerdict("undecided", quality, name, level, point, f"{evidence}; {line}")
    if at_ceiling:
        copied = "; ".join(f"{p.row} copies ({p.copy_evidence})" for p in at_ceiling[:3])
        return CeilingVerdict("disagrees", quality, name, level, at_ceiling[0], f"{copied}; {line}")
    point = points[0]
    lost = "" if point.keeps else f" or without its {companion}"
    evidence = f"best {point.row} {score_text(quality, point.quality)} outside it{lost}"
    return CeilingVerdict("disagrees", quality, name, level, point, f"{evidence}; {line}")
