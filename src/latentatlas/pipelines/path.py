"""`latentatlas path`: build a latent path through a run, decode it, score it and write its folder."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

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
from latentatlas.pipelines.evaluate import evaluate_points
from latentatlas.pipelines.sample import grid_scale, run_zpoints
from latentatlas.plots import plot_path_projection, plt, save_figure, save_image_grid
from latentatlas.stats import Mahalanobis, moments
from latentatlas.store import Run


def _number(value: float) -> str:
    return f"{float(value):g}"


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "image"


def load_image_file(path: str | os.PathLike, image_size: int) -> np.ndarray:
    """One image file as uint8 (1, S, S, 3): the largest centred square, cropped then resized to the run's
    image size by the data package's one decoder (so no pixel from outside the square leaks in)."""
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


ROW_PREFIX, ID_PREFIX = "row:", "id:"  # force one reading of a --from / --to point
_ROW_NUMBER = re.compile(r"^[+-]?\d+$")
_EXTENSION = re.compile(r"\.[A-Za-z0-9]+$")


def _image_ids(meta: pd.DataFrame) -> pd.Series | None:
    return meta["image_id"].astype(str) if "image_id" in meta.columns else None


def _rows_with_id(ids: pd.Series, text: str) -> np.ndarray:
    """Rows whose image id is `text`, else (when there is none) rows whose id without its file
    extension is `text` (CelebA's 000123 for 000123.jpg)."""
    rows = np.flatnonzero(ids.to_numpy() == text)
    if len(rows) == 0:
        rows = np.flatnonzero(ids.str.replace(_EXTENSION, "", regex=True).to_numpy() == text)
    return rows


def _unknown_id(ids: pd.Series | None, text: str, flag: str) -> LatentAtlasError:
    if ids is None:
        return LatentAtlasError(
            f"{flag} {text!r} is not a z-point row number, and this run's z-points carry no image ids "
            "(zpoints.parquet has no image_id column)"
        )
    unique = list(dict.fromkeys(ids.tolist()))
    nearest = checks.nearest_names(text, unique)
    hint = f"did you mean {' or '.join(nearest)}?" if nearest else f"ids look like {', '.join(unique[:3])}"
    return LatentAtlasError(f"{flag}: no z-point has image id {text!r}; {hint}")


def point_row(meta: pd.DataFrame, point: int | str, flag: str = "--from") -> tuple[int, str | None]:
    """(row, image id or None) of the z-point that `point` names, as `path --from` / `--to` read it.

    An int is a row number. Text is an image id as the store's metadata names it (zpoints.parquet's
    image_id: CelebA's 000123.jpg, or 000123 when only one id has that stem; synthetic-000012; a
    folder's relative file name) or a row number; `row:N` and `id:X` force one reading. Text that is
    a row number and also names another row's image is refused as ambiguous; an unknown id gets the
    nearest ids suggested.
    """
    ids = _image_ids(meta)
    if isinstance(point, (int, np.integer)) and not isinstance(point, bool):
        row = int(point)
    elif not isinstance(point, str) or not point.strip():
        raise LatentAtlasError(f"{flag} needs an image id or a z-point row number, got {point!r}")
    else:
        text = point.strip()
        forced_row, forced_id = text.startswith(ROW_PREFIX), text.startswith(ID_PREFIX)
        if forced_row or forced_id:
            text = text[len(ROW_PREFIX if forced_row else ID_PREFIX) :].strip()
        number = int(text) if _ROW_NUMBER.match(text) and not forced_id else None
        if forced_row and number is None:
            raise LatentAtlasError(f"{flag} {point!r}: {ROW_PREFIX} needs a z-point row number like {ROW_PREFIX}12")
        rows = _rows_with_id(ids, text) if ids is not None and not forced_row else np.empty(0, np.int64)
        if len(rows) > 1:
            shown = ", ".join(map(str, rows[:5]))
            raise LatentAtlasError(
                f"{flag}: image id {text!r} names {len(rows)} z-points (rows {shown}); pick one with {ROW_PREFIX}N"
            )
        if ids is not None and len(rows) == 1 and number is not None and int(rows[0]) != number:
            raise LatentAtlasError(
                f"{flag} {text} is ambiguous: image {ids.iloc[rows[0]]} (row {rows[0]}) or row {number}; "
                f"write {flag} {ID_PREFIX}{text} or {flag} {ROW_PREFIX}{number}"
            )
        if len(rows) == 1:
            row = int(rows[0])
        elif number is not None:
            row = number
        else:
            raise _unknown_id(ids, text, flag)
    if not 0 <= row < len(meta):
        raise LatentAtlasError(f"{flag} {row} is out of range: the run has {len(meta)} z-points (0..{len(meta) - 1})")
    return row, None if ids is None else str(ids.iloc[row])


def _point_label(meta: pd.DataFrame, point: int | str, flag: str, resolved: dict) -> tuple[int, str | None]:
    """point_row, recorded in `resolved` under "from" / "to", and the image id that names the output
    folder when the point was given by its id (None when given by row number)."""
    row, image_id = point_row(meta, point, flag)
    resolved[flag.lstrip("-")] = {"given": point, "row": row, "image_id": image_id}
    text = point.strip() if isinstance(point, str) else ""
    by_number = not text or text.startswith(ROW_PREFIX) or bool(_ROW_NUMBER.match(text))
    return row, None if by_number or image_id is None else _safe_name(image_id)


def _score_points(run: Run, vectors: np.ndarray, images: np.ndarray):
    """evaluate_points for the path (k-NN support, Mahalanobis percentile, face verdict of its decoded
    `images`), or None when the run holds too few held-out z-points to score against."""
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
                flags = "--from ID or --from-image PATH" if side == "start" else "--to ID or --to-image PATH"
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
    from_index: int | str | None = None,
    to_index: int | str | None = None,
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
    is in units of that component's std, relative to the base point. `from_index` / `to_index` name a
    z-point by row number (an int) or by text as `point_row` reads it (an image id such as 000123.jpg,
    a row number, row:N or id:X). An attribute path runs along the difference of the attribute's class
    means through the centre (or the z-point `from_index`), ±`length` (default 2) times the bulk's
    spread along it. Writes grid.png, z.npy,
    projection.png and info.json into `out` (default RUN/paths/<kind>-<options>/), all at once.
    """
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
    resolved: dict[str, dict] = {}  # --from / --to: the row and image id each named

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
        meta = run.metadata()
        for index, image, flag in ((from_index, from_image, "--from"), (to_index, to_image, "--to")):
            if index is not None:
                row, image_id = _point_label(meta, index, flag, resolved)
                ends.append(np.asarray(z_all[row], dtype=np.float64))
                labels.append(str(row) if image_id is None else f"id-{image_id}")
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
        start, label, through = centre, "centre", "the centre"
        if from_index is not None:
            row, named = _point_label(meta, from_index, "--from", resolved)
            start, label = np.asarray(z_all[row], dtype=np.float64), f"from{row}" if named is None else f"from-{named}"
            image_id = resolved["from"]["image_id"]
            through = f"z-point {row}" + (f" (image {image_id})" if image_id is not None else "")
        length = 2.0 if length is None else length
        path = direction_path(start, direction, spread, steps, length=length)
        name = f"attribute-{attribute}-{label}-length{_number(length)}-steps{steps}"
        description = (
            f"along the {attribute} direction (difference of class means, {np.linalg.norm(shift):.3g} long) "
            f"through {through}, ±{_number(length)} spreads"
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
    faces = None if points is None else points["face"].to_numpy(dtype=bool)
    fig = plot_path_projection(z_fit, projection_plane, centre, path, faces=faces)
    folder = Path(out) if out is not None else run.path / "paths" / name
    info = {
        **run.provenance(),
        "command": "path",
        "run": str(run.path),
        "kind": kind,
        "steps": steps,
        "subset": subset,
        "options": {key: (str(value) if isinstance(value, os.PathLike) else value) for key, value in given.items()},
        "named_points": resolved,
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
