"""The parts of the analysis, in the order of their findings in analysis.json.

`LatentAnalysis` fits the shared statistics, then every part below in this order: a part may read the
parts above it (`Context.part`). Its sections of analysis.json and its findings follow the same order.
Adding a finding: one module with a part (`from_context`, `to_dict`, `findings`; see `parts.Part`) and
one line here.
"""

from __future__ import annotations

from latentatlas.analysis.bulk import BulkSummary
from latentatlas.analysis.correlations import Correlations
from latentatlas.analysis.distributions import ComponentDistributions
from latentatlas.analysis.dominant import DominantComponents
from latentatlas.analysis.normality import CoreNormality
from latentatlas.analysis.origin import OriginPosition
from latentatlas.analysis.parts import AnalysisPart
from latentatlas.analysis.radii import Radii
from latentatlas.analysis.regions import Regions
from latentatlas.analysis.robust import RobustCore
from latentatlas.analysis.slices import Slices

PARTS: tuple[AnalysisPart, ...] = (
    AnalysisPart("origin", OriginPosition.from_context),  # origin-position
    AnalysisPart("dominant", DominantComponents.from_context),  # dominant-components
    AnalysisPart("distributions", ComponentDistributions.from_context),  # gaussian-marginals
    AnalysisPart("correlations", Correlations.from_context),  # strong-correlations (planes from dominant)
    AnalysisPart("radii", Radii.from_context),  # uniform-shell-misses-bulk
    AnalysisPart("bulk", BulkSummary.from_context),  # bulk-off-centre (reads origin and radii)
    AnalysisPart("robust", RobustCore.from_context, skipped_section="robust_core"),
    AnalysisPart("slices", Slices.from_context),  # planes from correlations, b_match from radii
    AnalysisPart("core_normality", CoreNormality.from_context, skipped_section="core_normality"),  # normal-core, ...
    AnalysisPart("regions", Regions.from_context, skipped_section="regions"),  # one-compact-region
)
