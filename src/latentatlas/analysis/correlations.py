"""Linear correlations between components, confidence ellipses and the planes to show them in (seed part III)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from latentatlas import checks
from latentatlas.errors import LatentAtlasError


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


def confidence_ellipse(mean2: np.ndarray, cov2: np.ndarray, confidence: float) -> dict:
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
