"""The evaluation's figures: the leaderboard (a quality axis that separates samplers against a variety or
novelty axis, with intervals; reference rows as lines), per-row score bars, the first decoded images of
every row with its name, and those images as previews.npz for the report. This module picks the scores
and writes the files; the drawing is `plots`. Any set of columns works: a row without a score is left out
of the figure that needs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from latentatlas.evaluation.frontier import LABELS, LOWER_IS_BETTER, best_operating_points, operating_points
from latentatlas.evaluation.table import REAL_ROW, RECONSTRUCTION_ROW, EvaluationRow, Score
from latentatlas.io import atomic_path
from latentatlas.plots import plot_grouped_bars, plot_labelled_rows, plot_leaderboard, save_figure
from latentatlas.plots.evaluation import plot_frontier

PREVIEW = 8  # images per table row in samples.png
# The leaderboard's quality axis: the first of these any sampler has (they separate face-like samplers,
# where face rates are all near 1); latent precision when no image instrument ran.
QUALITY = ("fid_infinity", "fd_face", "fid")
VARIETY = {"fd_face": ("face_coverage", "coverage", "latent_copy_ratio")}
DEFAULT_VARIETY = ("coverage", "face_coverage", "latent_copy_ratio")
BARS = ("precision", "recall", "coverage", "inside_radius", "face_rate")


def _bar(score: Score) -> tuple[float, float]:
    """(below, above) the value: the 95 % interval as an error bar (none: zero)."""
    return (score.value - score.low, score.high - score.value) if score.has_interval else (0.0, 0.0)


def _finite(row: EvaluationRow, key: str) -> Score | None:
    score = row.scores.get(key)
    return score if score is not None and np.isfinite(score.value) else None


def leaderboard_axes(rows: list[EvaluationRow]) -> tuple[str, str] | None:
    """(quality, variety) column keys of the leaderboard, or None when no sampler has both."""
    samplers = [row for row in rows if row.kind == "sampler"]
    present = {key for row in samplers for key in row.scores if _finite(row, key)}
    quality = next((key for key in QUALITY if key in present), "precision")
    variety = next((key for key in VARIETY.get(quality, DEFAULT_VARIETY) if key in present and key != quality), None)
    if quality not in present or variety is None:
        return None
    return quality, variety


def _leaderboard(folder: Path, rows: list[EvaluationRow]) -> dict[str, str] | None:
    axes = leaderboard_axes(rows)
    if axes is None:
        return None
    quality, variety = axes
    points, references = [], []
    for row in rows:
        y = _finite(row, quality)
        if y is None:
            continue
        if row.kind == "reference":
            references.append({"label": row.name, "y": y.value, "low": y.low, "high": y.high})
            continue
        x = _finite(row, variety)
        if x is not None:
            points.append({"label": row.name, "x": x.value, "y": y.value, "x_bar": _bar(x), "y_bar": _bar(y)})
    lower = quality in QUALITY
    fig = plot_leaderboard(
        points,
        references,
        f"{variety} ({'novelty: 1 is new, below 1 copies' if variety == 'latent_copy_ratio' else 'variety'})",
        f"{quality} ({'lower' if lower else 'higher'} is better, at the top)",
        lower_is_better=lower,
    )
    save_figure(fig, folder / "leaderboard.png")
    return {
        "file": "leaderboard.png",
        "caption": f"Samplers by quality ({quality}) and {variety}, 95 % intervals as bars where computed; "
        "reference rows are horizontal lines at their quality, their interval shaded",
    }


def _frontier(folder: Path, rows: list[EvaluationRow]) -> dict[str, str] | None:
    """frontier.png: quality against novelty (C_T, else copy share) of every sampler row, a sampler's
    temperatures joined, the reconstruction ceiling and the real floor as lines; its caption states the best
    operating point of each sampler (`evaluation.frontier`)."""
    quality, novelty, points = operating_points(rows)
    drawn = [point for point in points if point.novelty is not None]
    if quality is None or novelty is None or not drawn:
        return None
    references = []
    for row in rows:
        score = _finite(row, quality) if row.name in (RECONSTRUCTION_ROW, REAL_ROW) else None
        if score is not None:
            label = f"{row.name}: {'ceiling' if row.name == RECONSTRUCTION_ROW else 'floor'}"
            references.append({"label": label, "y": score.value, "low": score.low, "high": score.high})
    marks = [
        {
            "label": point.row,
            "group": point.sampler + (f" reencode={point.reencode}" if point.reencode else ""),
            "temperature": point.temperature,
            "x": point.novelty.value,
            "y": point.quality.value,
            "x_bar": _bar(point.novelty),
            "y_bar": _bar(point.quality),
        }
        for point in drawn
        if point.novelty is not None
    ]
    ct = novelty.endswith("_ct")
    lower = LOWER_IS_BETTER[quality]
    fig = plot_frontier(
        marks,
        references,
        f"{LABELS[novelty]} ({'0: like unseen data, << 0 copies' if ct else 'share of copies'})",
        f"{LABELS[quality]} ({'lower' if lower else 'higher'} is better, at the top)",
        lower_is_better=lower,
        zero_line=ct,
    )
    save_figure(fig, folder / "frontier.png")
    best = best_operating_points(rows)
    stated = "; ".join(f"{point.sampler}: {point.setting}" for point in best) or "none without copying"
    n = rows[0].n if rows else 0
    return {
        "file": "frontier.png",
        "caption": f"The quality-novelty frontier at n = {n}: {LABELS[quality]} against {LABELS[novelty]} per "
        "sampler row (its temperatures joined, re-encoded rows apart), 95 % intervals as bars; the reconstruction "
        "ceiling and the real floor as lines. Best operating point per sampler (best quality without copying): "
        f"{stated}",
    }


def _score_bars(folder: Path, rows: list[EvaluationRow]) -> dict[str, str] | None:
    keys = [key for key in BARS if any(key in row.scores for row in rows)]
    if not keys:
        return None
    missing = Score(float("nan"))
    series = {key: [row.scores.get(key, missing).value for row in rows] for key in keys}
    fig = plot_grouped_bars([row.name for row in rows], series, "score (higher is closer to the held-out data)")
    save_figure(fig, folder / "scores.png")
    return {
        "file": "scores.png",
        "caption": "Per row: latent precision, recall and coverage against the held-out "
        "z-points, fraction inside the held-out radius range"
        + (", and face rate" if "face_rate" in keys else "")
        + " (a score not computed for a row is drawn as 0; reconstruction has no k-NN scores: its points are "
        "the held-out points)",
    }


def _samples(folder: Path, named: list[tuple[str, np.ndarray]]) -> dict[str, str]:
    save_figure(plot_labelled_rows(named), folder / "samples.png")
    order = ", ".join(name for name, _ in named)
    return {
        "file": "samples.png",
        "caption": f"The first {PREVIEW} images of each row, its name on the left, top to bottom: {order}",
    }


def _named_previews(rows: list[EvaluationRow], previews: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    return [(row.name, np.asarray(previews[row.name], dtype=np.uint8)) for row in rows if row.name in previews]


def write_figures(folder: Path, rows: list[EvaluationRow], previews: dict[str, np.ndarray]) -> list[dict[str, str]]:
    """leaderboard.png (when a sampler has a quality and a variety score), frontier.png (when a sampler has a
    quality and a novelty score), scores.png and, when images were decoded, samples.png; their captions."""
    named = _named_previews(rows, previews)
    figures = [
        _leaderboard(folder, rows),
        _frontier(folder, rows),
        _score_bars(folder, rows),
        _samples(folder, named) if named else None,
    ]
    return [figure for figure in figures if figure is not None]


def write_previews(folder: Path, rows: list[EvaluationRow], previews: dict[str, np.ndarray]) -> list[dict[str, str]]:
    """previews.npz: the images of samples.png as one uint8 array (k, H, W, 3) per row name (no pickle:
    `np.load(path, allow_pickle=False)` reads it), so the report can label its own rows; its caption."""
    named = _named_previews(rows, previews)
    if not named:
        return []
    with atomic_path(folder / "previews.npz") as tmp, open(tmp, "wb") as handle:
        arrays: dict[str, Any] = dict(named)
        np.savez(handle, **arrays)
    return [{"file": "previews.npz", "caption": "The first images of each row as uint8 arrays, keyed by row name"}]
