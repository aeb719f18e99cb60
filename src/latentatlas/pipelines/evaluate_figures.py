"""The evaluation's figures: the leaderboard (quality vs. coverage with intervals), per-row score bars,
and the first decoded images of every row."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentatlas.evaluation.table import EvaluationRow, Score

PREVIEW = 8  # images per table row in samples.png


def _errorbar(score: Score) -> list[float]:
    if not score.has_interval:
        return [0.0, 0.0]
    return [score.value - score.low, score.high - score.value]


def _leaderboard(folder: Path, rows: list[EvaluationRow]) -> dict[str, str]:
    import matplotlib.pyplot as plt

    from latentatlas.plots import save_figure

    quality = next((key for key in ("cnn_face_rate", "face_rate", "precision") if key in rows[0].scores), "precision")
    fig, ax = plt.subplots(figsize=(7, 5))
    for row in rows:
        x, y = row.scores.get("coverage"), row.scores.get(quality)
        if x is None or y is None or not (np.isfinite(x.value) and np.isfinite(y.value)):
            continue
        reference = row.kind == "reference"
        ax.errorbar(
            x.value,
            y.value,
            xerr=np.array(_errorbar(x))[:, None],
            yerr=np.array(_errorbar(y))[:, None],
            fmt="s" if reference else "o",
            color="black" if reference else None,
            capsize=3,
        )
        ax.annotate(
            row.name + (" (reference)" if reference else ""),
            (x.value, y.value),
            fontsize=8,
            xytext=(4, 4),
            textcoords="offset points",
        )
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("coverage of the held-out z-points (variety)")
    ax.set_ylabel(f"{quality} (quality)")
    save_figure(fig, folder / "leaderboard.png")
    return {
        "file": "leaderboard.png",
        "caption": f"Samplers by quality ({quality}) and variety (latent coverage), 95 % intervals as bars; "
        "black squares are reference rows (the reconstruction row has no latent coverage)",
    }


def _score_bars(folder: Path, rows: list[EvaluationRow]) -> dict[str, str]:
    import matplotlib.pyplot as plt

    from latentatlas.plots import save_figure

    keys = [c for c in ("precision", "recall", "coverage", "inside_radius", "face_rate") if c in rows[0].scores]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) * len(keys) / 2 + 1.5))
    positions = np.arange(len(rows))
    height = 0.8 / len(keys)
    for i, key in enumerate(keys):
        values = np.nan_to_num([row.scores[key].value for row in rows], nan=0.0)
        ax.barh(positions + i * height, values, height=height, label=key)
    ax.set_yticks(positions + 0.4 - height / 2, [row.name for row in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("score (higher is closer to the held-out data)")
    ax.legend(loc="lower right", fontsize="small")
    save_figure(fig, folder / "scores.png")
    return {
        "file": "scores.png",
        "caption": "Per row: latent precision, recall and coverage against the held-out "
        "z-points, fraction inside the held-out radius range"
        + (", and face rate" if "face_rate" in keys else "")
        + " (reconstruction has no k-NN scores: its points are the held-out points)",
    }


def _previews(folder: Path, rows: list[EvaluationRow], previews: dict[str, np.ndarray]) -> dict[str, str]:
    from latentatlas.plots import save_image_grid

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
