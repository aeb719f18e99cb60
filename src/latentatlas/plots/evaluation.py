"""Figures of an evaluation's rows: the leaderboard (samplers as points, reference rows as lines, labels in
a column of their own so that they never overlap), scores with their intervals, grouped score bars."""

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


def spread_labels(targets: Sequence[float], gap: float, low: float = 0.0, high: float = 1.0) -> list[float]:
    """Label positions as near as possible to `targets` (any order) with at least `gap` between neighbours:
    pushed down from the top, then back up from `low`; when they need more than `high - low` they run past
    `high` rather than overlap."""
    order = sorted(range(len(targets)), key=lambda i: -targets[i])
    placed = [0.0] * len(targets)
    previous = np.inf
    for i in order:  # top to bottom: never closer than gap to the label above
        previous = placed[i] = min(min(targets[i], high), previous - gap)
    following = low - gap
    for i in reversed(order):  # bottom to top: never below `low`, never closer than gap to the label below
        following = placed[i] = max(placed[i], following + gap)
    return placed


def plot_leaderboard(
    points: Sequence[dict],
    references: Sequence[dict],
    xlabel: str,
    ylabel: str,
    lower_is_better: bool,
) -> Figure:
    """Samplers as points with error bars against a quality axis (better at the top) and each reference row
    as a horizontal line at its quality with its interval shaded. Points are {"label", "x", "y", "x_bar",
    "y_bar"} (a bar is (below, above) the value; (0, 0): none; an optional "colour"), references {"label",
    "y", "low", "high"}. Every label sits in a column right of the axes with a leader line to its point or line."""
    count = len(points) + len(references)
    fig, ax = plt.subplots(figsize=(7.5, max(4.0, 0.24 * count + 1.6)))
    fig.subplots_adjust(left=0.11, right=0.64, top=0.95, bottom=0.12)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    values = [p["y"] - p["y_bar"][0] for p in points] + [p["y"] + p["y_bar"][1] for p in points]
    values += [r["y"] for r in references] + [v for r in references for v in (r["low"], r["high"]) if np.isfinite(v)]
    xs = [p["x"] - p["x_bar"][0] for p in points] + [p["x"] + p["x_bar"][1] for p in points]
    for limits, setter in ((values, ax.set_ylim), (xs, ax.set_xlim)):
        low, high = (min(limits), max(limits)) if limits else (0.0, 1.0)
        pad = 0.06 * (high - low) or 0.05 * (abs(high) or 1.0)
        setter(low - pad, high + pad)
    if lower_is_better:
        ax.invert_yaxis()  # the better samplers at the top either way
    labels = []  # (y of the thing in axes fraction, text, anchor in data or blended coordinates, colour)
    to_axes = ax.transAxes.inverted()
    for i, point in enumerate(points):
        colour = point.get("colour") or colours[i % len(colours)]
        ax.errorbar(
            point["x"],
            point["y"],
            xerr=np.array(point["x_bar"])[:, None],
            yerr=np.array(point["y_bar"])[:, None],
            fmt="o",
            color=colour,
            capsize=3,
        )
        y = to_axes.transform(ax.transData.transform((point["x"], point["y"])))[1]
        labels.append((y, point["label"], (point["x"], point["y"]), "data", colour))
    for style, reference in zip(("-", "--", ":", "-."), references):
        ax.axhline(reference["y"], color="black", linestyle=style, linewidth=1)
        if np.isfinite(reference["low"]) and np.isfinite(reference["high"]):
            ax.axhspan(reference["low"], reference["high"], color="black", alpha=0.08)
        y = to_axes.transform(ax.transData.transform((0.0, reference["y"])))[1]
        labels.append((y, reference["label"], (1.0, reference["y"]), ("axes fraction", "data"), "black"))
    height_pt = ax.get_window_extent().height * 72 / fig.dpi
    placed = spread_labels([label[0] for label in labels], gap=13.0 / height_pt)
    for (_, text, anchor, coords, colour), y in zip(labels, placed):
        ax.annotate(
            text,
            xy=anchor,
            xycoords=coords,
            xytext=(1.04, y),
            textcoords="axes fraction",
            va="center",
            fontsize=8,
            color=colour,
            annotation_clip=False,
            arrowprops={"arrowstyle": "-", "color": colour, "linewidth": 0.6, "alpha": 0.7},
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig


def plot_frontier(
    points: Sequence[dict],
    references: Sequence[dict],
    xlabel: str,
    ylabel: str,
    lower_is_better: bool,
    zero_line: bool,
) -> Figure:
    """The quality-novelty frontier: the leaderboard's drawing (`plot_leaderboard`: points with intervals,
    reference rows as lines, labels in their own column), each sampler's rows in one colour joined in order
    of temperature; points carry {"group", "temperature"} besides the leaderboard's keys. `zero_line`: a
    dotted vertical line at x = 0 (C_T of unseen data)."""
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    groups = list(dict.fromkeys(point["group"] for point in points))
    coloured = [{**point, "colour": colours[groups.index(point["group"]) % len(colours)]} for point in points]
    fig = plot_leaderboard(coloured, references, xlabel, ylabel, lower_is_better)
    ax = fig.axes[0]
    for group in groups:
        members = sorted((p for p in coloured if p["group"] == group), key=lambda p: p["temperature"])
        if len(members) > 1:
            xs, ys = [p["x"] for p in members], [p["y"] for p in members]
            ax.plot(xs, ys, color=members[0]["colour"], linewidth=1, alpha=0.6)
    if zero_line:
        ax.axvline(0.0, color="grey", linestyle=":", linewidth=1)
    return fig
