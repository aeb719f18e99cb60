"""Figures: grids are laid out exactly, ellipses are drawn with the right geometry, files are complete PNGs."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from latentatlas import plots
from latentatlas.analysis import confidence_ellipse
from latentatlas.errors import LatentAtlasError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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


def test_projection_grid_and_analysis_figures_write_pngs(tmp_path) -> None:
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
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC
    assert (tmp_path / "projection.png").read_bytes()[:8] == PNG_MAGIC
