"""The report's nonlinear map of the bulk: a UMAP of (a seeded subsample of) the z-points, coloured by
one attribute or generating factor of the z-point metadata."""

from __future__ import annotations

import numpy as np
import pandas as pd

from latentatlas.embedding import MAX_FIT_POINTS, colour_columns, umap_embedding
from latentatlas.errors import LatentAtlasError
from latentatlas.io import data_uri
from latentatlas.plots import figure_png, plot_embedding
from latentatlas.report.blocks import Block, Figure, Heading, Text
from latentatlas.store import Run

# the class of a multi-class source (digits, synthetic classes), then CelebA attributes the seed's readers know
PREFERRED_COLUMNS = ("class", "Male", "Smiling", "Eyeglasses")
SEED = 0


def colour_column(metadata: pd.DataFrame) -> dict | None:
    """The column the map is coloured by: the class where the source has classes, a well-known CelebA
    attribute, else the first attribute or factor, else the subset (train / val)."""
    columns = colour_columns(metadata)
    for name in PREFERRED_COLUMNS:
        if name in columns:
            return columns[name]
    chosen = next((c for c in columns.values() if c["kind"] != "category"), None)
    return chosen or columns.get("subset")


def umap_blocks(run: Run, max_points: int = MAX_FIT_POINTS) -> list[Block]:
    """The heading, the figure and its caption; nothing when the run has no z-points yet."""
    try:
        z = run.zpoints()
        metadata = run.metadata()
    except LatentAtlasError:
        return []  # section 1 already names `latentatlas encode`
    if len(metadata) != len(z) or len(z) < 3:
        return [Text(f"No UMAP map: the z-point store has {len(z)} rows and its metadata {len(metadata)}.")]
    rows = np.arange(len(z))
    if len(z) > max_points:
        rows = np.sort(np.random.default_rng(SEED).choice(len(z), max_points, replace=False))
    points = umap_embedding(np.asarray(z[rows], dtype=np.float32), random_state=SEED)
    column = colour_column(metadata)
    heading = Heading("A nonlinear map of the bulk (UMAP)")
    if column is None:
        return [heading, Text("The z-point metadata has no attribute, factor or subset column to colour by.")]
    values = metadata[column["name"]].iloc[rows].reset_index(drop=True)
    caption = (
        f"UMAP of {len(rows)} of {len(z)} z-points (seed {SEED}), coloured by {column['name']}. UMAP keeps "
        "neighbourhoods, not distances or widths: read clusters and connections, not sizes."
    )
    figure = plot_embedding(points, values, column["name"], numeric=column["kind"] == "numeric")
    return [heading, Figure(data_uri(figure_png(figure)), caption)]
