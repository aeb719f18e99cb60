"""Latent paths: sequences of z-points to decode, as in part VI of the seed.

- `origin_to_centre`: the straight segment from the latent origin to the bulk's centre.
- `plane_path`: a segment through the centre inside the coordinate plane (j1, j2), rotated by an
  angle measured from the j1 axis; all other components stay at the centre (or a chosen base point).
- `between`: from one z-point to another, linear or spherical (slerp, White 2016).
- `traverse`: one component swept through given values, all others fixed.
- `attribute_direction` / `direction_path`: the difference of class means of an attribute, and a
  straight path along it through a base point (the centre or a real z-point).

Every function returns a float64 array (steps, N) whose first and last rows are exactly the endpoints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from latentatlas import checks
from latentatlas.errors import LatentAtlasError

INTERPOLATIONS = ("linear", "slerp")
_PARALLEL_TOLERANCE = 1e-6  # below this sin(angle), slerp's formula divides by ~0: fall back to lerp


def _vector(value: Any, name: str, dim: int | None = None) -> np.ndarray:
    try:
        vector = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise LatentAtlasError(f"{name} must be a numeric vector") from None
    if vector.ndim != 1 or vector.size == 0:
        raise LatentAtlasError(f"{name} must be a 1-D vector, got shape {vector.shape}")
    if dim is not None and vector.size != dim:
        raise LatentAtlasError(f"{name} has dimension {vector.size}, expected {dim}")
    if not np.isfinite(vector).all():
        raise LatentAtlasError(f"{name} contains NaN or infinite values")
    return vector


MAX_STEPS = 10_000  # every step is decoded and drawn: far beyond any useful path


def _steps(steps: Any) -> int:
    return checks.positive_int(steps, "steps", minimum=2, maximum=MAX_STEPS)


def component_index(index: Any, dim: int, name: str = "component") -> int:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise LatentAtlasError(f"{name} must be an integer index, got {index!r}")
    if not 0 <= index < dim:
        raise LatentAtlasError(f"{name} {index} is out of range for latent dimension {dim} (0..{dim - 1})")
    return int(index)


def lerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """`steps` evenly spaced points on the straight segment from a to b (both included)."""
    a = _vector(a, "start point")
    b = _vector(b, "end point", a.size)
    t = np.linspace(0.0, 1.0, _steps(steps))[:, None]
    return (1.0 - t) * a + t * b  # exact endpoints at t = 0 and t = 1


def slerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """Spherical interpolation (White 2016): the direction turns at constant angular speed along the
    great circle from a to b while the norm moves linearly from |a| to |b|.

    For endpoints of equal norm this is White's slerp and every point stays on that sphere. Where the
    great circle is undefined (an endpoint at the origin, or parallel / anti-parallel directions) it
    falls back to linear interpolation.
    """
    a = _vector(a, "start point")
    b = _vector(b, "end point", a.size)
    steps = _steps(steps)
    norm_a, norm_b = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if norm_a == 0.0 or norm_b == 0.0:
        return lerp(a, b, steps)
    unit_a, unit_b = a / norm_a, b / norm_b
    omega = math.acos(float(np.clip(unit_a @ unit_b, -1.0, 1.0)))
    if math.sin(omega) < _PARALLEL_TOLERANCE:
        return lerp(a, b, steps)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    directions = (np.sin((1.0 - t) * omega) * unit_a + np.sin(t * omega) * unit_b) / math.sin(omega)
    points = directions * ((1.0 - t) * norm_a + t * norm_b)
    points[0], points[-1] = a, b  # exact endpoints despite rounding in the trigonometry
    return points


def between(a: np.ndarray, b: np.ndarray, steps: int, method: str = "linear") -> np.ndarray:
    """A path from z-point a to z-point b, `method` "linear" or "slerp"."""
    if method not in INTERPOLATIONS:
        raise LatentAtlasError(f"unknown interpolation {method!r}; choose from {', '.join(INTERPOLATIONS)}")
    return lerp(a, b, steps) if method == "linear" else slerp(a, b, steps)


def origin_to_centre(centre: np.ndarray, steps: int) -> np.ndarray:
    """The straight path from the latent origin to the bulk's centre (the seed's first experiment)."""
    centre = _vector(centre, "centre")
    return lerp(np.zeros_like(centre), centre, steps)


def plane_spread(cov: np.ndarray, plane: Sequence[int], angle_deg: float) -> float:
    """The bulk's standard deviation along direction `angle_deg` in the plane: sqrt(u^T C_plane u)."""
    cov = np.asarray(cov, dtype=np.float64)
    j1, j2 = plane
    cov_plane = cov if cov.shape == (2, 2) else cov[np.ix_([j1, j2], [j1, j2])]
    theta = math.radians(angle_deg)
    u = np.array([math.cos(theta), math.sin(theta)])
    return math.sqrt(max(float(u @ cov_plane @ u), 0.0))


def plane_path(
    centre: np.ndarray,
    cov: np.ndarray,
    plane: Sequence[int],
    angle_deg: float,
    steps: int,
    length: float = 2.0,
    base: np.ndarray | None = None,
) -> np.ndarray:
    """A straight path through the centre inside coordinate plane (j1, j2) (part VI of the seed).

    The direction u = (cos a, sin a) is measured in degrees from the j1 axis towards j2. The path runs
    from centre - length·s·u to centre + length·s·u, where s = sqrt(u^T C_plane u) is the bulk's std
    along u: `length` is the half-length in units of that spread. `cov` is the full (N, N) covariance
    or the (2, 2) covariance of the plane. Components outside the plane stay at `base` (default: the centre).
    """
    centre = _vector(centre, "centre")
    dim = centre.size
    j1, j2 = checks.plane(plane, dim)
    steps = _steps(steps)
    angle_deg = checks.finite_number(angle_deg, "angle")
    length = checks.positive_number(length, "length")
    cov = np.asarray(cov, dtype=np.float64)
    if cov.shape not in {(dim, dim), (2, 2)}:
        raise LatentAtlasError(f"covariance must have shape ({dim}, {dim}) or (2, 2), got {cov.shape}")
    if not np.isfinite(cov).all():
        raise LatentAtlasError("covariance contains NaN or infinite values")
    spread = plane_spread(cov, (j1, j2), angle_deg)
    if spread == 0.0:
        raise LatentAtlasError(f"the bulk has no spread along {angle_deg} degrees in plane ({j1}, {j2})")
    origin_point = centre if base is None else _vector(base, "base point", dim)
    theta = math.radians(angle_deg)
    offset = length * spread * np.array([math.cos(theta), math.sin(theta)])
    in_plane = centre[[j1, j2]]
    # Off-plane components are copied, not interpolated, so they stay bit-identical to the base point.
    path = np.repeat(origin_point[None, :], steps, axis=0)
    path[:, [j1, j2]] = lerp(in_plane - offset, in_plane + offset, steps)
    return path


def traverse(base: np.ndarray, component: int, values: Sequence[float]) -> np.ndarray:
    """Copies of `base` with component `component` set to each of `values` in turn."""
    base = _vector(base, "base point")
    component = component_index(component, base.size)
    column = _vector(values, "traversal values")
    path = np.repeat(base[None, :], column.size, axis=0)
    path[:, component] = column
    return path


def most_moving_plane(path: np.ndarray, spread: np.ndarray | None = None) -> tuple[int, int]:
    """The two components along which a path moves most (largest range), for a projection plot.

    Ties (e.g. a single-component traversal) go to the components with the larger `spread`.
    """
    path = np.asarray(path, dtype=np.float64)
    if path.ndim != 2 or path.shape[1] < 2:
        raise LatentAtlasError(f"need a path (steps, N) with N >= 2, got shape {path.shape}")
    movement = np.ptp(path, axis=0)
    tie_break = np.zeros(path.shape[1]) if spread is None else np.asarray(spread, dtype=np.float64)
    order = np.lexsort((-tie_break, -movement))  # primary key last: movement, then spread, both descending
    return int(order[0]), int(order[1])


def attribute_direction(z: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unit direction, mean shift) from the points without an attribute to those with it.

    The classes: for a two-valued attribute (CelebA's -1/1) its larger value; for a continuous factor
    the points above its median. The mean shift is the difference of the class means.
    """
    z = checks.points(z, min_rows=2)
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(z),) or not np.isfinite(values).all():
        raise LatentAtlasError(f"attribute values must be {len(z)} finite numbers, one per z-point")
    levels = np.unique(values)
    positive = values == levels[-1] if len(levels) == 2 else values > np.median(values)
    if positive.all() or not positive.any():
        raise LatentAtlasError("the attribute does not split the z-points into two classes")
    z = np.asarray(z, dtype=np.float64)
    shift = z[positive].mean(axis=0) - z[~positive].mean(axis=0)
    norm = float(np.linalg.norm(shift))
    if norm == 0.0:
        raise LatentAtlasError("the two classes of the attribute have the same mean: no direction")
    return shift / norm, shift


def direction_path(base: np.ndarray, direction: np.ndarray, spread: float, steps: int, length: float = 2.0):
    """`steps` points from base - length·spread·u to base + length·spread·u along the unit direction u."""
    base = _vector(base, "base point")
    direction = _vector(direction, "direction", base.size)
    offset = checks.positive_number(length, "length") * checks.positive_number(spread, "spread") * direction
    return lerp(base - offset, base + offset, steps)


# The kinds `latentatlas path` builds from these functions (pipelines/path.py) and the options each uses.
KINDS = ("origin-to-centre", "plane", "between", "traverse", "attribute")
KIND_OPTIONS = {
    "origin-to-centre": set(),
    "plane": {"plane", "angle", "length", "base"},
    "between": {"from_index", "to_index", "from_image", "to_image", "interpolation"},
    "traverse": {"component", "value_range", "base"},
    "attribute": {"attribute", "from_index", "length"},
}
