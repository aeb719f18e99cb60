"""The inner core's covariance by the one Minimum Covariance Determinant (`stats.min_cov_det`), vs. the plain one.

Section "robust_core"; no finding of its own (the normal-core claim is `CoreNormality`'s).
"""

from __future__ import annotations

import math

import numpy as np

from latentatlas import checks
from latentatlas.analysis.parts import Context
from latentatlas.errors import LatentAtlasError
from latentatlas.findings import Finding
from latentatlas.stats import ZView, as_view, log_det, min_cov_det, moments, one_blas_thread, precision_matrix


class RobustCore:
    """Covariance of the inner core by Minimum Covariance Determinant on a seeded subsample, vs. the plain one.

    See `min_cov_det` for the estimator. `location_`, `covariance_` are the robust estimates;
    the comparisons with the plain covariance end in `_` too.

    Attributes
    ----------
    n_subsample_ : int
    location_, covariance_ : ndarray
        The reweighted MCD estimates.
    support_ : ndarray of bool (n_subsample_,)
        Subsample rows inside the reweighted core.
    support_fraction_ : float
    std_ratio_ : ndarray (N,)
        Robust over plain standard deviation per component.
    log_det_plain_, log_det_robust_, log_generalized_variance_ratio_, relative_frobenius_ : float
    mean_shift_mahalanobis_ : float
        Distance of the robust centre from the plain one, in plain Mahalanobis units.
    """

    def __init__(self, *, max_samples: int = 5000, support_fraction: float | None = None, random_state: int = 0):
        self.max_samples = max_samples
        self.support_fraction = support_fraction
        self.random_state = random_state

    @one_blas_thread
    def fit(
        self, z: np.ndarray | ZView, mean: np.ndarray | None = None, covariance: np.ndarray | None = None
    ) -> RobustCore:
        view = as_view(z)
        max_samples = checks.positive_int(self.max_samples, "max_samples", 2)
        if self.support_fraction is not None:
            checks.fraction(self.support_fraction, "support_fraction", 0.5, 1.0, open_low=False, open_high=False)
        size = min(max_samples, view.n)
        if size < view.dim + 2:
            raise LatentAtlasError(
                f"the robust core needs more than N + 1 = {view.dim + 1} points in its subsample, got {size}"
            )
        if mean is None or covariance is None:
            fitted = moments(view)
            mean, covariance = fitted.mean, fitted.cov
        mean, covariance = np.asarray(mean, dtype=np.float64), np.asarray(covariance, dtype=np.float64)
        sample = view.subsample(size, self.random_state)
        mcd = min_cov_det(sample, self.support_fraction)
        self.n_subsample_ = len(sample)
        self.location_ = mcd["location"]
        self.covariance_ = mcd["covariance"]
        self.support_ = mcd["support"]
        self.support_fraction_ = float(self.support_.mean())
        plain_std = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
        robust_std = np.sqrt(np.clip(np.diag(self.covariance_), 0.0, None))
        self.std_ratio_ = np.where(plain_std > 0, robust_std / np.where(plain_std > 0, plain_std, 1.0), 1.0)
        self.log_det_plain_ = log_det(covariance)
        self.log_det_robust_ = log_det(self.covariance_)
        self.log_generalized_variance_ratio_ = self.log_det_robust_ - self.log_det_plain_
        self.relative_frobenius_ = float(
            np.linalg.norm(self.covariance_ - covariance) / max(float(np.linalg.norm(covariance)), 1e-300)
        )
        precision, _ = precision_matrix(covariance)
        shift = self.location_ - mean
        self.mean_shift_mahalanobis_ = float(math.sqrt(max(float(shift @ precision @ shift), 0.0)))
        return self

    @classmethod
    def from_context(cls, context: Context) -> RobustCore:
        s = context.statistics
        return cls(max_samples=context.options["mcd_samples"], random_state=context.random_state).fit(
            context.view, s.mean_, s.cov_
        )

    def to_dict(self) -> dict:
        """The analysis.json "robust_core" section."""
        ratio = self.std_ratio_
        return {
            "robust_core": {
                "n_subsample": self.n_subsample_,
                "support_fraction": self.support_fraction_,
                "log_det_plain": self.log_det_plain_,
                "log_det_robust": self.log_det_robust_,
                "log_generalized_variance_ratio": self.log_generalized_variance_ratio_,
                "relative_frobenius": self.relative_frobenius_,
                "std_ratio": {"min": float(ratio.min()), "median": float(np.median(ratio)), "max": float(ratio.max())},
                "mean_shift_mahalanobis": self.mean_shift_mahalanobis_,
            }
        }

    def findings(self) -> list[Finding]:
        return []
