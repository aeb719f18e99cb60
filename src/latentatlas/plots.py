"""Figures: image grids and the seed's projection plots. All writers are atomic."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # headless: figures go to files, never to a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from latentatlas.errors import LatentAtlasError  # noqa: E402
from latentatlas.files import atomic_path  # noqa: E402

# The seed's colours: real z-points blue, origin yellow, centre orange, artificial points red.
REAL, ORIGIN, CENTRE, ARTIFICIAL, PATH = "tab:blue", "gold", "darkorange", "red", "black"


def image_grid(images: np.ndarray, ncols: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile uint8 images (n, H, W, 3) into one uint8 picture with white gutters."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise LatentAtlasError(f"expected a non-empty uint8 array (n, H, W, 3), got {images.dtype} {images.shape}")
    n, h, w, _ = images.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = img
    return grid


def save_image_grid(images: np.ndarray, path: str | os.PathLike, ncols: int | None = None, scale: int = 1) -> None:
    """Write uint8 images (n, H, W, 3) as one PNG grid; `scale` enlarges small images (nearest neighbour)."""
    picture = Image.fromarray(image_grid(images, ncols))
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")


def save_figure(fig: plt.Figure, path: str | os.PathLike, dpi: int = 110) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def plot_projection(
    ax: plt.Axes,
    z: np.ndarray,
    plane: Sequence[int],
    centre: np.ndarray | None = None,
    artificial: np.ndarray | None = None,
    path_points: np.ndarray | None = None,
    max_points: int = 5000,
    seed: int = 0,
) -> None:
    """Orthogonal projection onto coordinate plane (j1, j2), in the seed's style.

    Real z-points blue (a random subset of `max_points`), origin yellow, centre orange,
    artificial points red, path points black joined by a line. Axes keep their own scales.
    """
    j1, j2 = plane
    if len(z) > max_points:
        z = z[np.random.default_rng(seed).choice(len(z), max_points, replace=False)]
    ax.scatter(z[:, j1], z[:, j2], s=2, c=REAL, alpha=0.35, linewidths=0, label=f"real z-points ({len(z)})")
    if artificial is not None and len(artificial):
        ax.scatter(artificial[:, j1], artificial[:, j2], s=6, c=ARTIFICIAL, label=f"artificial ({len(artificial)})")
    if path_points is not None and len(path_points):
        ax.plot(path_points[:, j1], path_points[:, j2], "-o", c=PATH, ms=3, lw=1, label="path")
    ax.scatter([0], [0], s=60, c=ORIGIN, edgecolors="k", zorder=5, label="origin")
    if centre is not None:
        ax.scatter([centre[j1]], [centre[j2]], s=60, c=CENTRE, edgecolors="k", zorder=5, label="centre")
    ax.set_xlabel(f"z[{j1}]")
    ax.set_ylabel(f"z[{j2}]")
    ax.set_title(f"plane ({j1}, {j2})")
