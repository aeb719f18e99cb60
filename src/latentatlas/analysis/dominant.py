"""The seed's "dominant" components: a mean away from 0 and/or a larger width (seed part II)."""

from __future__ import annotations

import numpy as np

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.stats import BulkStatistics


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
        return self

    def table(self, mean: np.ndarray, std: np.ndarray) -> list[dict]:
        return [
            {
                "index": int(j),
                "mean": float(mean[j]),
                "std": float(std[j]),
                "offset": float(self.offset_[j]),
                "rms": float(self.rms_[j]),
                "radius_share": float(self.radius_share_[j]),
                "offset_rule": bool(self.is_offset_[j]),
                "width_rule": bool(self.is_wide_[j]),
            }
            for j in self.components_
        ]
