"""The regions of a z-point set as one fitted model: the primitive that the fragmentation finding
(`analysis.regions.Regions`), the per-region sampler (`samplers.regions`) and the evaluation's void share
share, one implementation.

`fit_regions(z)` projects the z-points onto their `pca_dims` leading principal axes, fits full-covariance
Gaussian mixtures with 1..`max_regions` components to a seeded subsample there and keeps the lowest BIC;
then, in one chunked pass over all points, labels every point by the mixture and computes each region's
share, mean and covariance in the full latent space. `RegionModel.in_core(z)` says which points lie in
some region's core (d^2 to that region within its chi2 `level` quantile, in the projected space).

It sits just above `stats` in the layering (it uses `stats.moments`, `stats.MomentSums` and `stats.PCA`):
`analysis/` and `samplers/` are one layer and import nothing from each other (the import-linter contract in
pyproject.toml enforces it), so what both need lives here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats
from sklearn.mixture import GaussianMixture

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.stats import (
    DEFAULT_CHUNK,
    PCA,
    Moments,
    MomentSums,
    ZView,
    as_view,
    moments,
    one_blas_thread,
    precision_matrix,
    sq_mahalanobis,
)

# a point lies in a region's core when its d^2 to the region is within this chi2 quantile
CORE_LEVEL = 0.99
# leading principal axes the regions are detected on (capped by the latent dimension)
PCA_DIMS = 10
# Most mixture components the BIC sweep tries. 6 was too few: the BIC chose the cap on celeba-10k, on the
# synthetic sweep and on the digits (10 digits; 15 gave 10 regions, ARI 0.64 against the digit labels).
MAX_REGIONS = 12


@dataclass(frozen=True)
class RegionModel:
    """Regions as a mixture in the full latent space, plus the projection that assigns points to them.

    Attributes
    ----------
    weights : ndarray (k,)
        Share of the points in each region.
    means, covariances : ndarray (k, N), (k, N, N)
        Moments of each region's points in the latent space.
    projection_mean, projection_axes : ndarray (N,), (d, N)
        z -> (z - projection_mean) @ projection_axes.T is the space the mixture was fitted in.
    mixture : GaussianMixture
        The fitted mixture in that space.
    bic : tuple of (int, float)
        BIC per number of components tried (the lowest picked `mixture`).
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    projection_mean: np.ndarray
    projection_axes: np.ndarray
    mixture: GaussianMixture
    bic: tuple[tuple[int, float], ...] = ()

    @property
    def n_regions(self) -> int:
        return len(self.weights)

    def project(self, z: np.ndarray) -> np.ndarray:
        return (np.asarray(z, dtype=np.float64) - self.projection_mean) @ self.projection_axes.T

    def predict(self, z: np.ndarray) -> np.ndarray:
        """Region label (0..k-1) of each point (m, N)."""
        return self.mixture.predict(self.project(z))

    def in_core(self, z: np.ndarray, level: float = CORE_LEVEL, projected: bool = False) -> np.ndarray:
        """Whether each point (m, N) lies in some region's core: its squared Mahalanobis distance to that
        region's projected Gaussian is within the chi2_d `level` quantile (d = projected dimension).
        `projected=True`: `z` is already projected (m, d)."""
        level = checks.fraction(level, "core level")
        points = np.asarray(z, dtype=np.float64) if projected else self.project(z)
        cutoff = scipy_stats.chi2(points.shape[1]).ppf(level)
        inside = np.zeros(len(points), dtype=bool)
        for mean, cov in zip(np.asarray(self.mixture.means_), np.asarray(self.mixture.covariances_)):
            inside |= sq_mahalanobis(points, mean, precision_matrix(cov)[0]) <= cutoff
        return inside


@dataclass(frozen=True)
class RegionFit:
    """What `fit_regions` returns: the model, the region of every point (row order) and the projected
    subsample the mixture was fitted on (for cross-checks on the same points)."""

    model: RegionModel
    labels: np.ndarray
    projected_sample: np.ndarray


def check_options(max_regions: int, pca_dims: int, max_samples: int, random_state: int, chunk_size: int) -> None:
    checks.positive_int(max_regions, "max_regions")
    checks.positive_int(pca_dims, "pca_dims")
    checks.positive_int(max_samples, "max_samples", 10)
    checks.seed(random_state, "random_state")
    checks.positive_int(chunk_size, "chunk_size")


def min_points(dim: int, pca_dims: int) -> int:
    """The fewest z-points region detection accepts in dimension `dim` (a mixture needs > 2 d + 1)."""
    return 2 * min(int(pca_dims), int(dim)) + 2


@one_blas_thread
def fit_regions(
    z: np.ndarray | ZView,
    *,
    max_regions: int = MAX_REGIONS,
    pca_dims: int = PCA_DIMS,
    max_samples: int = 5000,
    random_state: int = 0,
    chunk_size: int = DEFAULT_CHUNK,
    bulk: Moments | None = None,
    pca: PCA | None = None,
) -> RegionFit:
    """Detect the regions of `z` (n, N): mixture BIC sweep on the leading principal axes of a seeded
    subsample of at most `max_samples` points, then every region's share, mean and covariance from all
    points. `bulk` (the moments of `z`) and `pca` (of its covariance) are reused when given."""
    check_options(max_regions, pca_dims, max_samples, random_state, chunk_size)
    view = as_view(z)
    if bulk is None:
        bulk = moments(view, chunk_size)
    if pca is None:
        pca = PCA().fit(covariance=bulk.cov)
    dims = min(int(pca_dims), view.dim)
    mean, axes = bulk.mean, pca.components_[:dims]
    sample = view.subsample(min(int(max_samples), view.n), int(random_state))
    projected = (sample - mean) @ axes.T
    if len(projected) < min_points(view.dim, pca_dims):
        raise LatentAtlasError(f"region detection needs more than {2 * dims + 1} points, got {len(projected)}")
    bic, best = [], None
    for k in range(1, min(int(max_regions), len(projected) // (dims + 1)) + 1):
        mixture = GaussianMixture(
            k, covariance_type="full", n_init=2, init_params="k-means++", random_state=random_state
        )
        mixture.fit(projected)
        score = float(mixture.bic(projected))
        bic.append((k, score))
        if best is None or score < best[1]:
            best = (mixture, score)
    assert best is not None  # k = 1 always runs
    mixture = best[0]
    k = int(mixture.n_components)
    sums = [MomentSums(view.dim) for _ in range(k)]
    labels = []
    for chunk in view.chunks(int(chunk_size)):
        label = mixture.predict((chunk - mean) @ axes.T)
        labels.append(label)
        for r in range(k):
            sums[r].add(chunk[label == r])
    # a component the subsample fitted may catch no point of the full set: weight 0, zero moments
    fitted = [s.result() if s.n else None for s in sums]
    counts = np.array([s.n for s in sums], dtype=np.float64)
    means = np.array([m.mean if m is not None else np.zeros(view.dim) for m in fitted])
    covariances = np.array([m.cov if m is not None else np.zeros((view.dim, view.dim)) for m in fitted])
    model = RegionModel(
        weights=counts / counts.sum(),
        means=means,
        covariances=covariances,
        projection_mean=mean,
        projection_axes=axes,
        mixture=mixture,
        bic=tuple(bic),
    )
    return RegionFit(model=model, labels=np.concatenate(labels), projected_sample=projected)


__all__ = ["CORE_LEVEL", "PCA_DIMS", "RegionFit", "RegionModel", "check_options", "fit_regions", "min_points"]
