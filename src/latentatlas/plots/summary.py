"""The figures of a run's summary: labelled rows of images, and the samplers' quality with the reference
rows as lines. Each returns a matplotlib Figure; the report writes it (`figure_png`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from latentatlas.plots.base import plt

GROUP_COLOURS = {"ceiling": "tab:green", "between": "tab:blue", "copies": "tab:purple", "misses": "tab:red"}


def plot_labelled_rows(rows: Sequence[tuple[str, np.ndarray]], inch_per_image: float = 0.62) -> Figure:
    """One row of uint8 images (k, H, W, 3) per (label, images), the label left of its row."""
    if not rows:
        raise ValueError("no rows to draw")
    ncols = max(len(images) for _, images in rows)
    fig, axes = plt.subplots(
        len(rows),
        ncols,
        figsize=(1.6 + ncols * inch_per_image, len(rows) * inch_per_image + 0.1),
        squeeze=False,
        gridspec_kw={"wspace": 0.04, "hspace": 0.06, "left": 1.5 / (1.6 + ncols * inch_per_image)},
    )
    for r, (label, images) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                ax.imshow(images[c])
            else:
                ax.set_axis_off()
        axes[r][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=10, labelpad=6)
    return fig


def plot_sampler_ranking(
    names: Sequence[str],
    values: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    groups: Sequence[str],
    metric: str,
    references: Sequence[tuple[str, float, float, float]] = (),
) -> Figure:
    """Each sampler's score with its 95 % interval (one row each, best at the top, coloured by group) and
    each reference row (label, value, low, high) as a vertical line with its interval shaded."""
    fig, ax = plt.subplots(figsize=(5.0, max(1.6, 0.16 * len(names) + 0.75)))
    positions = np.arange(len(names))
    for y, value, low, high, group in zip(positions, values, lows, highs, groups):
        colour = GROUP_COLOURS.get(group, "tab:gray")
        error = None
        if np.isfinite(low) and np.isfinite(high):
            error = np.array([[value - low], [high - value]])
        ax.errorbar(value, y, xerr=error, fmt="o", color=colour, capsize=3, ms=5)
    styles = ("-", "--", ":")
    for (label, value, low, high), style in zip(references, styles):
        ax.axvline(value, color="black", linestyle=style, linewidth=1, label=label)
        if np.isfinite(low) and np.isfinite(high):
            ax.axvspan(low, high, color="black", alpha=0.08)
    ax.set_yticks(positions, list(names), fontsize=7)
    ax.tick_params(axis="x", labelsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(metric, fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    handles = [Line2D([], [], marker="o", ls="", color=GROUP_COLOURS[g], label=g) for g in GROUP_COLOURS if g in groups]
    if references:
        handles += ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=7, loc="best", frameon=False)
    return fig
