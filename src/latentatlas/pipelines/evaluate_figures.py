"""The evaluation's figures: the leaderboard (quality vs. coverage with intervals), per-row score bars,
and the first decoded images of every row. This module picks the scores and writes the files; the drawing
is `plots`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentatlas.evaluation.table import EvaluationRow, Score
from latentatlas.plots import plot_grouped_bars, plot_interval_scatter, save_figure, save_image_grid

PREVIEW = 8  # images per table row in samples.png


def _bar(score: Score) -> tuple[float, float]:
    """(below, above) the value: the 95 % interval as an error bar (none: zero)."""
    return (score.value - score.low, score.high - score.value) if score.has_interval else (0.0, 0.0)


def _leaderboard(folder: Path, rows: list[EvaluationRow]) -> dict[str, str]:
    quality = next((key for key in ("cnn_face_rate", "face_rate", "precision") if key in rows[0].scores), "precision")
    points = []
    for row in rows:
        x, y = row.scores.get("coverage"), row.scores.get(quality)
        if x is None or y is None or not (np.isfinite(x.value) and np.isfinite(y.value)):
            continue
        reference = row.kind == "reference"
        label = row.name + (" (reference)" if reference else "")
        points.append(
            {"label": label, "x": x.value, "y": y.value, "x_bar": _bar(x), "y_bar": _bar(y), "reference": reference}
        )
    fig = plot_interval_scatter(points, "coverage of the held-out z-points (variety)", f"{quality} (quality)")
    save_figure(fig, folder / "leaderboard.png")
    return {
        "file": "leaderboard.png",
        "caption": f"Samplers by quality ({quality}) and variety (latent coverage), 95 % intervals as bars; "
        "black squares are reference rows (the reconstruction row has no latent coverage)",
    }


def _score_bars(folder: Path, rows: list[EvaluationRow]) -> dict[str, str]:
    keys = [c for c in ("precision", "recall", "coverage", "inside_radius", "face_rate") if c in rows[0].scores]
    series = {key: [row.scores[key].value for row in rows] for key in keys}
    fig = plot_grouped_bars([row.name for row in rows], series, "score (higher is closer to the held-out data)")
    save_figure(fig, folder / "scores.png")
    return {
        "file": "scores.png",
        "caption": "Per row: latent precision, recall and coverage against the held-out "
        "z-points, fraction inside the held-out radius range"
        + (", and face rate" if "face_rate" in keys else "")
        + " (reconstruction has no k-NN scores: its points are the held-out points)",
    }


def _previews(folder: Path, rows: list[EvaluationRow], previews: dict[str, np.ndarray]) -> dict[str, str]:
    grid = []
    for row in rows:
        images = previews.get(row.name)
        if images is None:
            continue
        filler = np.full((PREVIEW - len(images), *images.shape[1:]), 255, np.uint8)
        grid += [images, filler]
    save_image_grid(
        np.concatenate(grid), folder / "samples.png", ncols=PREVIEW, scale=2 if grid[0].shape[1] <= 64 else 1
    )
    order = ", ".join(row.name for row in rows if row.name in previews)
    return {
        "file": "samples.png",
        "caption": f"The first {PREVIEW} images of each row, one row each, top to bottom: {order}",
    }


def write_figures(folder: Path, rows: list[EvaluationRow], previews: dict[str, np.ndarray]) -> list[dict[str, str]]:
    """leaderboard.png, scores.png and, when images were decoded, samples.png; their captions."""
    figures = [_leaderboard(folder, rows), _score_bars(folder, rows)]
    if previews:
        figures.append(_previews(folder, rows, previews))
    return figures
