"""The package's one matplotlib setup (headless), the seed's colours and the figure writers (atomic)."""

from __future__ import annotations

import io
import os

import matplotlib

matplotlib.use("Agg")  # headless: figures go to files, never to a window
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from latentatlas.io import atomic_path  # noqa: E402

# The seed's colours: real z-points blue, origin yellow, centre orange, artificial points red.
REAL, ORIGIN, CENTRE, ARTIFICIAL, PATH = "tab:blue", "gold", "darkorange", "red", "black"


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 110, tight: bool = True) -> None:
    """Write `fig` as a PNG (cropped to its content unless `tight=False`) and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    plt.close(fig)


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """`fig` as PNG bytes cropped to its content (for a data URI), and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()
