"""Figures of a run as a whole: its training curves, a latent path over the z-points, the UMAP map of the
bulk, and the sweep's bulk numbers across models. Each returns a matplotlib Figure; the pipeline or the
report that chose it writes it (`save_figure`, `figure_png`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from latentatlas.plots.analysis import plot_projection
from latentatlas.plots.base import plt


def plot_training_curves(epochs: np.ndarray | pd.Series, curves: Mapping[str, np.ndarray | pd.Series]) -> Figure:
    """Loss per epoch of each named curve (e.g. training, validation), on a log scale."""
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for name, values in curves.items():
        ax.plot(epochs, values, "-o", ms=3, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("reconstruction loss (MSE)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_path_projection(
    z: np.ndarray, plane: Sequence[int], centre: np.ndarray, path: np.ndarray, faces: np.ndarray | None = None
) -> Figure:
    """A latent path (black) over the z-points projected onto `plane`; the path points where the bool
    mask `faces` is set get a green ring (their decoded image shows a face)."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    plot_projection(ax, z, plane, centre=centre, path_points=path)
    if faces is not None and faces.any():
        ringed = path[faces]
        ax.scatter(
            ringed[:, plane[0]],
            ringed[:, plane[1]],
            s=90,
            facecolors="none",
            edgecolors="limegreen",
            linewidths=1.5,
            zorder=6,
            label="decodes to a face",
        )
    ax.legend(loc="best", fontsize=7)
    return fig


def plot_embedding(points: np.ndarray, values: pd.Series, name: str, numeric: bool) -> Figure:
    """2-D map coordinates (m, 2) coloured by one column's `values`: a colour scale when `numeric`, else
    one colour per value with a legend. The axes carry no ticks: a UMAP's coordinates mean nothing alone."""
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    if numeric:
        shown = ax.scatter(points[:, 0], points[:, 1], c=values.to_numpy(np.float64), s=4, cmap="viridis", alpha=0.7)
        fig.colorbar(shown, ax=ax, label=name)
    else:
        for value in sorted(values.dropna().unique(), key=str):
            rows = (values == value).to_numpy()
            ax.scatter(points[rows, 0], points[rows, 1], s=4, alpha=0.6, label=f"{name} = {value}")
        ax.legend(markerscale=3, fontsize=8)
    ax.set_xlabel("UMAP[0]")
    ax.set_ylabel("UMAP[1]")
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def plot_sweep(frame: pd.DataFrame, columns: Sequence[str]) -> Figure:
    """One panel per column of the sweep table against the latent dimension (log 2), one line per
    (source, batch norm)."""
    nrows = math.ceil(len(columns) / 3)
    fig, axes = plt.subplots(nrows, 3, figsize=(12, 3.25 * nrows), constrained_layout=True, squeeze=False)
    for ax in axes.flat[len(columns) :]:
        ax.set_visible(False)
    for ax, column in zip(axes.flat, columns):
        for _, group in frame.groupby(["source", "batch_norm"]):
            values = pd.to_numeric(group[column], errors="coerce")
            label = f"{group['source'].iloc[0]}, {'BN' if group['batch_norm'].iloc[0] else 'no BN'}"
            ax.plot(group["latent_dim"], values, "-o", label=label)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("latent dimension")
        ax.set_title(column.replace("_", " "))
    axes.flat[0].legend(fontsize=8)
    return fig
