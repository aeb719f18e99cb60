"""`LatentAnalysis`: every finding of the seed's parts II-VI in one fit over a z-point set.

The estimators live one per module (distributions, dominant, correlations, radii, origin, robust, slices);
this orchestrator runs them in the order that shares passes over the store and assembles analysis.json
(`to_dict`, documented in docs/analysis.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from latentatlas import checks
from latentatlas.analysis.correlations import confidence_ellipse, correlation_matrix, default_planes, strongest_pairs
from latentatlas.analysis.distributions import ComponentDistributions
from latentatlas.analysis.dominant import DominantComponents
from latentatlas.analysis.normality import CoreNormality
from latentatlas.analysis.origin import OriginPosition, chi2_comparison
from latentatlas.analysis.radii import Radii
from latentatlas.analysis.regions import Regions
from latentatlas.analysis.robust import RobustCore
from latentatlas.analysis.seed_claims import seed_findings
from latentatlas.analysis.slices import independent_gaussian_slice_fraction, slice_counts
from latentatlas.errors import LatentAtlasError
from latentatlas.region_model import MAX_REGIONS
from latentatlas.stats import DEFAULT_CHUNK, PCA, BulkStatistics, Mahalanobis, ZView, as_view, log_det, one_blas_thread

SCHEMA = "latentatlas.analysis/1"


class LatentAnalysis:
    """Every analysis of a z-point set in one fit; `to_dict()` gives analysis.json (without figures).

    Options (all validated before any pass over the data):
      percentiles          value interval per component (lower, upper percentile)
      offset_k, width, relative_width, combine   the dominant-component rule (see DominantComponents)
      top_pairs            number of strongest correlation pairs reported
      planes               coordinate planes [(j1, j2), ...]; None: `n_planes` from dominant components and
                           the strongest correlations
      confidences          confidence levels of the ellipses, each in (0, 1)
      radius_b             b values of the uniform [-b, b]^N comparison vectors
      slice_b              half widths of the flat cuboid slices; None: 1.5 (the seed's) and b_match
      mcd_samples, ks_samples, simulate   subsample sizes (robust core, KS test, simulated uniform radii)
      histogram_bins, chunk_size   fine histogram bins per component, rows read per chunk
      normality_sizes, normality_pairwise_points   sample sizes of the normal-core tests (see CoreNormality)
      max_regions, region_pca_dims   the fragmentation sweep (see Regions)
      random_state         seed of every subsample and simulation

    Attributes
    ----------
    statistics_ : BulkStatistics
    distributions_ : ComponentDistributions
    dominant_ : DominantComponents
    correlation_ : ndarray (N, N)
    pairs_ : list of (i, j, r)
        The `top_pairs` strongest correlations.
    planes_ : list of ((j1, j2), source)
    ellipses_ : list of list of dict
        Per plane, one `confidence_ellipse` per confidence level.
    pca_ : stats.PCA
    radii_ : Radii
    mahalanobis_ : stats.Mahalanobis
    origin_ : OriginPosition
    normality_ : dict
        `chi2_comparison` of the squared Mahalanobis distances.
    robust_ : RobustCore or None
    robust_skipped_ : str or None
        Why there is no robust core (too few points), else None.
    slice_b_ : list of float
    slice_counts_ : ndarray (len(slice_b_), len(planes_))
    slice_indices_ : list of list of ndarray
        Up to 5,000 row positions per slice (for the figures).
    core_normality_ : CoreNormality or None
    regions_ : Regions or None
    skipped_ : dict
        {"core_normality" | "regions": reason} for parts that too few points could not support.
    findings_ : list of Finding
        The seed's claims judged by these numbers (`seed_claims`).
    n_samples_, n_features_ : int
    """

    def __init__(
        self,
        *,
        percentiles: Sequence[float] = (1.0, 99.0),
        offset_k: float = 1.0,
        width: float | None = None,
        relative_width: float = 1.5,
        combine: str = "or",
        top_pairs: int = 10,
        planes: Sequence[Sequence[int]] | None = None,
        n_planes: int = 4,
        confidences: Sequence[float] = (0.5, 0.9, 0.99),
        radius_b: Sequence[float] = (0.5, 1.0, 1.5, 2.0, 5.0),
        slice_b: Sequence[float] | None = None,
        mcd_samples: int = 5000,
        ks_samples: int = 20000,
        simulate: int = 20000,
        histogram_bins: int = 4096,
        normality_sizes: Sequence[int | str] = (1000, 5000, 10000, "all"),
        normality_pairwise_points: int = 2000,
        max_regions: int = MAX_REGIONS,
        region_pca_dims: int = 10,
        chunk_size: int = DEFAULT_CHUNK,
        random_state: int = 0,
        progress: bool = False,
    ):
        self.percentiles = percentiles
        self.offset_k = offset_k
        self.width = width
        self.relative_width = relative_width
        self.combine = combine
        self.top_pairs = top_pairs
        self.planes = planes
        self.n_planes = n_planes
        self.confidences = confidences
        self.radius_b = radius_b
        self.slice_b = slice_b
        self.mcd_samples = mcd_samples
        self.ks_samples = ks_samples
        self.simulate = simulate
        self.histogram_bins = histogram_bins
        self.normality_sizes = normality_sizes
        self.normality_pairwise_points = normality_pairwise_points
        self.max_regions = max_regions
        self.region_pca_dims = region_pca_dims
        self.chunk_size = chunk_size
        self.random_state = random_state
        self.progress = progress

    def get_params(self) -> dict:
        """The constructor's options (JSON-ready), as scikit-learn's get_params."""
        import inspect

        names = [n for n in inspect.signature(type(self).__init__).parameters if n != "self"]
        return {n: getattr(self, n) for n in names if n != "progress"}

    def validate(self, dim: int) -> None:
        """Raise LatentAtlasError for any bad option, before touching the data."""
        if dim < 2:
            raise LatentAtlasError(f"the analysis needs a latent dimension of at least 2, got {dim}")
        p = [float(v) for v in self.percentiles]
        if len(p) != 2 or not 0.0 <= p[0] < p[1] <= 100.0:
            raise LatentAtlasError(f"percentiles must be two numbers 0 <= lo < hi <= 100, got {self.percentiles!r}")
        checks.positive_number(self.offset_k, "offset_k")
        if self.width is not None:
            checks.positive_number(self.width, "width")
        checks.positive_number(self.relative_width, "relative_width")
        if self.combine not in ("or", "and"):
            raise LatentAtlasError(f"combine must be 'or' or 'and', got {self.combine!r}")
        checks.positive_int(self.top_pairs, "top_pairs", 0)
        checks.positive_int(self.n_planes, "n_planes", 0)
        if self.planes is not None:
            seen = set()
            for plane in self.planes:
                key = frozenset(checks.plane(plane, dim))
                if key in seen:
                    raise LatentAtlasError(f"plane {tuple(plane)} is given twice")
                seen.add(key)
        if not len(self.confidences):
            raise LatentAtlasError("give at least one confidence level")
        for c in self.confidences:
            checks.confidence(c)
        if not len(self.radius_b):
            raise LatentAtlasError("give at least one radius b")
        for b in self.radius_b:
            checks.positive_number(b, "a radius b")
        for b in self.slice_b or ():
            checks.positive_number(b, "a slice b")
        for name in ("mcd_samples", "ks_samples", "simulate"):
            checks.positive_int(getattr(self, name), name, 2)
        checks.positive_int(self.histogram_bins, "histogram_bins", 2)
        checks.positive_int(self.chunk_size, "chunk_size")
        checks.seed(self.random_state, "random_state")
        self._core_normality().validate()
        self._regions().validate()

    @one_blas_thread
    def fit(self, z: np.ndarray | ZView) -> LatentAnalysis:
        view = as_view(z)
        self.validate(view.dim)
        common = {"chunk_size": self.chunk_size, "progress": self.progress}
        # stats' fits take a ZView as well (they call as_view) although annotated ndarray
        self.statistics_ = BulkStatistics(percentiles=self.percentiles, bins=self.histogram_bins, **common).fit(
            view  # pyright: ignore[reportArgumentType]
        )
        s = self.statistics_
        self.distributions_ = ComponentDistributions(
            ks_samples=self.ks_samples, random_state=self.random_state, **common
        ).fit(view, s)
        self.dominant_ = DominantComponents(
            offset_k=self.offset_k, width=self.width, relative_width=self.relative_width, combine=self.combine
        ).fit(statistics=s)
        self.correlation_ = correlation_matrix(s.cov_)
        self.pairs_ = strongest_pairs(self.correlation_, self.top_pairs)
        if self.planes is not None:
            self.planes_ = [(checks.plane(p, view.dim), "user") for p in self.planes]
        else:
            self.planes_ = default_planes(
                self.dominant_.components_, strongest_pairs(self.correlation_, self.n_planes), self.n_planes
            )
        self.ellipses_ = [
            [confidence_ellipse(s.mean_[list(p)], s.cov_[np.ix_(p, p)], c) for c in self.confidences]
            for p, _ in self.planes_
        ]
        self.pca_ = PCA().fit(covariance=s.cov_)
        self.radii_ = Radii(
            b_values=self.radius_b, simulate=self.simulate, random_state=self.random_state, **common
        ).fit(view)
        self.mahalanobis_ = Mahalanobis(**common).fit(view, s.mean_, s.cov_)  # pyright: ignore[reportArgumentType]
        self.origin_ = OriginPosition(chunk_size=self.chunk_size).fit(view, self.mahalanobis_)
        self.normality_ = chi2_comparison(self.mahalanobis_.sq_distances_, self.mahalanobis_.rank_)
        try:
            self.robust_ = RobustCore(max_samples=self.mcd_samples, random_state=self.random_state).fit(
                view, s.mean_, s.cov_
            )
            self.robust_skipped_ = None
        except LatentAtlasError as exc:  # too few points for an MCD core: reported, not fatal
            self.robust_, self.robust_skipped_ = None, str(exc)
        self.slice_b_ = [float(b) for b in self.slice_b] if self.slice_b else [1.5, float(self.radii_.b_match_)]
        planes = [p for p, _ in self.planes_]
        counts, indices = (
            slice_counts(view, planes, self.slice_b_, self.chunk_size, keep_indices=5000, progress=self.progress)
            if planes
            else (np.zeros((len(self.slice_b_), 0)), [])
        )
        self.slice_counts_ = counts
        self.slice_indices_ = indices
        self.n_samples_ = view.n
        self.n_features_ = view.dim
        self.skipped_ = {}
        self.core_normality_ = self._optional("core_normality", lambda: self._core_normality().fit(view))
        self.regions_ = self._optional("regions", lambda: self._regions().fit(view, self.pca_))
        self.findings_ = seed_findings(self)
        if self.core_normality_ is not None:
            self.findings_ += self.core_normality_.findings()
        if self.regions_ is not None:
            self.findings_.append(self.regions_.finding())
        return self

    def _core_normality(self) -> CoreNormality:
        return CoreNormality(
            sizes=self.normality_sizes,
            pairwise_points=self.normality_pairwise_points,
            mcd_samples=self.mcd_samples,
            random_state=self.random_state,
            chunk_size=self.chunk_size,
        )

    def _regions(self) -> Regions:
        return Regions(
            max_regions=self.max_regions,
            pca_dims=self.region_pca_dims,
            random_state=self.random_state,
            chunk_size=self.chunk_size,
        )

    def _optional(self, name: str, fit: Callable[[], Any]) -> Any:
        """Run a part that needs more points than the rest; too few points are reported, not fatal."""
        try:
            return fit()
        except LatentAtlasError as exc:
            self.skipped_[name] = str(exc)
            return None

    def to_dict(self) -> dict:
        s, d, dom = self.statistics_, self.distributions_, self.dominant_
        components = [
            {
                "index": j,
                "mean": s.mean_[j],
                "std": s.std_[j],
                "lower": s.lower_[j],
                "upper": s.upper_[j],
                "hwhm": d.hwhm_[j],
                "hwhm_gaussian": d.hwhm_gaussian_[j],
                "hwhm_ratio": d.hwhm_[j] / d.hwhm_gaussian_[j] if d.hwhm_gaussian_[j] > 0 else None,
                "skewness": s.skewness_[j],
                "excess_kurtosis": s.kurtosis_[j],
                "ks_statistic": d.ks_[j],
            }
            for j in range(self.n_features_)
        ]
        logdet = log_det(s.cov_)
        eig = self.pca_.eigenvalues_
        r = self.radii_
        robust = (
            {"skipped": self.robust_skipped_}
            if self.robust_ is None
            else {
                "n_subsample": self.robust_.n_subsample_,
                "support_fraction": self.robust_.support_fraction_,
                "log_det_plain": self.robust_.log_det_plain_,
                "log_det_robust": self.robust_.log_det_robust_,
                "log_generalized_variance_ratio": self.robust_.log_generalized_variance_ratio_,
                "relative_frobenius": self.robust_.relative_frobenius_,
                "std_ratio": {
                    "min": float(self.robust_.std_ratio_.min()),
                    "median": float(np.median(self.robust_.std_ratio_)),
                    "max": float(self.robust_.std_ratio_.max()),
                },
                "mean_shift_mahalanobis": self.robust_.mean_shift_mahalanobis_,
            }
        )
        slices = []
        for bi, b in enumerate(self.slice_b_):
            for pi, (plane, _) in enumerate(self.planes_):
                count = int(self.slice_counts_[bi, pi])
                slices.append(
                    {
                        "plane": list(plane),
                        "b": b,
                        "count": count,
                        "fraction": count / self.n_samples_,
                        "independent_gaussian_fraction": independent_gaussian_slice_fraction(s.mean_, s.std_, plane, b),
                    }
                )
        return _plain(
            {
                "n_points": self.n_samples_,
                "latent_dim": self.n_features_,
                "components": components,
                "dominant": {
                    "rule": {
                        "offset_k": float(self.offset_k),
                        "width_threshold": dom.width_threshold_,
                        "width_rule": dom.width_rule_,
                        "combine": self.combine,
                    },
                    "components": dom.table(s.mean_, s.std_),
                },
                "bulk": {
                    "centre_norm": float(np.linalg.norm(s.mean_)),
                    "total_variance": float(np.trace(s.cov_)),
                    "log_generalized_variance": logdet if math.isfinite(logdet) else None,
                    "std_median": float(np.median(s.std_)),
                    "std_min": float(s.std_.min()),
                    "std_max": float(s.std_.max()),
                    "covariance_rank": self.mahalanobis_.rank_,
                    "condition_number": float(eig[0] / eig[-1]) if eig[-1] > 0 else None,
                },
                "correlations": {
                    "strongest": [{"pair": [i, j], "r": v} for i, j, v in self.pairs_],
                    "mean_abs_r": float(np.abs(self.correlation_[np.triu_indices(self.n_features_, 1)]).mean()),
                    "max_abs_r": float(abs(self.pairs_[0][2])) if self.pairs_ else None,
                },
                "planes": [
                    {
                        "plane": list(p),
                        "source": source,
                        "r": float(self.correlation_[p[0], p[1]]),
                        "ellipses": ellipses,
                    }
                    for (p, source), ellipses in zip(self.planes_, self.ellipses_)
                ],
                "pca": {
                    "explained_variance_ratio": self.pca_.explained_variance_ratio_[:32],
                    "n_components_90": self.pca_.n_components_90_,
                    "n_components_99": self.pca_.n_components_99_,
                    "participation_ratio": self.pca_.participation_ratio_,
                },
                "radii": {
                    "data": {
                        "mean": r.mean_,
                        "std": r.std_,
                        "min": r.min_,
                        "max": r.max_,
                        "p1": float(np.percentile(r.radii_, 1)),
                        "p50": float(np.median(r.radii_)),
                        "p99": float(np.percentile(r.radii_, 99)),
                    },
                    "uniform": [{k: v for k, v in row.items() if k != "simulated_radii"} for row in r.uniform_],
                    "b_match": r.b_match_,
                    "b_match_approx": r.b_match_approx_,
                    "b_overlap": [r.b_overlap_[0], r.b_overlap_[1] if math.isfinite(r.b_overlap_[1]) else None],
                },
                "origin": self.origin_.to_dict(),
                "normality": self.normality_,
                "robust_core": robust,
                "slices": slices,
                "core_normality": (
                    {"skipped": self.skipped_["core_normality"]}
                    if self.core_normality_ is None
                    else self.core_normality_.to_dict()
                ),
                "regions": {"skipped": self.skipped_["regions"]} if self.regions_ is None else self.regions_.to_dict(),
                "findings": [f.to_dict() for f in self.findings_],
            }
        )


def _plain(value: Any) -> Any:
    """numpy scalars and arrays to Python numbers and lists; NaN and infinities to None (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
