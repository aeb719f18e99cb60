"""Figures of an evaluation's rows: scores with their intervals, grouped score bars."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from latentatlas.plots.base import plt


def plot_interval_scatter(
    points: Sequence[dict], xlabel: str, ylabel: str, limits: tuple[float, float] = (-0.02, 1.02)
) -> Figure:
    """Labelled points with error bars: each {"label", "x", "y", "x_bar", "y_bar", "reference"}, where a bar is
    (below, above) the value (0, 0: none) and reference points are black squares (others coloured circles)."""
    fig, ax = plt.subplots(figsize=(7, 5))
    for point in points:
        reference = bool(point.get("reference"))
        ax.errorbar(
            point["x"],
            point["y"],
            xerr=np.array(point["x_bar"])[:, None],
            yerr=np.array(point["y_bar"])[:, None],
            fmt="s" if reference else "o",
            color="black" if reference else None,
            capsize=3,
        )
        ax.annotate(point["label"], (point["x"], point["y"]), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xlim(*limits)
    ax.set_ylim(*limits)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig


def plot_grouped_bars(labels: Sequence[str], series: dict[str, list[float]], xlabel: str) -> Figure:
    """Horizontal bars in [0, 1]: one group per label (top to bottom), one bar per series (NaN drawn as 0)."""
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(labels) * len(series) / 2 + 1.5))
    positions = np.arange(len(labels))
    height = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        ax.barh(
            positions + i * height, np.nan_to_num(np.asarray(values, dtype=float), nan=0.0), height=height, label=name
        )
    ax.set_yticks(positions + 0.4 - height / 2, list(labels))
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(xlabel)
    ax.legend(loc="lower right", fontsize="small")
    return fig
