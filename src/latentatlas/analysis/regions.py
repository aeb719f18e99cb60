"""Fragmentation: does the encoder fill one compact region or several? (the series' title question)

`Regions` projects the z-points onto their leading principal axes and detects regions twice, by a
Gaussian-mixture BIC sweep (the regions) and by HDBSCAN (a density-based cross-check, agreement measured
by the adjusted Rand index). Each region is then described in the full latent space from all points
(read in chunks): centre, covariance, share, extent, and the Mahalanobis distance between regions.
The voids are measured as the seed's samplers would meet them: the share of draws from one Gaussian
fitted to all points that land in no region's core (d^2 within a region above its chi2 `core_level`
quantile, in the projected space).

The detection itself (projection, mixture sweep, per-region moments) is `region_model.fit_regions`, shared
with the per-region sampler and the evaluation's void share; `Regions.model()` returns its `RegionModel`
(weights, means, covariances in the full latent space, `predict`, `in_core`).

Section "regions"; finding "one-compact-region".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.cluster import HDBSCAN
from sklearn.metrics import adjusted_rand_score

from latentatlas import checks
from latentatlas.analysis.parts import Context
from latentatlas.findings import Finding, Verdict
from latentatlas.region_model import CORE_LEVEL, MAX_REGIONS, RegionModel, check_options, fit_regions
from latentatlas.stats import DEFAULT_CHUNK, PCA, ZView, as_view, moments, one_blas_thread, precision_matrix

# agreement between the two detectors that counts as a cross-check
ARI_AGREE = 0.5
# fragments leave voids: at least this share of one-Gaussian draws outside every region's core; below
# OVERLAP_VOIDS the mixture components overlap into one region of non-Gaussian shape (heavy tails need
# several components too)
FRAGMENT_VOIDS = 0.2
OVERLAP_VOIDS = 0.1


class Regions:
    """Regions of the z-points by a Gaussian-mixture BIC sweep, cross-checked by HDBSCAN.

    Parameters
    ----------
    max_regions : int
        Largest number of mixture components tried (1..max_regions; the lowest BIC wins).
    pca_dims : int
        Leading principal axes the detectors work in (capped by N).
    max_samples : int
        Seeded subsample for the mixture sweep and HDBSCAN (both are superlinear in n).
    min_share : float
        HDBSCAN's smallest cluster, as a share of the subsample.
    core_level : float
        A point lies in a region's core when its d^2 to that region is within this chi2 quantile.
    void_samples : int
        Draws from the one-Gaussian fit used to measure the voids.
    random_state : int
    chunk_size : int

    Attributes
    ----------
    model_ : RegionModel
        The detected regions (what `model()` returns).
    bic_ : list of (int, float)
        BIC per number of components.
    n_regions_ : int
    labels_ : ndarray (n,)
        Region of every point (mixture assignment), in row order.
    shares_ : ndarray (k,)
    means_, covariances_ : ndarray (k, N), (k, N, N)
    extent_rms_, extent_major_ : ndarray (k,)
        sqrt(trace) and the largest standard deviation of each region's covariance.
    separation_ : ndarray (k, k)
        Mahalanobis distance between region centres under the mean of the two covariances.
    hdbscan_n_regions_ : int
    hdbscan_noise_share_ : float
    adjusted_rand_ : float or None
        Agreement of mixture and HDBSCAN labels on the subsample points HDBSCAN does not call noise.
    void_share_ : float
        Share of one-Gaussian draws outside every region's core.
    data_outside_cores_ : float
        The same share for the z-points themselves (the baseline: about 1 - core_level).
    """

    def __init__(
        self,
        *,
        max_regions: int = MAX_REGIONS,
        pca_dims: int = 10,
        max_samples: int = 5000,
        min_share: float = 0.02,
        core_level: float = CORE_LEVEL,
        void_samples: int = 5000,
        random_state: int = 0,
        chunk_size: int = DEFAULT_CHUNK,
    ):
        self.max_regions = max_regions
        self.pca_dims = pca_dims
        self.max_samples = max_samples
        self.min_share = min_share
        self.core_level = core_level
        self.void_samples = void_samples
        self.random_state = random_state
        self.chunk_size = chunk_size

    def validate(self) -> None:
        check_options(self.max_regions, self.pca_dims, self.max_samples, self.random_state, self.chunk_size)
        checks.fraction(self.min_share, "min_share")
        checks.fraction(self.core_level, "core_level")
        checks.positive_int(self.void_samples, "void_samples")

    @one_blas_thread
    def fit(self, z: np.ndarray | ZView, pca: PCA | None = None) -> Regions:
        self.validate()
        view = as_view(z)
        everything = moments(view, self.chunk_size)
        fitted = fit_regions(
            view,
            max_regions=self.max_regions,
            pca_dims=self.pca_dims,
            max_samples=self.max_samples,
            random_state=self.random_state,
            chunk_size=self.chunk_size,
            bulk=everything,
            pca=pca,
        )
        self.model_ = fitted.model
        self.projection_mean_ = fitted.model.projection_mean
        self.projection_axes_ = fitted.model.projection_axes
        self.bic_ = list(fitted.model.bic)
        self.mixture_ = fitted.model.mixture
        self.n_regions_ = fitted.model.n_regions
        self.labels_ = fitted.labels
        self._cross_check(fitted.projected_sample)
        self._describe()
        self._voids(view, everything.mean, everything.cov)
        return self

    def _cross_check(self, projected: np.ndarray) -> None:
        size = max(5, int(round(float(self.min_share) * len(projected))))
        # copy=True: the projected points are reused below (sklearn annotates the parameter str for its 'warn' default)
        density = HDBSCAN(min_cluster_size=size, allow_single_cluster=True, copy=True).fit(  # pyright: ignore[reportArgumentType]
            projected
        )
        labels = density.labels_
        clustered = labels >= 0
        self.hdbscan_labels_ = labels
        self.hdbscan_n_regions_ = int(len(set(labels[clustered].tolist())))
        self.hdbscan_noise_share_ = float(1.0 - clustered.mean())
        mixture_labels = self.mixture_.predict(projected)
        both_single = self.n_regions_ == 1 and self.hdbscan_n_regions_ <= 1
        self.adjusted_rand_ = (
            1.0
            if both_single
            else float(adjusted_rand_score(mixture_labels[clustered], labels[clustered]))
            if clustered.sum() > 1
            else None
        )

    def _describe(self) -> None:
        k, model = self.n_regions_, self.model_
        self.shares_, self.means_, self.covariances_ = model.weights, model.means, model.covariances
        self.extent_rms_ = np.sqrt(np.clip(np.trace(self.covariances_, axis1=1, axis2=2), 0.0, None))
        self.extent_major_ = np.sqrt(np.clip(np.linalg.eigvalsh(self.covariances_)[:, -1], 0.0, None))
        self.separation_ = np.zeros((k, k))
        for a in range(k):
            for b in range(a + 1, k):
                precision, _ = precision_matrix((self.covariances_[a] + self.covariances_[b]) / 2.0)
                d = self.means_[a] - self.means_[b]
                self.separation_[a, b] = self.separation_[b, a] = float(np.sqrt(max(d @ precision @ d, 0.0)))

    def _voids(self, view: ZView, mean: np.ndarray, cov: np.ndarray) -> None:
        rng = np.random.default_rng(self.random_state)
        draws = rng.multivariate_normal(mean, cov, size=int(self.void_samples), method="eigh")
        level = float(self.core_level)
        self.void_share_ = float(1.0 - self.model_.in_core(draws, level).mean())
        sample = view.subsample(min(int(self.void_samples), view.n), self.random_state + 1)
        self.data_outside_cores_ = float(1.0 - self.model_.in_core(sample, level).mean())

    def model(self) -> RegionModel:
        """The fitted regions as a mixture in the full latent space (for per-region samplers)."""
        return self.model_

    @classmethod
    def configured(cls, options: Mapping[str, Any]) -> Regions:
        """Unfitted, with `LatentAnalysis`'s options."""
        return cls(
            max_regions=options["max_regions"],
            pca_dims=options["region_pca_dims"],
            random_state=options["random_state"],
            chunk_size=options["chunk_size"],
        )

    @classmethod
    def from_context(cls, context: Context) -> Regions:
        return cls.configured(context.options).fit(context.view, context.pca)

    def bic(self) -> list[dict]:
        """BIC per number of mixture components: [{"regions": k, "bic": value}, ...]."""
        return [{"regions": k, "bic": bic} for k, bic in self.bic_]

    def to_dict(self) -> dict:
        """The analysis.json "regions" section."""
        return {
            "regions": {
                "pca_dims": int(self.projection_axes_.shape[0]),
                "bic": self.bic(),
                "n_regions": self.n_regions_,
                "hdbscan": {
                    "n_regions": self.hdbscan_n_regions_,
                    "noise_share": self.hdbscan_noise_share_,
                    "min_cluster_share": float(self.min_share),
                },
                "adjusted_rand_index": self.adjusted_rand_,
                "regions": [
                    {
                        "share": float(self.shares_[r]),
                        "centre_norm": float(np.linalg.norm(self.means_[r])),
                        "centre_projected": np.asarray(self.mixture_.means_)[r].tolist(),
                        "extent_rms": float(self.extent_rms_[r]),
                        "extent_major": float(self.extent_major_[r]),
                    }
                    for r in range(self.n_regions_)
                ],
                "separation_mahalanobis": self.separation_.tolist(),
                "core_level": float(self.core_level),
                "void_share": self.void_share_,
                "data_outside_cores": self.data_outside_cores_,
            }
        }

    def findings(self) -> list[Finding]:
        return [self.finding()]

    def finding(self) -> Finding:
        """The seed's picture (one compact region), judged by both detectors and the voids between regions.

        Agrees when both detectors see one region, or when the mixture's components overlap so much that
        one Gaussian's draws fall into their cores (voids < OVERLAP_VOIDS); disagrees when both detectors see
        several regions, agree (ARI >= ARI_AGREE) and leave voids (>= FRAGMENT_VOIDS); mixed otherwise.
        """
        single = self.n_regions_ == 1 and self.hdbscan_n_regions_ <= 1
        several = self.n_regions_ > 1 and self.hdbscan_n_regions_ > 1
        ari = self.adjusted_rand_
        if single or self.void_share_ < OVERLAP_VOIDS:
            verdict: Verdict = "agrees"
        elif several and ari is not None and ari >= ARI_AGREE and self.void_share_ >= FRAGMENT_VOIDS:
            verdict = "disagrees"
        else:
            verdict = "mixed"
        closest = float(self.separation_[np.triu_indices(self.n_regions_, 1)].min()) if self.n_regions_ > 1 else None
        apart = f"; closest regions {closest:.1f} Mahalanobis units apart" if closest is not None else ""
        capped = (
            " (the most the sweep tried: more regions may fit better, raise max_regions)"
            if self.n_regions_ == int(self.max_regions) > 1
            else ""
        )
        return Finding(
            key="one-compact-region",
            claim="the encoder fills one compact region of latent space, not several fragments",
            verdict=verdict,
            evidence=f"Gaussian-mixture BIC picks {self.n_regions_} region(s){capped}, "
            f"HDBSCAN finds {self.hdbscan_n_regions_} "
            f"({100 * self.hdbscan_noise_share_:.0f} % noise), adjusted Rand index "
            f"{'n/a' if ari is None else f'{ari:.2f}'}{apart}; {100 * self.void_share_:.1f} % of draws from one "
            f"Gaussian fitted to all points land outside every region's core "
            f"({100 * self.data_outside_cores_:.1f} % of the z-points do)",
        )
