"""Where the origin lies relative to the bulk (seed part IV): Mahalanobis and Euclidean views.

Sections "origin" and "normality" (the squared Mahalanobis distances against chi-square); finding
"origin-position".
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from latentatlas.analysis.parts import Context
from latentatlas.findings import Finding, grade
from latentatlas.stats import DEFAULT_CHUNK, Mahalanobis, ZView, as_view

# "at the border" when at least this percentage of the points lie closer to the centre (Mahalanobis);
# "inside" when at most ORIGIN_INSIDE_PERCENT do (then most points lie farther out than the origin)
ORIGIN_BORDER_PERCENT = 90.0
ORIGIN_INSIDE_PERCENT = 50.0


class OriginPosition:
    """The origin z = 0 seen from the bulk: its Mahalanobis distance and how many points lie closer.

    "Closer" is measured both in Mahalanobis units (the bulk's own metric; `percentile_`) and in
    Euclidean distance from the centre (`euclidean_fraction_closer_`: points nearer to the centre than the
    origin is).

    Attributes
    ----------
    sq_distance_, distance_ : float
        Squared and plain Mahalanobis distance of the origin from the centre.
    percentile_ : float
        Percentage (0..100) of the points closer to the centre than the origin (Mahalanobis).
    chi2_percentile_ : float
        The same percentage if the points were a Gaussian (chi-square with rank dof).
    euclidean_distance_ : float
        |centre|.
    euclidean_fraction_closer_ : float
        Share of the points whose Euclidean distance to the centre is below |centre|.
    chi2_ : dict
        `chi2_comparison` of the fitted points' squared Mahalanobis distances (the "normality" section).
    """

    def __init__(self, *, chunk_size: int = DEFAULT_CHUNK):
        self.chunk_size = chunk_size

    def fit(self, z: np.ndarray | ZView, mahalanobis: Mahalanobis) -> OriginPosition:
        view = as_view(z)
        origin = np.zeros(view.dim)
        self.sq_distance_ = float(mahalanobis.sq_distance(origin)[0])
        self.distance_ = float(np.sqrt(self.sq_distance_))
        self.percentile_ = float(mahalanobis.percentile(origin)[0])
        self.chi2_percentile_ = float(100.0 * stats.chi2(mahalanobis.rank_).cdf(self.sq_distance_))
        centre = mahalanobis.mean_
        centre_norm = float(np.linalg.norm(centre))
        closer = 0
        for chunk in view.chunks(self.chunk_size):
            d = chunk - centre
            closer += int(np.sum(np.einsum("ij,ij->i", d, d) < centre_norm**2))
        self.euclidean_distance_ = centre_norm
        self.euclidean_fraction_closer_ = closer / view.n
        self.chi2_ = chi2_comparison(mahalanobis.sq_distances_, mahalanobis.rank_)
        return self

    @classmethod
    def from_context(cls, context: Context) -> OriginPosition:
        return cls(chunk_size=context.options["chunk_size"]).fit(context.view, context.mahalanobis)

    def to_dict(self) -> dict:
        """The analysis.json "origin" and "normality" sections."""
        origin = {
            "mahalanobis": self.distance_,
            "mahalanobis_sq": self.sq_distance_,
            "percentile": self.percentile_,
            "fraction_closer": self.percentile_ / 100.0,
            "chi2_percentile": self.chi2_percentile_,
            "euclidean_distance": self.euclidean_distance_,
            "euclidean_fraction_closer": self.euclidean_fraction_closer_,
        }
        return {"origin": origin, "normality": self.chi2_}

    def findings(self) -> list[Finding]:
        return [origin_finding(self.percentile_, self.distance_)]


def origin_finding(percentile: float, distance: float) -> Finding:
    """The seed's origin claim from the share of points closer to the centre than the origin."""
    return Finding(
        key="origin-position",
        claim="the origin lies at the border of the bulk, not inside it",
        verdict=grade(percentile, ORIGIN_BORDER_PERCENT, ORIGIN_INSIDE_PERCENT),
        evidence=f"Mahalanobis distance {distance:.2f}; {percentile:.1f} % of the z-points lie closer to the centre "
        f"than the origin, {100 - percentile:.1f} % farther out (border >= {ORIGIN_BORDER_PERCENT:g} %, "
        f"inside <= {ORIGIN_INSIDE_PERCENT:g} %)",
    )


def chi2_comparison(sq_distances: np.ndarray, dof: int) -> dict:
    """Squared Mahalanobis distances (sorted, from the plain mean and covariance) against chi-square(dof).

    For a Gaussian they follow chi-square with dof = rank degrees of freedom (exactly in the limit of many
    points). Returns the analysis.json "normality" section: dof, mean_sq, expected_mean_sq (the exact sample
    value dof (n - 1) / n), the KS distance to chi-square and the share beyond its 99th percentile.
    """
    sq = np.sort(np.asarray(sq_distances, dtype=np.float64))
    n = len(sq)
    cdf = stats.chi2(dof).cdf(sq)
    steps = np.arange(1, n + 1) / n
    return {
        "dof": int(dof),
        "mean_sq": float(sq.mean()),
        "expected_mean_sq": float(dof * (n - 1) / n),
        "ks_statistic": float(max((steps - cdf).max(), (cdf - steps + 1.0 / n).max())),
        "fraction_beyond_chi2_99": float(np.mean(sq > stats.chi2(dof).ppf(0.99))),
    }
