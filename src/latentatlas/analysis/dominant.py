"""The seed's "dominant" components: a mean away from 0 and/or a larger width (seed part II).

Section "dominant"; finding "dominant-components".
"""

from __future__ import annotations

import numpy as np

from latentatlas import checks
from latentatlas.analysis.parts import Context
from latentatlas.errors import LatentAtlasError
from latentatlas.findings import Finding, Verdict
from latentatlas.stats import BulkStatistics

# "a few" dominant components: at least one and at most this share of N; "many" beyond the second share
FEW_DOMINANT_SHARE = 0.10
MANY_DOMINANT_SHARE = 0.25


class DominantComponents:
    """The seed's dominant components, made explicit.

    A component is "offset" when |mean| / std >= `offset_k` and "wide" when std >= the width threshold:
    `width` if given (absolute), else `relative_width` x the median std. `combine` = "or" keeps components
    meeting either rule, "and" (the seed's wording: a mean away from 0 and a larger half-width) both.
    Ranked by rms = sqrt(mean^2 + std^2), the component's contribution to the mean squared radius.

    Attributes
    ----------
    components_ : ndarray of int
        The dominant components, largest rms first.
    width_threshold_ : float
    width_rule_ : str
    offset_, rms_, radius_share_ : ndarray (N,)
        |mean| / std, sqrt(mean^2 + std^2) and rms^2 / sum(rms^2).
    is_offset_, is_wide_ : ndarray of bool (N,)
    mean_, std_ : ndarray (N,)
        The components' means and standard deviations the rule was applied to.
    """

    def __init__(
        self, *, offset_k: float = 1.0, width: float | None = None, relative_width: float = 1.5, combine: str = "or"
    ):
        self.offset_k = offset_k
        self.width = width
        self.relative_width = relative_width
        self.combine = combine

    def fit(self, z: np.ndarray | None = None, statistics: BulkStatistics | None = None) -> DominantComponents:
        if self.combine not in ("or", "and"):
            raise LatentAtlasError(f"combine must be 'or' or 'and', got {self.combine!r}")
        offset_k = checks.positive_number(self.offset_k, "offset_k")
        if statistics is None:
            if z is None:
                raise LatentAtlasError("DominantComponents.fit needs z-points or fitted BulkStatistics")
            statistics = BulkStatistics().fit(z)
        mean, std = statistics.mean_, statistics.std_
        if self.width is not None:
            threshold = checks.positive_number(self.width, "width")
            self.width_rule_ = "absolute"
        else:
            threshold = checks.positive_number(self.relative_width, "relative_width") * float(np.median(std))
            self.width_rule_ = f"{float(self.relative_width):g} x median std"
        with np.errstate(divide="ignore", invalid="ignore"):
            offset = np.where(std > 0, np.abs(mean) / np.where(std > 0, std, 1.0), np.where(mean != 0, np.inf, 0.0))
        is_offset = offset >= offset_k
        is_wide = std >= threshold
        chosen = (is_offset | is_wide) if self.combine == "or" else (is_offset & is_wide)
        rms = np.sqrt(mean**2 + std**2)
        order = np.argsort(-rms, kind="stable")
        self.width_threshold_ = threshold
        self.offset_ = offset
        self.is_offset_ = is_offset
        self.is_wide_ = is_wide
        self.rms_ = rms
        self.radius_share_ = rms**2 / max(float((rms**2).sum()), 1e-300)
        self.components_ = np.array([j for j in order if chosen[j]], dtype=np.int64)
        self.mean_, self.std_ = mean, std
        return self

    @classmethod
    def from_context(cls, context: Context) -> DominantComponents:
        o = context.options
        rule = {name: o[name] for name in ("offset_k", "width", "relative_width", "combine")}
        return cls(**rule).fit(statistics=context.statistics)

    def table(self) -> list[dict]:
        """One row per dominant component, largest rms first."""
        return [
            {
                "index": int(j),
                "mean": float(self.mean_[j]),
                "std": float(self.std_[j]),
                "offset": float(self.offset_[j]),
                "rms": float(self.rms_[j]),
                "radius_share": float(self.radius_share_[j]),
                "offset_rule": bool(self.is_offset_[j]),
                "width_rule": bool(self.is_wide_[j]),
            }
            for j in self.components_
        ]

    def rule(self) -> str:
        """The rule in words, e.g. '|mean|/std >= 1 or std >= 0.42'."""
        return f"|mean|/std >= {float(self.offset_k):g} {self.combine} std >= {self.width_threshold_:.3g}"

    def to_dict(self) -> dict:
        """The analysis.json "dominant" section."""
        rule = {
            "offset_k": float(self.offset_k),
            "width_threshold": self.width_threshold_,
            "width_rule": self.width_rule_,
            "combine": self.combine,
        }
        return {"dominant": {"rule": rule, "components": self.table()}}

    def findings(self) -> list[Finding]:
        return [dominant_finding(len(self.components_), len(self.std_), self.rule())]


def dominant_finding(count: int, dim: int, rule: str) -> Finding:
    """The seed's "a few components dominate", judged by the share of N that passes the rule."""
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
