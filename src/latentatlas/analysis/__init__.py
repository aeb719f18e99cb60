"""Fitted analyses of a z-point set: one module per finding of the seed, all computed in chunks.

Every estimator follows the scikit-learn convention (keyword-only ``__init__`` that stores options,
``fit(z)`` returns ``self``, learned attributes end in ``_``). ``z`` is a float array ``(n, N)``, typically
a run's memory-mapped ``zpoints.npy``, or a `ZView` (a boolean row selection applied chunkwise); only
subsamples (KS test, MCD core, normality tests, projections) are ever loaded whole.

Each part owns its numbers, its sections of analysis.json (`to_dict`) and its findings (`findings`):

- origin: the origin's position and the chi-square comparison of Mahalanobis distances (part IV)
- dominant: the dominant components (part II)
- distributions: per-component histograms, Gaussian fits, half widths, KS distances (part II)
- correlations: correlation matrix, strongest pairs, confidence ellipses, default planes (part III)
- radii: radii against uniform [-b, b]^N vectors (part II)
- bulk: the bulk's centre, spread and principal axes
- robust: the inner core by the one MCD (`stats.min_cov_det`)
- slices: flat slices outside a coordinate plane (part V)
- normality: the author's normal core (trim beyond 3σ, test at several n; the tests: normality_tests) (later posts)
- regions: fragmentation, regions by a mixture BIC sweep cross-checked by HDBSCAN; `RegionModel` for samplers
- parts / registry: what a part is (`Part`, `Context`) and `PARTS`, the parts in the order of their findings
- latent: `LatentAnalysis`, fits the registry's parts in one go; `to_dict()` is analysis.json
- labels / attributes / conditions: attribute labels, probes and directions, the condition language

Nothing here reads or writes a run folder: `latentatlas.pipelines.analyze.analyze_run` does.
"""

from __future__ import annotations

from latentatlas.analysis.attributes import AttributeAnalysis, AttributeEffect
from latentatlas.analysis.correlations import confidence_ellipse, correlation_matrix, default_planes, strongest_pairs
from latentatlas.analysis.distributions import ComponentDistributions, ks_distance_normal, measure_hwhm
from latentatlas.analysis.dominant import DominantComponents
from latentatlas.analysis.labels import AttributeLabels, attribute_labels
from latentatlas.analysis.latent import SCHEMA, LatentAnalysis
from latentatlas.analysis.normality import CoreNormality
from latentatlas.analysis.normality_tests import NormalityTests, mardia
from latentatlas.analysis.origin import OriginPosition, chi2_comparison
from latentatlas.analysis.radii import Radii, uniform_box, uniform_radius_moments
from latentatlas.analysis.regions import RegionModel, Regions
from latentatlas.analysis.robust import RobustCore
from latentatlas.analysis.slices import independent_gaussian_slice_fraction, slice_counts, slice_fraction, slice_mask
from latentatlas.checks import plane as check_plane
from latentatlas.stats import PCA, BulkStatistics, Mahalanobis, ZView, min_cov_det, precision_matrix

__all__ = [
    "AttributeAnalysis",
    "AttributeEffect",
    "AttributeLabels",
    "attribute_labels",
    "PCA",
    "SCHEMA",
    "BulkStatistics",
    "ComponentDistributions",
    "CoreNormality",
    "DominantComponents",
    "LatentAnalysis",
    "Mahalanobis",
    "NormalityTests",
    "OriginPosition",
    "Radii",
    "RegionModel",
    "Regions",
    "RobustCore",
    "ZView",
    "check_plane",
    "chi2_comparison",
    "confidence_ellipse",
    "correlation_matrix",
    "default_planes",
    "independent_gaussian_slice_fraction",
    "ks_distance_normal",
    "mardia",
    "measure_hwhm",
    "min_cov_det",
    "precision_matrix",
    "slice_counts",
    "slice_fraction",
    "slice_mask",
    "strongest_pairs",
    "uniform_box",
    "uniform_radius_moments",
]
