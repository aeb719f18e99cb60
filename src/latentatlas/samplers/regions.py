"""Per-region sampling (issue 12, fragmentation): one Gaussian per detected region, weighted by its share."""

from __future__ import annotations

import numpy as np

from latentatlas import checks
from latentatlas.region_model import MAX_REGIONS, check_options, fit_regions
from latentatlas.samplers.mixture import MixtureDensity
from latentatlas.samplers.options import option


class RegionSampler(MixtureDensity):
    """One full-covariance Gaussian per region of the z-points, each drawn with the region's share.

    The regions are those of the fragmentation analysis (`analysis.regions.Regions`), found by the same
    primitive, `region_model.fit_regions`: a full-covariance Gaussian-mixture BIC sweep (1..`max_regions`
    components) on the `pca_dims` leading principal axes of a seeded subsample of at most `max_samples`
    z-points. Each region's Gaussian is then the mean and covariance of *its* points in the full latent
    space (not the mixture's projected components), plus `reg_covar` on the diagonal so that a region with
    fewer points than dimensions still has a proper density. Unlike `gmm`, the number of components is
    the number of regions the analysis reports, and the components live in the full space.

    The density is the mixture's: log sum_r w_r N(z; mean_r, cov_r).

    Attributes
    ----------
    weights_ : ndarray (K,)
        Share of the fitted z-points in each region.
    means_, covariances_ : ndarray (K, N), (K, N, N)
        Each region's mean and covariance (with `reg_covar` added) in the latent space.
    n_regions_ : int
    sweep_components_, sweep_bic_ : ndarray (C,)
        The BIC sweep: components tried and the BIC of each (the lowest picked the regions).
    """

    name = "regions"
    _learned_arrays = ("weights_", "means_", "covariances_", "sweep_components_", "sweep_bic_")
    _learned_scalars = ("n_regions_",)

    max_regions: int = option(
        MAX_REGIONS, help=f"most regions tried in the BIC sweep (default {MAX_REGIONS})", parse=int
    )
    pca_dims: int = option(10, help="principal axes the regions are found on (default 10)", parse=int)
    max_samples: int = 5000
    random_state: int = 0
    reg_covar: float = option(1e-6, check=checks.positive_number)

    def validate_params(self) -> None:
        # region detection's own check of its options (shared with analysis.regions), then reg_covar's
        check_options(self.max_regions, self.pca_dims, self.max_samples, self.random_state, 1)
        super().validate_params()

    def _fit(self, z: np.ndarray) -> None:
        fitted = fit_regions(
            z,
            max_regions=int(self.max_regions),
            pca_dims=int(self.pca_dims),
            max_samples=int(self.max_samples),
            random_state=int(self.random_state),
        ).model
        self.weights_ = fitted.weights
        self.means_ = fitted.means
        self.covariances_ = fitted.covariances + float(self.reg_covar) * np.eye(z.shape[1])
        self.n_regions_ = fitted.n_regions
        self.sweep_components_ = np.asarray([k for k, _ in fitted.bic])
        self.sweep_bic_ = np.asarray([bic for _, bic in fitted.bic])
