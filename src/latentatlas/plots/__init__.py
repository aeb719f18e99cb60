"""Figures from arrays, and the package's one headless matplotlib setup (`base`): image grids (`grids`),
the latent-space and analysis figures (`analysis`), an evaluation's score figures (`evaluation`), the
report summary's figures (`summary`) and the figures of a run as a whole (`runs`).
Pipelines and the report choose the figures and write them; `from latentatlas.plots import plt` gives
the headless pyplot."""

from latentatlas.plots.analysis import (
    NORMALITY_TESTS,
    draw_ellipses,
    plot_component_summary,
    plot_core_normality,
    plot_correlation_heatmap,
    plot_histogram_grid,
    plot_mahalanobis,
    plot_projection,
    plot_projection_grid,
    plot_radii,
    plot_regions,
    plot_spectrum,
)
from latentatlas.plots.base import ARTIFICIAL, CENTRE, ORIGIN, PATH, REAL, figure_png, plt, save_figure
from latentatlas.plots.evaluation import plot_grouped_bars, plot_interval_scatter, plot_leaderboard, spread_labels
from latentatlas.plots.grids import image_grid, save_image_grid, split_grid
from latentatlas.plots.runs import plot_embedding, plot_path_projection, plot_sweep, plot_training_curves
from latentatlas.plots.summary import plot_labelled_rows, plot_sampler_ranking

__all__ = [
    "ARTIFICIAL",
    "CENTRE",
    "NORMALITY_TESTS",
    "ORIGIN",
    "PATH",
    "REAL",
    "draw_ellipses",
    "figure_png",
    "image_grid",
    "plot_component_summary",
    "plot_core_normality",
    "plot_correlation_heatmap",
    "plot_embedding",
    "plot_grouped_bars",
    "plot_histogram_grid",
    "plot_interval_scatter",
    "plot_labelled_rows",
    "plot_leaderboard",
    "plot_mahalanobis",
    "plot_path_projection",
    "plot_projection",
    "plot_projection_grid",
    "plot_radii",
    "plot_regions",
    "plot_sampler_ranking",
    "plot_spectrum",
    "plot_sweep",
    "plot_training_curves",
    "plt",
    "save_figure",
    "save_image_grid",
    "split_grid",
    "spread_labels",
]
