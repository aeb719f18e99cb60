"""The bulk as a whole: its centre, spread and principal axes (seed parts II and IX).

Sections "bulk" and "pca"; finding "bulk-off-centre".
"""

from __future__ import annotations

import math

import numpy as np

from latentatlas.analysis.origin import OriginPosition
from latentatlas.analysis.parts import Context
from latentatlas.analysis.radii import Radii
from latentatlas.findings import Finding, grade
from latentatlas.stats import PCA, BulkStatistics, Mahalanobis, log_det

# off-centre: the centre lies this many Mahalanobis units from the origin (below 1: centred)
OFF_CENTRE_DISTANCE = 3.0


class BulkSummary:
    """Centre, spread and principal axes of the bulk, from the shared fits.

    The off-centre claim is judged here because it is about the bulk's centre; it reads the origin's
    Mahalanobis distance and |centre| (`OriginPosition`, the same numbers as the "origin" section) and the rms
    radius (`Radii`), so the registry lists this part after both.

    Attributes
    ----------
    statistics_, pca_, mahalanobis_ : the shared fits
    origin_distance_, centre_norm_, rms_radius_ : float
        The numbers of the off-centre finding.
    """

    def fit(
        self, statistics: BulkStatistics, pca: PCA, mahalanobis: Mahalanobis, origin: OriginPosition, radii: Radii
    ) -> BulkSummary:
        self.statistics_, self.pca_, self.mahalanobis_ = statistics, pca, mahalanobis
        self.origin_distance_ = origin.distance_
        self.centre_norm_ = origin.euclidean_distance_
        self.rms_radius_ = radii.rms_
        return self

    @classmethod
    def from_context(cls, context: Context) -> BulkSummary:
        return cls().fit(
            context.statistics, context.pca, context.mahalanobis, context.part("origin"), context.part("radii")
        )

    def to_dict(self) -> dict:
        """The analysis.json "bulk" and "pca" sections."""
        s, pca = self.statistics_, self.pca_
        logdet = log_det(s.cov_)
        eig = pca.eigenvalues_
        bulk = {
            "centre_norm": float(np.linalg.norm(s.mean_)),
            "total_variance": float(np.trace(s.cov_)),
            "log_generalized_variance": logdet if math.isfinite(logdet) else None,
            "std_median": float(np.median(s.std_)),
            "std_min": float(s.std_.min()),
            "std_max": float(s.std_.max()),
            "covariance_rank": self.mahalanobis_.rank_,
            "condition_number": float(eig[0] / eig[-1]) if eig[-1] > 0 else None,
        }
        principal = {
            "explained_variance_ratio": pca.explained_variance_ratio_[:32],
            "n_components_90": pca.n_components_90_,
            "n_components_99": pca.n_components_99_,
            "participation_ratio": pca.participation_ratio_,
        }
        return {"bulk": bulk, "pca": principal}

    def findings(self) -> list[Finding]:
        return [off_centre_finding(self.origin_distance_, self.centre_norm_, self.rms_radius_)]


def off_centre_finding(distance: float, centre_norm: float, rms_radius: float) -> Finding:
    """The seed's "the bulk's centre lies away from the origin", in Mahalanobis units."""
    return Finding(
        key="bulk-off-centre",
        claim="the bulk's centre lies away from the origin",
        verdict=grade(distance, OFF_CENTRE_DISTANCE, 1.0),
        evidence=f"the centre lies {distance:.2f} Mahalanobis units (|centre| = {centre_norm:.3f}, "
        f"{100 * centre_norm / max(rms_radius, 1e-300):.0f} % of the rms radius) from the origin "
        f"(off-centre >= {OFF_CENTRE_DISTANCE:g}, centred < 1)",
    )
