"""Figures of the latent space and of the analysis: the seed's projection plots, histograms, spectra,
distances and regions. Each takes arrays and returns a matplotlib Figure; `base.save_figure` writes it."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse
from scipy import stats

from latentatlas.plots.base import ARTIFICIAL, CENTRE, ORIGIN, PATH, REAL, plt


def plot_projection(
    ax: Axes,
    z: np.ndarray,
    plane: Sequence[int],
    centre: np.ndarray | None = None,
    artificial: np.ndarray | None = None,
    path_points: np.ndarray | None = None,
    max_points: int = 5000,
    seed: int = 0,
    point_size: float = 2.0,
    alpha: float = 0.35,
) -> None:
    """Orthogonal projection onto coordinate plane (j1, j2), in the seed's style.

    Real z-points blue (a random subset of `max_points`; `point_size`, `alpha` for their markers), origin
    yellow, centre orange, artificial points red, path points black joined by a line. Axes keep their own scales.
    """
    j1, j2 = plane
    if len(z) > max_points:
        z = z[np.random.default_rng(seed).choice(len(z), max_points, replace=False)]
    ax.scatter(z[:, j1], z[:, j2], s=point_size, c=REAL, alpha=alpha, linewidths=0, label=f"real z-points ({len(z)})")
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


# ----------------------------------------------------------------------------- analysis figures


def draw_ellipses(ax: Axes, ellipses: Sequence[dict], color: str = "black") -> None:
    """Outline confidence ellipses ({"centre", "half_axes", "angle_deg", "confidence"}) on an axes."""
    styles = ["-", "--", ":", "-."]
    for k, e in enumerate(ellipses):
        patch = Ellipse(
            e["centre"],
            2 * e["half_axes"][0],
            2 * e["half_axes"][1],
            angle=e["angle_deg"],
            fill=False,
            ec=color,
            lw=1.1,
            ls=styles[k % len(styles)],
            label=f"{100 * e['confidence']:g} % ellipse" if "confidence" in e else None,
        )
        ax.add_patch(patch)


def _panel_grid(count: int, ncols: int, size: float = 2.6) -> tuple[Figure, np.ndarray]:
    ncols = max(1, min(ncols, count))
    nrows = max(1, math.ceil(count / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * 0.8 * nrows), squeeze=False)
    for ax in axes.ravel()[count:]:
        ax.set_visible(False)
    return fig, axes.ravel()


def plot_histogram_grid(
    components: Sequence[int],
    edges: np.ndarray,
    counts: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    hwhm: np.ndarray | None = None,
    highlight: Sequence[int] = (),
    ncols: int = 6,
) -> Figure:
    """Histograms (as densities) of chosen components with their fitted Gaussians; `highlight` in red titles."""
    fig, axes = _panel_grid(len(components), ncols)
    highlighted = {int(j) for j in highlight}
    for ax, j in zip(axes, components):
        widths = np.diff(edges[j])
        total = counts[j].sum()
        density = counts[j] / (total * widths) if total > 0 else counts[j]
        ax.stairs(density, edges[j], fill=True, color=REAL, alpha=0.6)  # one patch, not one per bar
        x = np.linspace(edges[j][0], edges[j][-1], 200)
        if std[j] > 0:
            ax.plot(x, np.exp(-0.5 * ((x - mean[j]) / std[j]) ** 2) / (std[j] * math.sqrt(2 * math.pi)), c="k", lw=1)
        ax.axvline(0.0, c=ORIGIN, lw=1)
        label = f"z[{j}]  μ={mean[j]:.2f} σ={std[j]:.2f}"
        if hwhm is not None and np.isfinite(hwhm[j]):
            label += f"\nHWHM={hwhm[j]:.2f} (Gauss {std[j] * math.sqrt(2 * math.log(2)):.2f})"
        ax.set_title(label, fontsize=7, color="red" if int(j) in highlighted else "black")
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    return fig


def plot_component_summary(mean: np.ndarray, std: np.ndarray, dominant: Sequence[int] = ()) -> Figure:
    """Every component's mean with a ±1 std bar; dominant components in red."""
    n = len(mean)
    fig, ax = plt.subplots(figsize=(min(24, max(6, n / 12)), 3.6))
    index = np.arange(n)
    ax.errorbar(index, mean, yerr=std, fmt="o", ms=2, lw=0.6, c=REAL, label="mean ± std")
    if len(dominant):
        d = np.asarray(dominant)
        ax.errorbar(d, mean[d], yerr=std[d], fmt="o", ms=3, lw=0.9, c=ARTIFICIAL, label="dominant")
    ax.axhline(0.0, c="gray", lw=0.6)
    ax.set_xlabel("component j")
    ax.set_ylabel("z[j]")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_correlation_heatmap(corr: np.ndarray) -> Figure:
    n = len(corr)
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(corr, cmap="coolwarm", vmin=-1, vmax=1, interpolation="nearest")
    fig.colorbar(image, ax=ax, label="Pearson r")
    ax.set_xlabel("component")
    ax.set_ylabel("component")
    ax.set_title(f"correlation matrix ({n} x {n})")
    return fig


def plot_spectrum(explained_ratio: np.ndarray, n90: int, n99: int) -> Figure:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    k = np.arange(1, len(explained_ratio) + 1)
    left.semilogy(k, np.clip(explained_ratio, 1e-12, None), ".-", c=REAL, ms=3, lw=0.8)
    left.set_xlabel("principal component")
    left.set_ylabel("explained variance ratio")
    right.plot(k, np.cumsum(explained_ratio), c=REAL)
    for level, count in ((0.9, n90), (0.99, n99)):
        right.axhline(level, c="gray", lw=0.6, ls="--")
        right.axvline(count, c="gray", lw=0.6, ls="--")
        right.annotate(
            f"{int(level * 100)} %: {count}", (count, level), fontsize=8, xytext=(4, -12), textcoords="offset points"
        )
    right.set_xlabel("number of components")
    right.set_ylabel("cumulative explained variance")
    fig.tight_layout()
    return fig


def plot_radii(data_radii: np.ndarray, uniform: Sequence[dict], bins: int = 80, b_match: float | None = None) -> Figure:
    """Histogram of the z-point radii against radii of uniform [-b, b]^N vectors (simulated) for several b.

    With `b_match`, the shell of uniform vectors whose mean radius equals the data's is drawn too
    (its spread tends to b/sqrt(15) for large N): it has the right radius but is far thinner than the data.
    The density axis is logarithmic, because the thin uniform shells would otherwise flatten the data.
    """
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.hist(data_radii, bins=bins, density=True, color=REAL, alpha=0.6, label="z-points")
    colours = plt.get_cmap("autumn")(np.linspace(0.0, 0.8, max(1, len(uniform))))
    for colour, row in zip(colours, uniform):
        ax.hist(
            row["simulated_radii"],
            bins=bins,
            density=True,
            histtype="step",
            color=colour,
            label=f"uniform b={row['b']:g} (E|x|={row['theory_mean']:.2f})",
        )
    if b_match is not None:
        mean, spread = float(np.mean(data_radii)), b_match / np.sqrt(15.0)
        x = np.linspace(mean - 5 * spread, mean + 5 * spread, 200)
        ax.plot(x, stats.norm.pdf(x, mean, spread), "k--", lw=1, label=f"uniform b_match={b_match:.2f} (theory)")
    ax.set_yscale("log")
    ax.set_ylim(bottom=1e-4)
    ax.set_xlabel("radius |z|")
    ax.set_ylabel("density (log)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_mahalanobis(
    sq_distances: np.ndarray, dof: int, origin_sq: float | None = None, max_quantiles: int = 2000
) -> Figure:
    """Squared Mahalanobis distances against the chi-square law with `dof` dof: histogram and Q-Q plot."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    upper = float(np.percentile(sq_distances, 99.5))
    left.hist(sq_distances[sq_distances <= upper], bins=80, density=True, color=REAL, alpha=0.6, label="z-points")
    x = np.linspace(max(0.0, float(sq_distances.min())), upper, 300)
    left.plot(x, stats.chi2.pdf(x, dof), c="k", lw=1, label=f"χ² ({dof} dof)")
    if origin_sq is not None and origin_sq <= upper * 1.5:
        left.axvline(origin_sq, c=ORIGIN, lw=1.5, label="origin")
    left.set_xlabel("squared Mahalanobis distance")
    left.set_ylabel("density")
    left.legend(fontsize=8)
    m = min(max_quantiles, len(sq_distances))
    probs = (np.arange(m) + 0.5) / m
    observed = np.quantile(sq_distances, probs)
    expected = stats.chi2(dof).ppf(probs)
    right.plot(expected, observed, ".", ms=2, c=REAL)
    lim = [0.0, max(float(expected.max()), float(observed.max()))]
    right.plot(lim, lim, c="k", lw=0.8)
    right.set_xlabel(f"χ² ({dof} dof) quantile")
    right.set_ylabel("observed quantile")
    right.set_title("Q-Q plot", fontsize=9)
    fig.tight_layout()
    return fig


def plot_projection_grid(
    planes: Sequence[dict],
    z: np.ndarray,
    centre: np.ndarray,
    artificial: np.ndarray | None = None,
    path_points: np.ndarray | None = None,
    ncols: int = 2,
    title: str | None = None,
) -> Figure:
    """One seed-style projection panel per plane dict ({"plane", "ellipses", optional "z"}), with legends.

    A plane's own "z" (e.g. only the points inside a slice) replaces the shared `z` for that panel.
    """
    fig, axes = _panel_grid(len(planes), ncols, size=4.8)
    for ax, plane in zip(axes, planes):
        points = plane.get("z", z)
        sparse = len(points) < 500  # a slice may hold a handful of points: draw them bold
        plot_projection(
            ax,
            points,
            plane["plane"],
            centre=centre,
            artificial=plane.get("artificial", artificial),
            path_points=path_points,
            max_points=max(1, len(points)),
            point_size=10.0 if sparse else 2.0,
            alpha=0.9 if sparse else 0.35,
        )
        draw_ellipses(ax, plane.get("ellipses", ()))
        if "subtitle" in plane:
            ax.set_title(f"plane ({plane['plane'][0]}, {plane['plane'][1]}): {plane['subtitle']}", fontsize=9)
        ax.legend(fontsize=6, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


NORMALITY_TESTS = (
    ("component_min_p_holm", "per component (Holm, min p)"),
    ("henze_zirkler_p", "Henze-Zirkler"),
    ("mardia_skewness_p", "Mardia skewness"),
    ("mardia_kurtosis_p", "Mardia kurtosis"),
    ("sq_distance_p", "law of d²"),
)


def plot_core_normality(
    robust_sq: np.ndarray, cutoff: float, dof: int, core: Sequence[dict], untrimmed: Sequence[dict], alpha: float = 0.05
) -> Figure:
    """Robust squared distances with the 3σ cutoff (left); every test's p-value against n, core and all (right)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    upper = max(float(np.percentile(robust_sq, 99.5)), cutoff * 1.2)
    shown = robust_sq[robust_sq <= upper]
    left.hist(shown, bins=80, density=True, color=REAL, alpha=0.6, label="z-points")
    x = np.linspace(max(0.0, float(shown.min())), upper, 300)
    left.plot(x, stats.chi2.pdf(x, dof), c="k", lw=1, label=f"χ² ({dof} dof)")
    left.axvline(cutoff, c="tab:red", lw=1.2, label="3σ cutoff")
    left.set_xlabel("robust squared Mahalanobis distance")
    left.set_ylabel("density")
    left.legend(fontsize=8)
    floor = 1e-20  # p-values below are drawn at the floor (a rejection either way)
    for k, (key, label) in enumerate(NORMALITY_TESTS):
        color = f"C{k}"
        for rows, style, suffix in ((core, "-o", "core"), (untrimmed, ":x", "all")):
            points = [(r["n"], max(r[key], floor)) for r in rows if r.get(key) is not None]
            if points:
                n, p = zip(*points)
                right.plot(n, p, style, c=color, ms=4, lw=1, label=f"{label} ({suffix})")
    right.axhline(alpha, c="k", lw=0.8, ls="--")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_ylim(floor / 3, 2.0)
    right.set_xlabel("sample size n")
    right.set_ylabel(f"p-value (floor {floor:g})")
    right.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def plot_regions(projected: np.ndarray, labels: np.ndarray, centres: np.ndarray, bic: Sequence[dict]) -> Figure:
    """Points on the first two detector axes coloured by region, with the centres (left); BIC per count (right)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for r in range(len(centres)):
        inside = labels == r
        left.scatter(projected[inside, 0], projected[inside, 1], s=2, alpha=0.4, c=f"C{r}", label=f"region {r}")
    left.scatter(centres[:, 0], centres[:, 1], marker="x", s=60, c="k", label="centres")
    left.set_xlabel("principal axis 1")
    left.set_ylabel("principal axis 2")
    left.legend(fontsize=7, markerscale=3)
    counts = [row["regions"] for row in bic]
    values = [row["bic"] for row in bic]
    right.plot(counts, values, "-o", c=REAL, ms=4)
    best = counts[int(np.argmin(values))]
    right.axvline(best, c="tab:red", lw=1, ls="--", label=f"lowest BIC: {best}")
    right.set_xlabel("mixture components")
    right.set_ylabel("BIC")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig
