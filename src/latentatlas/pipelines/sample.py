"""`latentatlas sample`: fit a sampler on a run's z-points, draw vectors, decode them, write the folder."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.io import atomic_folder, save_npy, write_json
from latentatlas.plots import save_image_grid
from latentatlas.samplers import make_sampler
from latentatlas.samplers.box import mean_radius
from latentatlas.store import Run


def _option_slug(options: dict[str, Any]) -> str:
    """Readable folder-name parts for the options the user set, e.g. "-b1.5" or "-percentiles5,95"."""
    parts = []
    for key, value in sorted(options.items()):
        text = (
            ",".join(f"{v:g}" for v in value)
            if isinstance(value, (tuple, list))
            else (f"{value:g}" if isinstance(value, float) else str(value))
        )
        parts.append(f"-{key.replace('_', '-')}{text}")
    return "".join(parts)


def grid_scale(image_size: int) -> int:
    """Enlarge small images in PNG grids so faces stay recognisable."""
    return max(1, 128 // max(1, image_size)) if image_size < 64 else 1


def run_zpoints(run: Run, subset: str) -> np.ndarray:
    """The run's `subset` z-points, refused when they do not match the model's latent dimension."""
    z = run.zpoints(subset)
    if z.shape[1] != run.latent_dim:
        raise LatentAtlasError(
            f"the z-points of {run.path} have dimension {z.shape[1]}, the model {run.latent_dim}: "
            f"run `latentatlas encode {run.path}`"
        )
    return z


# metadata columns that describe the row, not the image: never conditions
_BOOKKEEPING = {"index", "image_id", "path", "subset", "partition"}
_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|=|<|>)\s*([-+0-9.eE]+)\s*$")
MIN_CONDITIONED_ROWS = 10


def parse_where(text: str) -> list[tuple[str, str, float]]:
    """ "Male=1,Eyeglasses=1" or "face_width>0.5" -> [(name, operator, value), ...]."""
    conditions = []
    for part in text.split(","):
        match = _CONDITION.match(part)
        if not match:
            raise LatentAtlasError(
                f"--where: {part.strip()!r} is not a condition like Male=1 or face_width>0.5 (operators = < > <= >=)"
            )
        name, operator, value = match.groups()
        conditions.append((name, operator, checks.finite_number(value, f"--where value of {name}")))
    return conditions


def attribute_values(meta, name: str, flag: str = "--where") -> np.ndarray:
    """One attribute or factor column as float64; an unknown name suggests the nearest known one."""
    known = [c for c in meta.columns if c not in _BOOKKEEPING]
    if not known:
        raise LatentAtlasError(f"{flag}: this run's source has no attributes or factors to condition on")
    if name not in known:
        near = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {near[0]}?" if near else f" (known: {', '.join(known[:12])}...)"
        raise LatentAtlasError(f"{flag}: unknown attribute {name!r}{hint}")
    return meta[name].to_numpy(dtype=np.float64)


def where_rows(meta, conditions: list[tuple[str, str, float]]) -> np.ndarray:
    """Boolean mask of the metadata rows that satisfy every condition; unknown names suggest the nearest."""
    mask = np.ones(len(meta), dtype=bool)
    for name, operator, value in conditions:
        column = attribute_values(meta, name)
        compare = {"=": np.equal, "<": np.less, ">": np.greater, "<=": np.less_equal, ">=": np.greater_equal}
        mask &= compare[operator](column, value)
    return mask


def sample_run(
    run: Run,
    sampler: str,
    n: int = 64,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    subset: str = "train",
    grid_limit: int = 64,
    where: str | None = None,
    **options: Any,
) -> dict:
    """Fit sampler `sampler` on the run's `subset` z-points, draw `n` vectors and decode them.

    Writes, all at once, into `out` (default RUN/samples/<sampler>[-<options>]-seed<seed>/):
    grid.png (the first `grid_limit` images), z.npy (all n vectors), sampler/ (the fitted sampler)
    and info.json. Everything is validated and computed before the folder appears. `where` (e.g.
    "Male=1,Eyeglasses=1") fits the sampler only on the z-points whose attributes satisfy it.
    """
    estimator = make_sampler(sampler, **options)
    n = checks.positive_int(n, "number of samples n")
    seed = checks.seed(seed)
    grid_limit = checks.positive_int(grid_limit, "grid size")
    conditions = parse_where(where) if where is not None else []
    z = run_zpoints(run, subset)
    if conditions:
        meta = run.metadata()
        selected = where_rows(meta[meta["subset"].to_numpy() == subset], conditions)
        needed = max(MIN_CONDITIONED_ROWS, estimator._min_rows())
        if selected.sum() < needed:
            raise LatentAtlasError(
                f"--where {where} selects {int(selected.sum())} of {len(z)} {subset} z-points; "
                f"{sampler} needs at least {needed}"
            )
        z = z[selected]
    estimator.fit(z)
    vectors = estimator.sample(n, seed=seed)
    shown = min(n, grid_limit)
    images = run.decode(vectors[:shown])
    words = {"=": "=", "<": "-lt", ">": "-gt", "<=": "-le", ">=": "-ge"}
    condition_slug = "-where-" + ",".join(f"{n}{words[o]}{v:g}" for n, o, v in conditions) if conditions else ""
    default = f"{sampler}{_option_slug(options)}{condition_slug}-seed{seed}"
    folder = Path(out) if out is not None else run.path / "samples" / default
    info = {
        "command": "sample",
        "run": str(run.path),
        "sampler": sampler,
        "options": estimator.get_params(),
        "n": n,
        "seed": seed,
        "subset": subset,
        "where": where,
        "fitted_on": int(len(z)),
        "latent_dim": int(z.shape[1]),
        "mean_radius": {"samples": float(np.linalg.norm(vectors, axis=1).mean()), "z_points": mean_radius(z)},
        "files": {"vectors": "z.npy", "sampler": "sampler"},
        "figures": [
            {
                "file": "grid.png",
                "caption": f"{shown} of {n} images decoded from {sampler} latent vectors (seed {seed}), "
                f"the sampler fitted on {len(z)} {subset} z-points" + (f" with {where}" if where else ""),
            }
        ],
    }
    with atomic_folder(folder, kind="samples") as tmp:
        save_image_grid(images, tmp / "grid.png", scale=grid_scale(images.shape[1]))
        save_npy(tmp / "z.npy", vectors)
        estimator.save(tmp / "sampler")
        write_json(tmp / "info.json", info)
    return {**info, "path": str(folder)}
