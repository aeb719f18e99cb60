"""The seed's claims about the bulk (parts II-VI), each judged by a fitted `LatentAnalysis`'s numbers.

Every verdict is a `Finding` whose evidence sentence is built from the numbers; the thresholds below are
the only judgement calls, written out so that a reader can disagree with them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from latentatlas.analysis.radii import uniform_box
from latentatlas.findings import Finding, Verdict

if TYPE_CHECKING:
    from latentatlas.analysis.latent import LatentAnalysis

# origin: "at the border" when at least this percentage of the points lie closer to the centre (Mahalanobis);
# "inside" when at most ORIGIN_INSIDE_PERCENT do (then most points lie farther out than the origin)
ORIGIN_BORDER_PERCENT = 90.0
ORIGIN_INSIDE_PERCENT = 50.0
# "a few" dominant components: at least one and at most this share of N; "many" beyond the second share
FEW_DOMINANT_SHARE = 0.10
MANY_DOMINANT_SHARE = 0.25
# a marginal is "close to a Gaussian" when its KS distance is below the larger of this and the 1 % critical value
KS_CLOSE = 0.03
# strong linear correlations: the strongest |r| at least this; none when it stays below the weak bound
STRONG_R = 0.5
WEAK_R = 0.2
# the uniform shell "misses" the bulk when this share of its vectors lies beyond the 99th percentile of
# the z-points' Mahalanobis distances
SHELL_MISS_SHARE = 0.9
SHELL_VECTORS = 2000
# off-centre: the centre lies this many Mahalanobis units from the origin (below 1: centred)
OFF_CENTRE_DISTANCE = 3.0


def _grade(value: float, agree: float, disagree: float, higher_agrees: bool = True) -> Verdict:
    """'agrees' beyond `agree`, 'disagrees' beyond `disagree` (the other way), 'mixed' between."""
    if not math.isfinite(value):
        return "undecided"
    sign = 1.0 if higher_agrees else -1.0
    if sign * value >= sign * agree:
        return "agrees"
    if sign * value <= sign * disagree:
        return "disagrees"
    return "mixed"


def origin_finding(percentile: float, distance: float) -> Finding:
    verdict = _grade(percentile, ORIGIN_BORDER_PERCENT, ORIGIN_INSIDE_PERCENT)
    return Finding(
        key="origin-position",
        claim="the origin lies at the border of the bulk, not inside it",
        verdict=verdict,
        evidence=f"Mahalanobis distance {distance:.2f}; {percentile:.1f} % of the z-points lie closer to the centre "
        f"than the origin, {100 - percentile:.1f} % farther out (border >= {ORIGIN_BORDER_PERCENT:g} %, "
        f"inside <= {ORIGIN_INSIDE_PERCENT:g} %)",
    )


def dominant_finding(count: int, dim: int, rule: str) -> Finding:
    share = count / dim
    if count == 0 or share > MANY_DOMINANT_SHARE:
        verdict: Verdict = "disagrees"
    elif share <= FEW_DOMINANT_SHARE:
        verdict = "agrees"
    else:
        verdict = "mixed"
    return Finding(
        key="dominant-components",
        claim="a few components dominate, with a mean away from 0 and a larger width",
        verdict=verdict,
        evidence=f"{count} of N = {dim} components ({100 * share:.1f} %) pass the rule {rule} "
        f"(a few: 1 to {100 * FEW_DOMINANT_SHARE:g} % of N; many: over {100 * MANY_DOMINANT_SHARE:g} %)",
    )


def marginals_finding(ks: np.ndarray, n_samples: int) -> Finding:
    threshold = max(KS_CLOSE, 1.63 / math.sqrt(max(n_samples, 1)))
    share = float(np.mean(np.asarray(ks) < threshold))
    return Finding(
        key="gaussian-marginals",
        claim="every component's number distribution is close to a Gaussian",
        verdict=_grade(share, 0.9, 0.5),
        evidence=f"{100 * share:.1f} % of the components have a Kolmogorov-Smirnov distance below {threshold:.3f} "
        f"to their fitted Gaussian ({n_samples} points; median distance {float(np.median(ks)):.3f})",
    )


def correlations_finding(max_abs_r: float, strong_pairs: int) -> Finding:
    return Finding(
        key="strong-correlations",
        claim="components are strongly linearly correlated (tilted elliptic contours)",
        verdict=_grade(max_abs_r, STRONG_R, WEAK_R),
        evidence=f"strongest |r| = {max_abs_r:.2f}; {strong_pairs} pairs with |r| >= {STRONG_R:g} "
        f"(strong >= {STRONG_R:g}, none below {WEAK_R:g})",
    )


def shell_finding(beyond_share: float, b_match: float) -> Finding:
    return Finding(
        key="uniform-shell-misses-bulk",
        claim="vectors uniform in [-b, b]^N lie on a thin shell that misses the bulk",
        verdict=_grade(beyond_share, SHELL_MISS_SHARE, 0.5),
        evidence=f"{100 * beyond_share:.1f} % of {SHELL_VECTORS} uniform vectors at b_match = {b_match:.3f} (same mean "
        "radius as the z-points) lie farther from the centre than 99 % of the z-points (Mahalanobis)",
    )


def off_centre_finding(distance: float, centre_norm: float, rms_radius: float) -> Finding:
    return Finding(
        key="bulk-off-centre",
        claim="the bulk's centre lies away from the origin",
        verdict=_grade(distance, OFF_CENTRE_DISTANCE, 1.0),
        evidence=f"the centre lies {distance:.2f} Mahalanobis units (|centre| = {centre_norm:.3f}, "
        f"{100 * centre_norm / max(rms_radius, 1e-300):.0f} % of the rms radius) from the origin "
        f"(off-centre >= {OFF_CENTRE_DISTANCE:g}, centred < 1)",
    )


def seed_findings(analysis: LatentAnalysis) -> list[Finding]:
    """The verdicts on the seed's claims, from a fitted LatentAnalysis."""
    s, m, origin = analysis.statistics_, analysis.mahalanobis_, analysis.origin_
    dim = s.n_features_
    corr = np.abs(analysis.correlation_[np.triu_indices(dim, 1)])
    shell = uniform_box(SHELL_VECTORS, dim, analysis.radii_.b_match_, seed=int(analysis.random_state))
    p99 = float(np.quantile(m.sq_distances_, 0.99))
    beyond = float(np.mean(m.sq_distance(shell) > p99))
    threshold = analysis.dominant_.width_threshold_
    rule = f"|mean|/std >= {float(analysis.offset_k):g} {analysis.combine} std >= {threshold:.3g}"
    rms_radius = math.sqrt(float(np.mean(analysis.radii_.radii_**2)))
    return [
        origin_finding(origin.percentile_, origin.distance_),
        dominant_finding(len(analysis.dominant_.components_), dim, rule),
        marginals_finding(analysis.distributions_.ks_, analysis.distributions_.ks_samples_),
        correlations_finding(float(corr.max()) if len(corr) else 0.0, int(np.sum(corr >= STRONG_R))),
        shell_finding(beyond, analysis.radii_.b_match_),
        off_centre_finding(origin.distance_, origin.euclidean_distance_, rms_radius),
    ]
