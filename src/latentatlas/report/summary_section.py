"""The report's first section: the run's `Summary` (report/summary.py) with its two figures, the samplers'
quality against the reference rows and the best sampler's images beside real images and reconstructions.

The images come from what the other commands wrote: real held-out images and their own reconstructions from
reconstructions.png (pairs, column by column); the evaluation's rows from its previews.npz (else cut from
samples.png, whose caption lists its rows); else the best sampler's grid.png. They are drawn again with a
label on every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.table import REAL_ROW, RECONSTRUCTION_ROW
from latentatlas.io import data_uri
from latentatlas.plots import figure_png, plot_labelled_rows, plot_sampler_ranking, split_grid
from latentatlas.report.artifacts import Problems, as_dict, read_samples
from latentatlas.report.blocks import Figure
from latentatlas.report.ranking import LABELS
from latentatlas.report.summary import Artifacts, Summary, read_artifacts, run_summary
from latentatlas.store import Run

SHOWN_IMAGES = 8  # images per labelled row
ROWS_MARKER = "top to bottom: "  # the evaluation's samples.png caption lists its rows after this


@dataclass(frozen=True)
class SummaryView:
    """What the template shows at the top of the page."""

    summary: Summary
    ranking_figure: Figure | None
    images: Figure | None


def _tiles(path, tile: int) -> np.ndarray | None:
    """The picture's tiles (rows, cols, tile, tile, 3); None when it cannot be read as such a grid."""
    try:
        with Image.open(path) as picture:
            return split_grid(np.asarray(picture.convert("RGB")), tile)
    except (OSError, ValueError, LatentAtlasError):
        return None


def _preview_rows(path: Path, tile: int) -> dict[str, np.ndarray]:
    """{row name: its first images (k, tile, tile, 3) uint8} from the evaluation's previews.npz; {} when the
    file cannot be read as such (an evaluation written before previews.npz existed falls back to samples.png)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: np.asarray(archive[name]) for name in archive.files}
    except (OSError, ValueError, KeyError, EOFError):
        return {}
    shape_ok = all(a.dtype == np.uint8 and a.ndim == 4 and a.shape[1:] == (tile, tile, 3) for a in arrays.values())
    return {name: a[:SHOWN_IMAGES] for name, a in arrays.items()} if shape_ok else {}


def _filled(images: np.ndarray) -> np.ndarray:
    """Drop the white fillers that pad a grid's last row."""
    return np.asarray([image for image in images if image.min() < 255])


def image_rows(run: Run, artifacts: Artifacts, best: str | None, problems: Problems) -> list[tuple[str, np.ndarray]]:
    """(label, images) for the real images, their reconstructions and the best sampler's images, from the
    files that exist."""
    config = problems.read_json(run.path / "config.json") or {}
    tile = as_dict(config.get("model")).get("image_size")
    if not isinstance(tile, int):
        return []
    evaluation = artifacts.evaluation
    rows = _preview_rows(evaluation.previews, tile) if evaluation is not None and evaluation.previews else {}
    previews = next((f for f in (evaluation.figures if evaluation else []) if f.path.name == "samples.png"), None)
    if not rows and previews is not None and ROWS_MARKER in previews.caption:
        names = [n.strip() for n in previews.caption.split(ROWS_MARKER, 1)[1].split(", ")]
        tiles = _tiles(previews.path, tile)
        if tiles is not None and len(tiles) == len(names):
            rows = {name: _filled(tiles[i][:SHOWN_IMAGES]) for i, name in enumerate(names)}
    # reconstructions.png pairs each real image with its own reconstruction (the evaluation's two reference
    # rows show different images), so it goes first where it exists.
    recon = run.path / "reconstructions.png"
    tiles = _tiles(recon, tile) if recon.is_file() else None
    if tiles is not None and len(tiles) >= 2:
        rows[REAL_ROW] = _filled(tiles[0][:SHOWN_IMAGES])
        rows[RECONSTRUCTION_ROW] = _filled(tiles[1][:SHOWN_IMAGES])
    if best is not None and best not in rows:
        sample = next((s for s in read_samples(run.path / "samples", problems) if s.sampler == best), None)
        grid = next((f for f in (sample.figures if sample else []) if f.path.name == "grid.png"), None)
        tiles = _tiles(grid.path, tile) if grid is not None else None
        if tiles is not None:
            rows[best] = _filled(tiles.reshape(-1, *tiles.shape[2:])[:SHOWN_IMAGES])
    shown = [(REAL_ROW, "real (held-out)"), (RECONSTRUCTION_ROW, "reconstruction")]
    if best is not None:
        shown.append((best, f"{best} (best sampler)"))
    return [(label, rows[name]) for name, label in shown if name in rows and len(rows[name])]


def _ranking_figure(summary: Summary) -> Figure | None:
    ranking = summary.ranking
    scored = [s for s in ranking.samplers if s.quality is not None] if ranking else []
    if ranking is None or not scored:
        return None
    references = []
    for name, score in ((ranking.ceiling_row, ranking.ceiling), (REAL_ROW, ranking.real)):
        if score is not None and all(name != label for label, *_ in references):
            references.append((name, score.value, score.low, score.high))
    label = LABELS.get(ranking.metric, ranking.metric)
    figure = plot_sampler_ranking(
        [s.name for s in scored],
        [s.quality.value for s in scored if s.quality],
        [s.quality.low for s in scored if s.quality],
        [s.quality.high for s in scored if s.quality],
        [s.group for s in scored],
        f"{label} at n = {ranking.n} (95 % intervals)",
        references,
    )
    caption = (
        f"The samplers by {label} at n = {ranking.n}, best at the top; coloured by what the sentence says of "
        f"them; reference rows as lines"
    )
    return Figure(data_uri(figure_png(figure)), caption)


def summary_view(run: Run, problems: Problems) -> SummaryView:
    artifacts = read_artifacts(run, problems)
    summary = run_summary(artifacts)
    best = summary.ranking.best if summary.ranking else None
    rows = image_rows(run, artifacts, best, problems)
    images = None
    if rows:
        labels = ", ".join(label for label, _ in rows)
        images = Figure(data_uri(figure_png(plot_labelled_rows(rows))), f"One row each, top to bottom: {labels}")
    return SummaryView(summary, _ranking_figure(summary), images)
