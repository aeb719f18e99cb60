"""`latentatlas path`: build a latent path through a run, decode it, score it and write its folder."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from latentatlas import checks
from latentatlas.analysis.conditions import attribute_values
from latentatlas.data import decode_image
from latentatlas.errors import LatentAtlasError
from latentatlas.io import atomic_folder, save_npy, write_json
from latentatlas.paths import (
    INTERPOLATIONS,
    KIND_OPTIONS,
    KINDS,
    MAX_STEPS,
    attribute_direction,
    between,
    component_index,
    direction_path,
    most_moving_plane,
    origin_to_centre,
    plane_path,
    traverse,
)
from latentatlas.pipelines.sample import grid_scale, run_zpoints
from latentatlas.stats import Mahalanobis, moments
from latentatlas.store import Run


def _number(value: float) -> str:
    return f"{float(value):g}"


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "image"


def load_image_file(path: str | os.PathLike, image_size: int) -> np.ndarray:
    """One image file as uint8 (1, S, S, 3): the largest centred square, cropped then resized to the run's
    image size by the data package's one decoder (so no pixel from outside the square leaks in)."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise LatentAtlasError(f"image file {path} does not exist")
    try:
        return decode_image(path.read_bytes(), image_size, None)[None]
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise LatentAtlasError(f"cannot read image {path}: {exc}") from None


def _row(z_all: np.ndarray, index: Any, flag: str) -> np.ndarray:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise LatentAtlasError(f"{flag} must be a z-point row index, got {index!r}")
    if not 0 <= index < len(z_all):
        last = len(z_all) - 1
        raise LatentAtlasError(f"{flag} {index} is out of range: the run has {len(z_all)} z-points (0..{last})")
    return np.asarray(z_all[int(index)], dtype=np.float64)


def _score_points(run: Run, vectors: np.ndarray, images: np.ndarray):
    """evaluate_points for the path (k-NN support, Mahalanobis percentile, face verdict of its decoded
    `images`), or None when the run holds too few held-out z-points to score against."""
    from latentatlas.pipelines.evaluate import evaluate_points

    try:
        return evaluate_points(run, vectors, k=5, faces=True, images=images)
    except LatentAtlasError:
        return None


def _check_options(kind: str, given: dict[str, Any]) -> None:
    if kind not in KINDS:
        raise LatentAtlasError(f"unknown path kind {kind!r}; choose from {', '.join(KINDS)}")
    stray = [name for name in given if name not in KIND_OPTIONS[kind]]
    if stray:
        raise LatentAtlasError(f"{', '.join(stray)} does not apply to kind {kind}")
    if kind == "plane" and "plane" not in given:
        raise LatentAtlasError("--kind plane needs --plane J1,J2")
    if kind == "traverse" and "component" not in given:
        raise LatentAtlasError("--kind traverse needs --component J")
    if kind == "attribute" and "attribute" not in given:
        raise LatentAtlasError("--kind attribute needs --attribute NAME")
    if kind == "between":
        for side, index, image in (("start", "from_index", "from_image"), ("end", "to_index", "to_image")):
            if (index in given) == (image in given):
                flags = "--from I or --from-image PATH" if side == "start" else "--to J or --to-image PATH"
                raise LatentAtlasError(f"--kind between needs exactly one {side} point: {flags}")
        interpolation = given.get("interpolation", "linear")
        if interpolation not in INTERPOLATIONS:
            raise LatentAtlasError(f"unknown interpolation {interpolation!r}; choose from {', '.join(INTERPOLATIONS)}")
    value_range = given.get("value_range")
    if value_range is not None and (len(value_range) != 2 or not np.isfinite(value_range).all()):
        raise LatentAtlasError(f"--range needs two finite numbers like -3,3, got {value_range!r}")


def _base(base: str | int | None) -> int | None:
    """The z-point row a plane path or traversal keeps fixed, or None for the centre."""
    if base is None or base in ("centre", "center"):
        return None
    if isinstance(base, str):
        try:
            return int(base)
        except ValueError:
            raise LatentAtlasError(f"--base must be 'centre' or a z-point row index, got {base!r}") from None
    return base


def path_run(
    run: Run,
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
    attribute: str | None = None,
) -> dict:
    """Build a path of `kind` through the run's latent space, decode it, and write its folder.

    The centre and covariance come from the run's `subset` z-points; `base` ("centre" or a z-point row
    index) fixes the components a plane path or traversal leaves alone. A traversal's `value_range`
    is in units of that component's std, relative to the base point. An attribute path runs along the
    difference of the attribute's class means through the centre (or the z-point row `from_index`),
    ±`length` (default 2) times the bulk's spread along it. Writes grid.png, z.npy,
    projection.png and info.json into `out` (default RUN/paths/<kind>-<options>/), all at once.
    """
    import matplotlib.pyplot as plt

    from latentatlas.plots import plot_projection, save_figure, save_image_grid

    options = {
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
        "attribute": attribute,
    }
    given = {name: value for name, value in options.items() if value is not None}
    _check_options(kind, given)
    steps = checks.positive_int(steps, "steps", minimum=2, maximum=MAX_STEPS)
    base_row = _base(base)

    z_fit = run_zpoints(run, subset)
    z_all = run.zpoints()
    dim = z_fit.shape[1]
    fitted = moments(z_fit)
    centre, cov, std = fitted.mean, fitted.cov, fitted.std
    base_point = centre if base_row is None else _row(z_all, base_row, "--base")
    base_label = "" if base_row is None else f"-base{base_row}"

    if kind == "origin-to-centre":
        path = origin_to_centre(centre, steps)
        name = f"origin-to-centre-steps{steps}"
        description = "from the latent origin to the centre of the z-points"
    elif kind == "plane":
        assert plane is not None
        j1, j2 = checks.plane(plane, dim)
        angle, length = (0.0 if angle is None else angle), (2.0 if length is None else length)
        path = plane_path(centre, cov, (j1, j2), angle, steps, length=length, base=base_point)
        name = f"plane-{j1}-{j2}-angle{_number(angle)}-length{_number(length)}-steps{steps}{base_label}"
        description = (
            f"through the centre in plane ({j1}, {j2}) at {_number(angle)} degrees, ±{_number(length)} spreads"
        )
    elif kind == "between":
        interpolation = interpolation or "linear"
        ends, labels = [], []
        for index, image, flag in ((from_index, from_image, "--from"), (to_index, to_image, "--to")):
            if index is not None:
                ends.append(_row(z_all, index, flag))
                labels.append(str(index))
            else:
                assert image is not None
                pixels = load_image_file(image, run.image_size)
                ends.append(run.encode(pixels)[0].astype(np.float64))
                labels.append("img-" + _safe_name(Path(image).stem))
        path = between(ends[0], ends[1], steps, method=interpolation)
        name = f"between-{labels[0]}-{labels[1]}-{interpolation}-steps{steps}"
        description = f"{interpolation} interpolation from {labels[0]} to {labels[1]}"
    elif kind == "attribute":
        assert attribute is not None
        meta = run.metadata()
        values = attribute_values(meta.loc[meta["subset"].to_numpy() == subset], attribute, "--attribute")
        direction, shift = attribute_direction(z_fit, values)
        spread = float(np.sqrt(direction @ cov @ direction))
        start = centre if from_index is None else _row(z_all, from_index, "--from")
        length = 2.0 if length is None else length
        path = direction_path(start, direction, spread, steps, length=length)
        label = "centre" if from_index is None else f"from{from_index}"
        name = f"attribute-{attribute}-{label}-length{_number(length)}-steps{steps}"
        description = (
            f"along the {attribute} direction (difference of class means, {np.linalg.norm(shift):.3g} long) "
            f"through the {'centre' if from_index is None else f'z-point {from_index}'}, ±{_number(length)} spreads"
        )
    else:
        j = component_index(component, dim)
        low, high = (-3.0, 3.0) if value_range is None else (float(value_range[0]), float(value_range[1]))
        path = traverse(base_point, j, base_point[j] + np.linspace(low, high, steps) * std[j])
        name = f"traverse-c{j}-from{_number(low)}-to{_number(high)}-steps{steps}{base_label}"
        description = f"component {j} swept from {_number(low)} to {_number(high)} std around the base point"

    projection_plane = checks.plane(plane, dim) if plane is not None else most_moving_plane(path, std)
    vectors = path.astype(np.float32)
    images = run.decode(vectors)
    # distance of each step from the centre, in units of the bulk's spread
    mahalanobis = np.sqrt(Mahalanobis().fit(z_fit, mean=centre, covariance=cov).sq_distance(path))
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
        **run.provenance(),
        "command": "path",
        "run": str(run.path),
        "kind": kind,
        "steps": steps,
        "subset": subset,
        "options": {key: (str(value) if isinstance(value, os.PathLike) else value) for key, value in given.items()},
        "projection_plane": list(projection_plane),
        "mahalanobis": mahalanobis,
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
        with run.lock(), atomic_folder(folder, kind="path") as tmp:
            save_image_grid(
                images, tmp / "grid.png", ncols=steps if steps <= 12 else None, scale=grid_scale(images.shape[1])
            )
            save_npy(tmp / "z.npy", vectors)
            save_figure(fig, tmp / "projection.png")
            write_json(tmp / "info.json", info)
    finally:
        plt.close(fig)
    return {**info, "path": str(folder)}
