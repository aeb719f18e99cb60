"""Figures: grids are laid out exactly, ellipses are drawn with the right geometry, figures are written at their
size and show their data in the expected colours where the data is."""

from __future__ import annotations

import io
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.colors import to_rgb
from PIL import Image

from latentatlas import plots
from latentatlas.analysis import confidence_ellipse
from latentatlas.errors import LatentAtlasError


def read_png(path) -> np.ndarray:
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        return np.asarray(picture.convert("RGB")).astype(np.int16)


def rgb(colour, alpha: float = 1.0) -> np.ndarray:
    """A matplotlib colour as 0-255 RGB, drawn with `alpha` over white."""
    return np.round(255 * (alpha * np.asarray(to_rgb(colour)) + (1 - alpha))).astype(np.int16)


def mask(pixels: np.ndarray, colour: np.ndarray, tolerance: int = 2) -> np.ndarray:
    return np.abs(pixels - colour).max(axis=-1) <= tolerance


@pytest.mark.parametrize("n,ncols,shape", [(4, None, (2, 2)), (5, 2, (3, 2)), (3, 5, (1, 5))])
def test_image_grid_layout(n: int, ncols: int | None, shape: tuple[int, int]) -> None:
    images = np.stack([np.full((4, 6, 3), 10 * (i + 1), np.uint8) for i in range(n)])
    grid = plots.image_grid(images, ncols=ncols, pad=2)
    rows, cols = shape
    assert grid.shape == (rows * 6 + 2, cols * 8 + 2, 3)
    for i in range(n):
        r, c = divmod(i, cols)
        tile = grid[2 + r * 6 : 2 + r * 6 + 4, 2 + c * 8 : 2 + c * 8 + 6]
        assert np.all(tile == 10 * (i + 1))
    assert np.all(grid[0] == 255)  # white gutter


@pytest.mark.parametrize(
    "bad", [np.zeros((0, 4, 4, 3), np.uint8), np.zeros((2, 4, 4), np.uint8), np.zeros((2, 4, 4, 3), np.float32)]
)
def test_image_grid_rejects_bad_input(bad: np.ndarray) -> None:
    with pytest.raises(LatentAtlasError):
        plots.image_grid(bad)


def test_save_image_grid_scales(tmp_path) -> None:
    images = np.zeros((2, 4, 4, 3), np.uint8)
    plots.save_image_grid(images, tmp_path / "g.png", ncols=2, scale=3)
    with Image.open(tmp_path / "g.png") as picture:
        assert picture.size == (3 * (2 * 6 + 2), 3 * 8)
    assert [p.name for p in tmp_path.iterdir()] == ["g.png"]  # no temporary left behind


@pytest.mark.parametrize("angle,axes", [(30.0, (3.0, 1.0)), (-75.0, (2.0, 0.5))])
def test_draw_ellipses_geometry(angle: float, axes: tuple[float, float]) -> None:
    theta = math.radians(angle)
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    cov = rotation @ np.diag(np.square(axes)) @ rotation.T
    ellipses = [confidence_ellipse([1.0, 2.0], cov, c) for c in (0.5, 0.9)]
    fig, ax = plt.subplots()
    plots.draw_ellipses(ax, ellipses)
    assert len(ax.patches) == 2
    for patch, confidence in zip(ax.patches, (0.5, 0.9)):
        radius = math.sqrt(-2 * math.log(1 - confidence))
        assert patch.width == pytest.approx(2 * axes[0] * radius)
        assert patch.height == pytest.approx(2 * axes[1] * radius)
        assert patch.angle == pytest.approx(angle)
        assert tuple(patch.center) == pytest.approx((1.0, 2.0))
    plt.close(fig)


def test_save_figure_writes_the_figure_at_its_dpi_and_figure_png_crops_it(tmp_path) -> None:
    colours = np.array([[[255, 0, 0], [0, 0, 255]], [[0, 128, 0], [255, 255, 255]]], np.uint8)

    def quadrants():
        fig = plt.figure(figsize=(4, 3))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.imshow(colours, interpolation="nearest", aspect="auto")
        ax.set_axis_off()
        return fig

    plots.save_figure(quadrants(), tmp_path / "full.png", dpi=50, tight=False)
    full = read_png(tmp_path / "full.png")
    assert full.shape == (150, 200, 3)  # 4 x 3 inches at 50 dpi
    for (y, x), colour in zip([(30, 40), (30, 160), (120, 40), (120, 160)], colours.reshape(-1, 3)):
        assert tuple(full[y, x]) == tuple(colour)
    assert [p.name for p in tmp_path.iterdir()] == ["full.png"]  # no temporary left behind
    # the tight crop keeps the figure and adds matplotlib's 0.1-inch white margin (5 pixels at 50 dpi)
    tight = np.asarray(Image.open(io.BytesIO(plots.figure_png(quadrants(), dpi=50))).convert("RGB")).astype(np.int16)
    assert tight.shape == (160, 210, 3)
    assert np.all(tight[:5] == 255) and np.all(tight[:, :5] == 255)
    np.testing.assert_array_equal(tight[5:155, 5:205], full)
    assert plt.get_fignums() == []  # both writers close their figure


def test_projection_grid_draws_each_panel(tmp_path) -> None:
    rng = np.random.default_rng(0)
    z = rng.standard_normal((300, 5)) + 2.0
    centre = z.mean(axis=0)
    ellipses = [confidence_ellipse(centre[[0, 1]], np.cov(z[:, [0, 1]], rowvar=False), 0.9)]
    planes = [
        {"plane": (0, 1), "ellipses": ellipses, "subtitle": "dominant"},
        {"plane": (2, 4), "z": z[:10], "artificial": z[:3] * 0},
    ]
    fig = plots.plot_projection_grid(
        planes, z, centre, artificial=z[:5], path_points=np.linspace(0, 1, 4)[:, None] * centre
    )
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 2
    assert visible[0].get_xlabel() == "z[0]" and visible[1].get_ylabel() == "z[4]"
    # the second panel shows only its own 10 points
    assert len(visible[1].collections[0].get_offsets()) == 10
    plots.save_figure(fig, tmp_path / "projection.png")
    pixels = read_png(tmp_path / "projection.png")
    width = pixels.shape[1]
    # the origin (gold) and the centre (orange) are drawn in both panels, side by side
    for colour in (plots.ORIGIN, plots.CENTRE):
        columns = np.flatnonzero(mask(pixels, rgb(colour)).any(axis=0))
        assert len(columns) and columns.min() < width / 2 < columns.max(), colour


def test_analysis_figures_show_their_data(tmp_path) -> None:
    rng = np.random.default_rng(0)
    z = rng.standard_normal((300, 5)) + 2.0
    centre = z.mean(axis=0)
    counts = np.stack([np.histogram(z[:, j], bins=10)[0] for j in range(5)])
    edges = np.stack([np.histogram(z[:, j], bins=10)[1] for j in range(5)])
    figures = {
        "hist.png": plots.plot_histogram_grid([0, 3], edges, counts, centre, z.std(axis=0), highlight=[3], ncols=4),
        "summary.png": plots.plot_component_summary(centre, z.std(axis=0), [1]),
        "corr.png": plots.plot_correlation_heatmap(np.corrcoef(z, rowvar=False)),
        "pca.png": plots.plot_spectrum(np.array([0.5, 0.3, 0.1, 0.07, 0.03]), 3, 5),
        "radii.png": plots.plot_radii(
            np.linalg.norm(z, axis=1), [{"b": 1.0, "theory_mean": 1.2, "simulated_radii": rng.random(100)}]
        ),
        "maha.png": plots.plot_mahalanobis(np.sort(rng.chisquare(5, 300)), 5, origin_sq=4.0),
    }
    assert sum(ax.get_visible() for ax in figures["hist.png"].axes) == 2
    for name, figure in figures.items():
        plots.save_figure(figure, tmp_path / name)
    pixels = {name: read_png(tmp_path / name) for name in figures}
    for name, figure_pixels in pixels.items():
        assert min(figure_pixels.shape[:2]) > 150, name  # written whole, at the default 110 dpi
    # histograms: bars filled in the real z-points' blue (drawn at alpha 0.6), in both visible panels
    hist = mask(pixels["hist.png"], rgb(plots.REAL, 0.6))
    assert hist.mean() > 0.05
    columns = np.flatnonzero(hist.any(axis=0))
    assert len(columns) and columns.min() < pixels["hist.png"].shape[1] / 2 < columns.max()
    assert mask(pixels["radii.png"], rgb(plots.REAL, 0.6)).mean() > 0.02
    assert mask(pixels["maha.png"], rgb(plots.REAL, 0.6)).mean() > 0.02
    # the dominant component's marker in red beside the others in blue
    assert mask(pixels["summary.png"], rgb(plots.ARTIFICIAL)).sum() > 5
    assert mask(pixels["summary.png"], rgb(plots.REAL)).sum() > 20
    # the correlation matrix: 5 diagonal cells at r = 1 (dark red), the independent pairs near r = 0 (grey)
    cmap = colormaps["coolwarm"]
    diagonal = mask(pixels["corr.png"], rgb(cmap(1.0)), tolerance=3).sum()
    near_zero = mask(pixels["corr.png"], rgb(cmap(0.5)), tolerance=12).sum()
    assert diagonal > 1000 and near_zero > 3 * diagonal
    # the spectrum: blue points and lines in both panels
    blue = mask(pixels["pca.png"], rgb(plots.REAL), tolerance=40)
    columns = np.flatnonzero(blue.any(axis=0))
    assert len(columns) and columns.min() < pixels["pca.png"].shape[1] / 2 < columns.max()
