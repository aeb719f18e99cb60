"""Linear correlations between components, confidence ellipses and the planes to show them in (seed part III).

Sections "correlations" and "planes"; finding "strong-correlations".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from latentatlas import checks
from latentatlas.analysis.parts import Context
from latentatlas.errors import LatentAtlasError
from latentatlas.findings import Finding, grade
from latentatlas.stats import BulkStatistics

# strong linear correlations: the strongest |r| at least this; none when it stays below the weak bound
STRONG_R = 0.5
WEAK_R = 0.2


def correlation_matrix(cov: np.ndarray) -> np.ndarray:
    """Pearson correlations from a covariance; components without variance correlate 0 (1 on the diagonal)."""
    std = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    safe = np.where(std > 0, std, 1.0)
    corr = cov / np.outer(safe, safe)
    corr[std == 0, :] = 0.0
    corr[:, std == 0] = 0.0
    np.fill_diagonal(corr, 1.0)
    return np.clip(corr, -1.0, 1.0)


def strongest_pairs(corr: np.ndarray, k: int = 10) -> list[tuple[int, int, float]]:
    """The k coordinate pairs (i < j) with the largest |r|, strongest first."""
    i, j = np.triu_indices(len(corr), k=1)
    r = corr[i, j]
    order = np.argsort(-np.abs(r), kind="stable")[: max(0, int(k))]
    return [(int(i[o]), int(j[o]), float(r[o])) for o in order]


def confidence_ellipse(mean2: ArrayLike, cov2: ArrayLike, confidence: float) -> dict:
    """The ellipse holding `confidence` of a 2-D Gaussian: chi-square with 2 dof, r^2 = -2 ln(1 - confidence).

    Returns {"centre": [x, y], "half_axes": [major, minor], "angle_deg": tilt of the major axis
    against the first axis, in (-90, 90]}.
    """
    confidence = checks.confidence(confidence)
    mean2 = np.asarray(mean2, dtype=np.float64).reshape(-1)
    cov2 = np.asarray(cov2, dtype=np.float64)
    if mean2.shape != (2,) or cov2.shape != (2, 2):
        raise LatentAtlasError(
            f"confidence_ellipse needs a 2-vector and a 2x2 covariance, got {mean2.shape}, {cov2.shape}"
        )
    values, vectors = np.linalg.eigh((cov2 + cov2.T) / 2)
    values = np.clip(values[::-1], 0.0, None)
    major = vectors[:, 1]
    r2 = -2.0 * math.log1p(-confidence)
    angle = math.degrees(math.atan2(major[1], major[0]))
    if angle <= -90.0:
        angle += 180.0
    elif angle > 90.0:
        angle -= 180.0
    return {
        "centre": [float(mean2[0]), float(mean2[1])],
        "half_axes": [float(math.sqrt(r2 * values[0])), float(math.sqrt(r2 * values[1]))],
        "angle_deg": float(angle),
        "confidence": confidence,
    }


def default_planes(
    dominant: Sequence[int] | np.ndarray, pairs: Sequence[tuple[int, int, float]], count: int = 4
) -> list[tuple[tuple[int, int], str]]:
    """Planes alternating between pairs of dominant components and the strongest correlations, no repeats."""
    from_dominant = [((int(dominant[i]), int(dominant[i + 1])), "dominant") for i in range(0, len(dominant) - 1, 2)]
    from_pairs = [((i, j), "correlation") for i, j, _ in pairs]
    chosen: list[tuple[tuple[int, int], str]] = []
    seen: set[frozenset[int]] = set()
    for k in range(max(len(from_dominant), len(from_pairs))):
        for source in (from_dominant, from_pairs):
            if k < len(source) and len(chosen) < count and frozenset(source[k][0]) not in seen:
                seen.add(frozenset(source[k][0]))
                chosen.append(source[k])
    return chosen


class Correlations:
    """The correlation matrix, its strongest pairs, and the coordinate planes with their confidence ellipses.

    Parameters
    ----------
    top_pairs : int
        Strongest pairs reported.
    planes : sequence of (j1, j2) or None
        The planes to show; None: `n_planes` alternating between pairs of `dominant` components and the
        strongest correlations (`default_planes`).
    n_planes : int
    confidences : sequence of float
        Confidence levels of the ellipses, each in (0, 1).

    Attributes
    ----------
    correlation_ : ndarray (N, N)
    pairs_ : list of (i, j, r)
    planes_ : list of ((j1, j2), source)
        source is "user", "dominant" or "correlation".
    ellipses_ : list of list of dict
        Per plane, one `confidence_ellipse` per confidence level.
    """

    def __init__(
        self,
        *,
        top_pairs: int = 10,
        planes: Sequence[Sequence[int]] | None = None,
        n_planes: int = 4,
        confidences: Sequence[float] = (0.5, 0.9, 0.99),
    ):
        self.top_pairs = top_pairs
        self.planes = planes
        self.n_planes = n_planes
        self.confidences = confidences

    def fit(self, statistics: BulkStatistics, dominant: Sequence[int] | np.ndarray = ()) -> Correlations:
        s = statistics
        self.correlation_ = correlation_matrix(s.cov_)
        self.pairs_ = strongest_pairs(self.correlation_, self.top_pairs)
        if self.planes is not None:
            self.planes_ = [(checks.plane(p, s.n_features_), "user") for p in self.planes]
        else:
            self.planes_ = default_planes(dominant, strongest_pairs(self.correlation_, self.n_planes), self.n_planes)
        self.ellipses_ = [
            [confidence_ellipse(s.mean_[list(p)], s.cov_[np.ix_(p, p)], c) for c in self.confidences]
            for p, _ in self.planes_
        ]
        return self

    @classmethod
    def from_context(cls, context: Context) -> Correlations:
        o = context.options
        options = {name: o[name] for name in ("top_pairs", "planes", "n_planes", "confidences")}
        return cls(**options).fit(context.statistics, context.part("dominant").components_)

    def _upper(self) -> np.ndarray:
        return np.abs(self.correlation_[np.triu_indices(len(self.correlation_), 1)])

    def to_dict(self) -> dict:
        """The analysis.json "correlations" and "planes" sections."""
        correlations = {
            "strongest": [{"pair": [i, j], "r": v} for i, j, v in self.pairs_],
            "mean_abs_r": float(self._upper().mean()),
            "max_abs_r": float(abs(self.pairs_[0][2])) if self.pairs_ else None,
        }
        planes = [
            {"plane": list(p), "source": source, "r": float(self.correlation_[p[0], p[1]]), "ellipses": ellipses}
            for (p, source), ellipses in zip(self.planes_, self.ellipses_)
        ]
        return {"correlations": correlations, "planes": planes}

    def findings(self) -> list[Finding]:
        corr = self._upper()
        return [correlations_finding(float(corr.max()) if len(corr) else 0.0, int(np.sum(corr >= STRONG_R)))]


def correlations_finding(max_abs_r: float, strong_pairs: int) -> Finding:
    """The seed's "components are strongly correlated", from the strongest |r| over all pairs."""
    return Finding(
        key="strong-correlations",
        claim="components are strongly linearly correlated (tilted elliptic contours)",
        verdict=grade(max_abs_r, STRONG_R, WEAK_R),
        evidence=f"strongest |r| = {max_abs_r:.2f}; {strong_pairs} pairs with |r| >= {STRONG_R:g} "
        f"(strong >= {STRONG_R:g}, none below {WEAK_R:g})",
    )
