"""The numeric primitives every analysis, sampler and evaluation shares, one implementation each.

- `views`: `ZView`, rows of a (memory-mapped) z-point array read in float64 chunks, with an optional row
  selection; `subsample`.
- `moments`: `moments(z)` / `MomentSums`, the one chunked mean and covariance (plus per-component skewness,
  kurtosis, min and max); `BulkStatistics` adds fine per-component histograms; `PCA`, the eigen-spectrum.
- `gaussian`: `precision_matrix`, `log_det`, the one Mahalanobis distance (`sq_mahalanobis`, the fitted
  `Mahalanobis`, `fit_gaussian`), `gaussian_factor`, `gaussian_log_density`.
- `robust`: `min_cov_det`, the robust core (Minimum Covariance Determinant, deterministic starts).
- `blas`: `single_thread_blas` / `one_blas_thread`.

Everything here takes arrays and returns arrays or fitted objects; nothing touches a run folder.
"""

from latentatlas.stats.blas import one_blas_thread, single_thread_blas
from latentatlas.stats.gaussian import (
    GaussianFit,
    Mahalanobis,
    fit_gaussian,
    gaussian_factor,
    gaussian_log_density,
    log_det,
    precision_matrix,
    sq_mahalanobis,
)
from latentatlas.stats.moments import PCA, BulkStatistics, Moments, MomentSums, moments
from latentatlas.stats.robust import min_cov_det
from latentatlas.stats.views import DEFAULT_CHUNK, ZView, as_view, release_pages, subsample

__all__ = [
    "DEFAULT_CHUNK",
    "PCA",
    "BulkStatistics",
    "GaussianFit",
    "Mahalanobis",
    "MomentSums",
    "Moments",
    "ZView",
    "as_view",
    "fit_gaussian",
    "gaussian_factor",
    "gaussian_log_density",
    "log_det",
    "min_cov_det",
    "moments",
    "one_blas_thread",
    "precision_matrix",
    "release_pages",
    "single_thread_blas",
    "sq_mahalanobis",
    "subsample",
]
