"""`LatentAnalysis`: every finding of the seed's parts II-VI in one fit over a z-point set.

The parts live one per module and are listed, in the order of their findings, in `registry.PARTS`; this
orchestrator validates the options, fits the statistics every part shares (one pass each over the store),
fits the parts in order and assembles analysis.json (`to_dict`, documented in docs/analysis.md) from
their sections and findings.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np

import latentatlas.analysis.registry as registry
from latentatlas import checks
from latentatlas.analysis.bulk import BulkSummary
from latentatlas.analysis.correlations import Correlations
from latentatlas.analysis.distributions import ComponentDistributions
from latentatlas.analysis.dominant import DominantComponents
from latentatlas.analysis.normality import CoreNormality
from latentatlas.analysis.origin import OriginPosition
from latentatlas.analysis.parts import AnalysisPart, Context, Part
from latentatlas.analysis.radii import Radii
from latentatlas.analysis.regions import Regions
from latentatlas.analysis.robust import RobustCore
from latentatlas.analysis.slices import Slices
from latentatlas.errors import LatentAtlasError
from latentatlas.findings import Finding
from latentatlas.io import to_jsonable
from latentatlas.region_model import MAX_REGIONS
from latentatlas.stats import DEFAULT_CHUNK, PCA, BulkStatistics, Mahalanobis, ZView, as_view, one_blas_thread

SCHEMA = "latentatlas.analysis/1"
# LatentAnalysis's own fitted attributes (without the trailing _): no part may be registered under these names
_OWN_ATTRIBUTES = frozenset(
    ("statistics", "pca", "mahalanobis", "parts", "registry", "skipped", "findings", "n_samples", "n_features")
)


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
    pca_ : stats.PCA
    mahalanobis_ : stats.Mahalanobis
        The shared fits every part reads.
    parts_ : dict
        The fitted parts by registry name, in the registry's order; None for a part skipped for too few points.
        Each is also an attribute `<name>_` (those of `registry.PARTS` are typed below).
    origin_ : OriginPosition
    dominant_ : DominantComponents
    distributions_ : ComponentDistributions
    correlations_ : Correlations
    radii_ : Radii
    bulk_ : BulkSummary
    robust_ : RobustCore or None
    slices_ : Slices
    core_normality_ : CoreNormality or None
    regions_ : Regions or None
    registry_ : tuple of AnalysisPart
        `registry.PARTS` as it was at fit time (to_dict follows it).
    skipped_ : dict
        {part name: reason} for the parts that too few points could not support.
    findings_ : list of Finding
        The seed's claims judged by these numbers, in the registry's order.
    n_samples_, n_features_ : int
    """

    origin_: OriginPosition
    dominant_: DominantComponents
    distributions_: ComponentDistributions
    correlations_: Correlations
    radii_: Radii
    bulk_: BulkSummary
    robust_: RobustCore | None
    slices_: Slices
    core_normality_: CoreNormality | None
    regions_: Regions | None

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
        CoreNormality.configured(self.get_params()).validate()
        Regions.configured(self.get_params()).validate()

    @one_blas_thread
    def fit(self, z: np.ndarray | ZView) -> LatentAnalysis:
        view = as_view(z)
        self.validate(view.dim)
        self.registry_: tuple[AnalysisPart, ...] = tuple(registry.PARTS)
        names = [part.name for part in self.registry_]
        if len(set(names)) < len(names) or set(names) & _OWN_ATTRIBUTES:
            raise ValueError(f"registry.PARTS: names must be unique and not one of {sorted(_OWN_ATTRIBUTES)}: {names}")
        common = {"chunk_size": self.chunk_size, "progress": self.progress}
        # stats' fits take a ZView as well (they call as_view) although annotated ndarray
        self.statistics_ = BulkStatistics(percentiles=self.percentiles, bins=self.histogram_bins, **common).fit(
            view  # pyright: ignore[reportArgumentType]
        )
        s = self.statistics_
        self.pca_ = PCA().fit(covariance=s.cov_)
        self.mahalanobis_ = Mahalanobis(**common).fit(view, s.mean_, s.cov_)  # pyright: ignore[reportArgumentType]
        context = Context(view, self.get_params(), s, self.pca_, self.mahalanobis_, bool(self.progress))
        self.skipped_: dict[str, str] = {}
        self.findings_: list[Finding] = []
        for part in self.registry_:
            fitted = self._fit_part(part, context)
            context.fitted[part.name] = fitted
            setattr(self, part.name + "_", fitted)
            if fitted is not None:
                self.findings_ += fitted.findings()
        self.parts_: dict[str, Part | None] = dict(context.fitted)
        self.n_samples_ = view.n
        self.n_features_ = view.dim
        return self

    def _fit_part(self, part: AnalysisPart, context: Context) -> Part | None:
        """Fit one part; a part that needs more points than the rest reports too few points, not fatal."""
        try:
            return part.fit(context)
        except LatentAtlasError as exc:
            if part.skipped_section is None:
                raise
            self.skipped_[part.name] = str(exc)
            return None

    def to_dict(self) -> dict:
        """analysis.json without the run-level fields: sizes, every part's sections, the findings."""
        result: dict = {"n_points": self.n_samples_, "latent_dim": self.n_features_}
        for part in self.registry_:
            fitted = self.parts_[part.name]
            if fitted is not None:
                result.update(fitted.to_dict())
            elif part.skipped_section is not None:
                result[part.skipped_section] = {"skipped": self.skipped_[part.name]}
        result["findings"] = [f.to_dict() for f in self.findings_]
        return to_jsonable(result)
