"""Latent-space position scores: the shell of norms the real points fill, and Mahalanobis percentiles."""

from __future__ import annotations

import numpy as np

from latentatlas import checks

RADIUS_PERCENTILES = (1.0, 99.0)


def radius_range(z: np.ndarray, percentiles: tuple[float, float] = RADIUS_PERCENTILES) -> tuple[float, float]:
    """(low, high) percentiles of the norms ||z||: the shell the real points fill."""
    norms = np.linalg.norm(np.asarray(checks.points(z, min_rows=1), dtype=np.float64), axis=1)
    low, high = np.percentile(norms, percentiles)
    return float(low), float(high)


def inside_radius(z: np.ndarray, low: float, high: float) -> np.ndarray:
    """bool per point: its norm lies in [low, high]."""
    norms = np.linalg.norm(np.asarray(z, dtype=np.float64), axis=1)
    return (norms >= low) & (norms <= high)
