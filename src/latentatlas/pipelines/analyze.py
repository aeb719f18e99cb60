"""`latentatlas analyze RUN`: fit `LatentAnalysis` on a run's z-points and write RUN/analysis/.

The folder holds analysis.json (schema in docs/analysis.md), the arrays named in `ARRAY_FILES` and the
figures; it is written into a temporary folder and swapped in only when everything succeeded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from latentatlas import checks, plots
from latentatlas.analysis import SCHEMA, LatentAnalysis, uniform_box
from latentatlas.errors import LatentAtlasError
from latentatlas.io import atomic_folder, save_npy, write_json
from latentatlas.stats import ZView
from latentatlas.store import Run

ARRAY_FILES = {
    "mean": "mean.npy",
    "covariance": "covariance.npy",
    "correlation": "correlation.npy",
    "pca_eigenvalues": "pca_eigenvalues.npy",
    "pca_components": "pca_components.npy",
    "robust_mean": "robust_mean.npy",
    "robust_covariance": "robust_covariance.npy",
    "histogram_counts": "histogram_counts.npy",
    "histogram_edges": "histogram_edges.npy",
    "region_labels": "region_labels.npy",
}


def region_labels(analysis: LatentAnalysis, z: np.ndarray, chunk_size: int) -> np.ndarray | None:
    """The region (0..k-1) of every row of the store, the held-out rows included; None without regions."""
    if analysis.regions_ is None:
        return None
    model = analysis.regions_.model()
    labels = [model.predict(chunk) for chunk in ZView(z).chunks(chunk_size)]
    return np.concatenate(labels).astype(np.int16) if labels else np.zeros(0, np.int16)


def _save_arrays(analysis: LatentAnalysis, out: Path, labels: np.ndarray | None = None) -> dict:
    s = analysis.statistics_
    arrays = {
        "mean": s.mean_,
        "covariance": s.cov_,
        "correlation": analysis.correlations_.correlation_,
        "pca_eigenvalues": analysis.pca_.eigenvalues_,
        "pca_components": analysis.pca_.components_,
        "histogram_counts": s.hist_counts_,
        "histogram_edges": s.hist_edges_,
    }
    if analysis.robust_ is not None:
        arrays["robust_mean"] = analysis.robust_.location_
        arrays["robust_covariance"] = analysis.robust_.covariance_
    if labels is not None:
        arrays["region_labels"] = labels
    for name, array in arrays.items():
        save_npy(out / ARRAY_FILES[name], array)
    return {name: ARRAY_FILES[name] for name in arrays}


def _histogram_components(analysis: LatentAnalysis, count: int) -> list[int]:
    """Dominant components first, then the least Gaussian (largest KS distance)."""
    chosen = [int(j) for j in analysis.dominant_.components_[:count]]
    for j in np.argsort(-analysis.distributions_.ks_, kind="stable"):
        if len(chosen) >= count:
            break
        if int(j) not in chosen:
            chosen.append(int(j))
    return chosen


def _write_figures(
    analysis: LatentAnalysis,
    view: ZView,
    out: Path,
    projection_points: int,
    artificial_points: int,
    hist_components: int,
    seed: int,
) -> list[dict]:
    s, d, dom = analysis.statistics_, analysis.distributions_, analysis.dominant_
    figures: list[dict] = []

    def save(fig, name: str, caption: str) -> None:
        plots.save_figure(fig, out / name)
        figures.append({"file": name, "caption": caption})

    shown = _histogram_components(analysis, min(hist_components, analysis.n_features_))
    save(
        plots.plot_histogram_grid(
            shown, d.edges_, d.counts_, s.mean_, s.std_, d.hwhm_, highlight=dom.components_.tolist()
        ),
        "histograms.png",
        f"Histograms of {len(shown)} components (dominant first, red titles; then the least Gaussian) "
        "with their fitted Gaussians; yellow line: 0.",
    )
    save(
        plots.plot_component_summary(s.mean_, s.std_, dom.components_.tolist()),
        "components.png",
        f"Mean ± std of all {analysis.n_features_} components; dominant components in red.",
    )
    save(
        plots.plot_correlation_heatmap(analysis.correlations_.correlation_),
        "correlation.png",
        "Pearson correlation matrix of the components.",
    )
    save(
        plots.plot_spectrum(
            analysis.pca_.explained_variance_ratio_, analysis.pca_.n_components_90_, analysis.pca_.n_components_99_
        ),
        "pca_spectrum.png",
        f"PCA of the bulk: explained variance per component and cumulative "
        f"({analysis.pca_.n_components_90_} components for 90 %, {analysis.pca_.n_components_99_} for 99 %).",
    )
    radii = analysis.radii_
    save(
        plots.plot_radii(radii.radii_, radii.uniform_, b_match=radii.b_match_),
        "radii.png",
        f"Radii |z| of the z-points against uniform [-b, b]^N vectors; b_match = {analysis.radii_.b_match_:.3f}.",
    )
    save(
        plots.plot_mahalanobis(
            analysis.mahalanobis_.sq_distances_, analysis.mahalanobis_.rank_, analysis.origin_.sq_distance_
        ),
        "mahalanobis.png",
        f"Squared Mahalanobis distances against χ² with {analysis.mahalanobis_.rank_} dof (histogram, Q-Q plot); "
        f"the origin lies at the {analysis.origin_.percentile_:.1f}th percentile.",
    )
    normality = analysis.core_normality_
    if normality is not None:
        summary = normality.to_dict()["core_normality"]
        save(
            plots.plot_core_normality(
                normality.robust_sq_distances_, normality.cutoff_, normality.dof_, summary["core"], summary["all"]
            ),
            "core_normality.png",
            f"Robust squared Mahalanobis distances (cross-fitted MCD core) with the 3σ cutoff: "
            f"{100 * normality.core_fraction_:.1f} % of the points form the core; p-values of the normality tests "
            "against the sample size on the core (solid) and on all points (dotted), dashed line 0.05.",
        )
    regions = analysis.regions_
    if regions is not None:
        model = regions.model()
        shown = view.subsample(min(projection_points, view.n), seed)
        save(
            plots.plot_regions(
                model.project(shown),
                model.predict(shown),
                np.asarray(regions.mixture_.means_),
                regions.bic(),
            ),
            "regions.png",
            f"{len(shown)} z-points on the first two principal axes coloured by region (Gaussian-mixture BIC: "
            f"{regions.n_regions_}, HDBSCAN: {regions.hdbscan_n_regions_}); BIC against the number of components.",
        )
    correlations, slices = analysis.correlations_, analysis.slices_
    if not correlations.planes_:
        return figures
    real = view.subsample(min(projection_points, view.n), seed).astype(np.float32)
    b_art = analysis.radii_.b_match_
    artificial = uniform_box(artificial_points, analysis.n_features_, b_art, seed=seed) if artificial_points else None
    path = np.linspace(0.0, 1.0, 8)[:, None] * s.mean_[None, :]
    planes = [
        {"plane": p, "ellipses": e, "subtitle": f"{source}, r = {correlations.correlation_[p[0], p[1]]:.2f}"}
        for (p, source), e in zip(correlations.planes_, correlations.ellipses_)
    ]
    save(
        plots.plot_projection_grid(planes, real, s.mean_, artificial, path),
        "projections.png",
        f"Projections of {len(real)} z-points (blue) onto {len(planes)} coordinate planes with confidence ellipses "
        f"({', '.join(f'{c:g}' for c in analysis.confidences)}), origin (yellow), centre (orange), path origin→centre "
        f"(black) and {artificial_points} uniform vectors at b_match = {b_art:.2f} (red).",
    )
    b_slice = slices.b_[0]
    # as in the seed, the slice is populated with uniform vectors from the cube [-b, b]^N it contains
    in_cube = uniform_box(artificial_points, analysis.n_features_, b_slice, seed=seed) if artificial_points else None
    sliced = []
    for pi, plane in enumerate(planes):
        inside = slices.indices_[0][pi]
        points = (
            view.take(inside).astype(np.float32) if len(inside) else np.zeros((0, analysis.n_features_), np.float32)
        )
        count = int(slices.counts_[0, pi])
        sliced.append(
            {
                **plane,
                "z": points,
                "artificial": in_cube,
                "subtitle": f"slice |z_j| ≤ {b_slice:g}: {count} of {analysis.n_samples_} points",
            }
        )
    save(
        plots.plot_projection_grid(sliced, real, s.mean_, None, None),
        "slices.png",
        f"Only the z-points inside the flat cuboid |z_j| ≤ {b_slice:g} for every j outside the plane (blue), "
        f"{artificial_points} uniform vectors from [-{b_slice:g}, {b_slice:g}]^N (red), and the bulk's ellipses.",
    )
    return figures


def _constant_components(view: ZView) -> np.ndarray:
    """Indices of the components that take one value on every row of `view` (one chunked pass)."""
    low = np.full(view.dim, np.inf)
    high = np.full(view.dim, -np.inf)
    for chunk in view.chunks():
        low, high = np.minimum(low, chunk.min(axis=0)), np.maximum(high, chunk.max(axis=0))
    return np.flatnonzero(low == high)


def check_spread(view: ZView, where: str) -> None:
    """Refuse z-points without spread before fitting: with all points equal there is no ellipsoid, no
    principal axis and no normality to test, and the eigen-solvers fail without a clear word."""
    if view.n < 2:
        return  # too few rows: the analysis' own check says how many it needs
    if len(_constant_components(view)) == view.dim:
        raise LatentAtlasError(
            f"the {view.n} z-points of {where} are all equal (no variance in any of the {view.dim} components): "
            "the encoder maps every image to one point; retrain the model (e.g. a smaller --lr or more epochs)"
        )


def analyze_run(
    run: Run | str | os.PathLike,
    subset: str = "train",
    projection_points: int = 5000,
    artificial_points: int = 200,
    hist_components: int = 24,
    figures: bool = True,
    seed: int | None = None,
    **options: Any,
) -> dict:
    """Analyse a run's z-points; write RUN/analysis/ (analysis.json, the .npy arrays, figures); return the dict.

    `options` go to LatentAnalysis (see its docstring); `seed` is the command's name for its `random_state`.
    Everything is validated before anything is written, and the folder is replaced atomically.
    """
    if not isinstance(run, Run):
        run = Run(run)
    if subset not in ("all", "train", "val"):
        raise LatentAtlasError(f"subset must be all, train or val, got {subset!r}")
    for name, value in (("projection_points", projection_points), ("hist_components", hist_components)):
        checks.positive_int(value, name)
    checks.positive_int(artificial_points, "artificial_points", 0)
    if seed is not None:
        options["random_state"] = checks.seed(seed)
    unknown = sorted(set(options) - set(LatentAnalysis().get_params()) - {"progress"})
    if unknown:
        raise LatentAtlasError(f"unknown analysis option(s): {', '.join(unknown)}")
    z = run.zpoints()
    rows = None
    if subset != "all":
        labels = run.metadata()["subset"].to_numpy()
        if len(labels) != len(z):
            raise LatentAtlasError(f"run {run.path}: zpoints.parquet has {len(labels)} rows for {len(z)} z-points")
        rows = labels == subset
        if not rows.any():
            raise LatentAtlasError(f"run {run.path} has no z-points in subset {subset!r}; try --subset all")
    view = ZView(z, rows)
    analysis = LatentAnalysis(**options)
    analysis.validate(view.dim)
    check_spread(view, f"run {run.path} ({subset})")
    try:
        analysis.fit(view)
    except np.linalg.LinAlgError as exc:  # a spread too degenerate for an eigen-solver, short of all-equal
        raise LatentAtlasError(
            f"the z-points of run {run.path} ({subset}) are too degenerate to analyse ({exc}); "
            "check them with `latentatlas encode` or retrain the model"
        ) from None
    result: dict[str, Any] = {"schema": SCHEMA, "run": str(run.path), "subset": subset}
    result.update(analysis.to_dict())
    result["options"] = {
        **analysis.get_params(),
        "projection_points": projection_points,
        "artificial_points": artificial_points,
        "hist_components": hist_components,
    }
    result.update(run.provenance())
    with run.lock(), atomic_folder(Path(run.path) / "analysis", kind="analysis") as out:
        labels = region_labels(analysis, z, int(analysis.chunk_size))
        result["arrays"] = _save_arrays(analysis, out, labels)
        result["figures"] = (
            _write_figures(
                analysis, view, out, projection_points, artificial_points, hist_components, int(analysis.random_state)
            )
            if figures
            else []
        )
        write_json(out / "analysis.json", result)
    return result
