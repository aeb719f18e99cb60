"""Latent paths: sequences of z-points to decode, as in part VI of the seed.

- `origin_to_centre`: the straight segment from the latent origin to the bulk's centre.
- `plane_path`: a segment through the centre inside the coordinate plane (j1, j2), rotated by an
  angle measured from the j1 axis; all other components stay at the centre (or a chosen base point).
- `between`: from one z-point to another, linear or spherical (slerp, White 2016).
- `traverse`: one component swept through given values, all others fixed.

Every function returns a float64 array (steps, N) whose first and last rows are exactly the endpoints.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from latentatlas.analysis import check_plane
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


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _steps(steps: Any) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise LatentAtlasError(f"steps must be an integer >= 2, got {steps!r}")
    return int(steps)


def _component(index: Any, dim: int, name: str = "component") -> int:
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
    j1, j2 = check_plane(plane, dim)
    steps = _steps(steps)
    if not _is_real(angle_deg) or not math.isfinite(angle_deg):
        raise LatentAtlasError(f"angle must be a finite number of degrees, got {angle_deg!r}")
    if not _is_real(length) or not 0 < length < math.inf:
        raise LatentAtlasError(f"length must be a positive number (units of the bulk's spread), got {length!r}")
    cov = np.asarray(cov, dtype=np.float64)
    if cov.shape not in {(dim, dim), (2, 2)}:
        raise LatentAtlasError(f"covariance must have shape ({dim}, {dim}) or (2, 2), got {cov.shape}")
    if not np.isfinite(cov).all():
        raise LatentAtlasError("covariance contains NaN or infinite values")
    spread = plane_spread(cov, (j1, j2), float(angle_deg))
    if spread == 0.0:
        raise LatentAtlasError(f"the bulk has no spread along {angle_deg} degrees in plane ({j1}, {j2})")
    origin_point = centre if base is None else _vector(base, "base point", dim)
    theta = math.radians(float(angle_deg))
    offset = float(length) * spread * np.array([math.cos(theta), math.sin(theta)])
    in_plane = centre[[j1, j2]]
    # Off-plane components are copied, not interpolated, so they stay bit-identical to the base point.
    path = np.repeat(origin_point[None, :], steps, axis=0)
    path[:, [j1, j2]] = lerp(in_plane - offset, in_plane + offset, steps)
    return path


def traverse(base: np.ndarray, component: int, values: Sequence[float]) -> np.ndarray:
    """Copies of `base` with component `component` set to each of `values` in turn."""
    base = _vector(base, "base point")
    component = _component(component, base.size)
    values = _vector(values, "traversal values")
    path = np.repeat(base[None, :], values.size, axis=0)
    path[:, component] = values
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


# ----------------------------------------------------------------------------- paths through a run

KINDS = ("origin-to-centre", "plane", "between", "traverse")
# Which options each kind uses; giving another one is a mistake worth reporting, not silently ignoring.
_KIND_OPTIONS = {
    "origin-to-centre": set(),
    "plane": {"plane", "angle", "length", "base"},
    "between": {"from_index", "to_index", "from_image", "to_image", "interpolation"},
    "traverse": {"component", "value_range", "base"},
}
_OPTION_FLAGS = {
    "plane": "--plane",
    "angle": "--angle",
    "length": "--length",
    "base": "--base",
    "from_index": "--from",
    "to_index": "--to",
    "from_image": "--from-image",
    "to_image": "--to-image",
    "interpolation": "--interpolation",
    "component": "--component",
    "value_range": "--range",
}


def _number(value: float) -> str:
    return f"{float(value):g}"


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "image"


def load_image_file(path: str | os.PathLike, image_size: int) -> np.ndarray:
    """One image file as uint8 (1, S, S, 3): the largest centred square, resized to the run's image size."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise LatentAtlasError(f"image file {path} does not exist")
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            side = min(image.size)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            box = (left, top, left + side, top + side)
            image = image.resize((image_size, image_size), Image.Resampling.LANCZOS, box=box)
            return np.asarray(image, dtype=np.uint8)[None]
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise LatentAtlasError(f"cannot read image {path}: {exc}") from None


def _row(z_all: np.ndarray, index: Any, flag: str) -> np.ndarray:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise LatentAtlasError(f"{flag} must be a z-point row index, got {index!r}")
    if not 0 <= index < len(z_all):
        last = len(z_all) - 1
        raise LatentAtlasError(f"{flag} {index} is out of range: the run has {len(z_all)} z-points (0..{last})")
    return np.asarray(z_all[int(index)], dtype=np.float64)


def _score_points(run: Any, vectors: np.ndarray, images: np.ndarray):
    """evaluate_points for the path (k-NN support, Mahalanobis percentile, face verdict of its decoded
    `images`), or None when the run holds too few held-out z-points to score against."""
    from latentatlas.evaluation import evaluate_points

    try:
        return evaluate_points(run, vectors, k=5, faces=True, images=images)
    except LatentAtlasError:
        return None


def path_run(
    run: Any,
    kind: str,
    steps: int = 8,
    out: str | os.PathLike | None = None,
    subset: str = "train",
    *,
    plane: Sequence[int] | None = None,
    angle: float | None = None,
    length: float | None = None,
    base: str | int | None = None,
    from_index: int | None = None,
    to_index: int | None = None,
    from_image: str | os.PathLike | None = None,
    to_image: str | os.PathLike | None = None,
    interpolation: str | None = None,
    component: int | None = None,
    value_range: Sequence[float] | None = None,
) -> dict:
    """Build a path of `kind` through the run's latent space, decode it, and write its folder.

    The centre and covariance come from the run's `subset` z-points; `base` ("centre" or a z-point row
    index) fixes the components a plane path or traversal leaves alone. A traversal's `value_range`
    is in units of that component's std, relative to the base point. Writes grid.png, z.npy,
    projection.png and info.json into `out` (default RUN/paths/<kind>-<options>/), all at once.
    """
    import matplotlib.pyplot as plt

    from latentatlas.io import atomic_folder, save_npy, write_json
    from latentatlas.plots import plot_projection, save_figure, save_image_grid
    from latentatlas.samplers import grid_scale, mean_and_covariance

    if kind not in KINDS:
        raise LatentAtlasError(f"unknown path kind {kind!r}; choose from {', '.join(KINDS)}")
    given = {
        name: value
        for name, value in {
            "plane": plane,
            "angle": angle,
            "length": length,
            "base": base,
            "from_index": from_index,
            "to_index": to_index,
            "from_image": from_image,
            "to_image": to_image,
            "interpolation": interpolation,
            "component": component,
            "value_range": value_range,
        }.items()
        if value is not None
    }
    stray = [_OPTION_FLAGS[name] for name in given if name not in _KIND_OPTIONS[kind]]
    if stray:
        raise LatentAtlasError(f"{', '.join(stray)} does not apply to --kind {kind}")
    steps = _steps(steps)
    if kind == "plane" and plane is None:
        raise LatentAtlasError("--kind plane needs --plane J1,J2")
    if kind == "traverse" and component is None:
        raise LatentAtlasError("--kind traverse needs --component J")
    if kind == "between":
        for side, index, image in (("start", from_index, from_image), ("end", to_index, to_image)):
            if (index is None) == (image is None):
                flags = "--from I or --from-image PATH" if side == "start" else "--to J or --to-image PATH"
                raise LatentAtlasError(f"--kind between needs exactly one {side} point: {flags}")
        interpolation = interpolation or "linear"
        if interpolation not in INTERPOLATIONS:
            raise LatentAtlasError(f"unknown interpolation {interpolation!r}; choose from {', '.join(INTERPOLATIONS)}")
    if value_range is not None and (len(value_range) != 2 or not np.isfinite(value_range).all()):
        raise LatentAtlasError(f"--range needs two finite numbers like -3,3, got {value_range!r}")
    if isinstance(base, str) and base not in ("centre", "center"):
        try:
            base = int(base)
        except ValueError:
            raise LatentAtlasError(f"--base must be 'centre' or a z-point row index, got {base!r}") from None

    z_fit = run.zpoints(subset)
    z_all = run.zpoints()
    dim = z_fit.shape[1]
    if dim != run.latent_dim:
        raise LatentAtlasError(
            f"the z-points of {run.path} have dimension {dim}, the model {run.latent_dim}: "
            f"run `latentatlas encode {run.path}`"
        )
    centre, cov = mean_and_covariance(z_fit)
    std = np.sqrt(np.diag(cov))
    base_point = centre if base is None or isinstance(base, str) else _row(z_all, base, "--base")
    base_label = "" if base is None or isinstance(base, str) else f"-base{base}"

    if kind == "origin-to-centre":
        path = origin_to_centre(centre, steps)
        name = f"origin-to-centre-steps{steps}"
        description = "from the latent origin to the centre of the z-points"
    elif kind == "plane":
        j1, j2 = check_plane(plane, dim)
        angle, length = (0.0 if angle is None else angle), (2.0 if length is None else length)
        path = plane_path(centre, cov, (j1, j2), angle, steps, length=length, base=base_point)
        name = f"plane-{j1}-{j2}-angle{_number(angle)}-length{_number(length)}-steps{steps}{base_label}"
        description = (
            f"through the centre in plane ({j1}, {j2}) at {_number(angle)} degrees, ±{_number(length)} spreads"
        )
    elif kind == "between":
        ends, labels = [], []
        for index, image, flag in ((from_index, from_image, "--from"), (to_index, to_image, "--to")):
            if index is not None:
                ends.append(_row(z_all, index, flag))
                labels.append(str(index))
            else:
                pixels = load_image_file(image, run.model_config.image_size)
                ends.append(run.encode(pixels)[0].astype(np.float64))
                labels.append("img-" + _safe_name(Path(image).stem))
        path = between(ends[0], ends[1], steps, method=interpolation)
        name = f"between-{labels[0]}-{labels[1]}-{interpolation}-steps{steps}"
        description = f"{interpolation} interpolation from {labels[0]} to {labels[1]}"
    else:
        j = _component(component, dim)
        low, high = (-3.0, 3.0) if value_range is None else (float(value_range[0]), float(value_range[1]))
        path = traverse(base_point, j, base_point[j] + np.linspace(low, high, steps) * std[j])
        name = f"traverse-c{j}-from{_number(low)}-to{_number(high)}-steps{steps}{base_label}"
        description = f"component {j} swept from {_number(low)} to {_number(high)} std around the base point"

    projection_plane = check_plane(plane, dim) if kind == "plane" else most_moving_plane(path, std)
    vectors = path.astype(np.float32)
    images = run.decode(vectors)
    centred = path - centre
    mahalanobis = np.sqrt(np.clip(np.einsum("ij,ij->i", centred @ np.linalg.pinv(cov), centred), 0, None))
    points = _score_points(run, vectors, images)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    plot_projection(ax, z_fit, projection_plane, centre=centre, path_points=path)
    if points is not None and points["face"].any():
        faces = path[points["face"].to_numpy()]
        ax.scatter(
            faces[:, projection_plane[0]],
            faces[:, projection_plane[1]],
            s=90,
            facecolors="none",
            edgecolors="limegreen",
            linewidths=1.5,
            zorder=6,
            label="decodes to a face",
        )
    ax.legend(loc="best", fontsize=7)
    folder = Path(out) if out is not None else run.path / "paths" / name
    info = {
        "command": "path",
        "run": str(run.path),
        "kind": kind,
        "steps": steps,
        "subset": subset,
        "options": {key: (str(value) if isinstance(value, os.PathLike) else value) for key, value in given.items()},
        "projection_plane": list(projection_plane),
        "mahalanobis": mahalanobis,  # distance of each step from the centre, in units of the bulk's spread
        # per step: Mahalanobis percentile, k-NN support among held-out points, the face detector's verdict
        "points": None if points is None else points.to_dict(orient="records"),
        "files": {"vectors": "z.npy"},
        "figures": [
            {"file": "grid.png", "caption": f"{steps} images decoded along a path {description}"},
            {
                "file": "projection.png",
                "caption": f"the path (black) over the real z-points projected onto plane "
                f"({projection_plane[0]}, {projection_plane[1]}); origin yellow, centre orange"
                + (
                    ""
                    if points is None
                    else f"; green rings: {int(points['face'].sum())} of {steps} points decode "
                    "to an image in which the face detector finds a face"
                ),
            },
        ],
    }
    try:
        with atomic_folder(folder) as tmp:
            save_image_grid(
                images, tmp / "grid.png", ncols=steps if steps <= 12 else None, scale=grid_scale(images.shape[1])
            )
            save_npy(tmp / "z.npy", vectors)
            save_figure(fig, tmp / "projection.png")
            write_json(tmp / "info.json", info)
    finally:
        plt.close(fig)
    return {**info, "path": str(folder)}
