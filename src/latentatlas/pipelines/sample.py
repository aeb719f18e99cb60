"""`latentatlas sample`: fit a sampler on a run's z-points, draw vectors, decode them, write the folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from latentatlas import checks
from latentatlas.analysis.conditions import MIN_CONDITIONED_ROWS, parse_where, where_rows
from latentatlas.errors import LatentAtlasError
from latentatlas.io import atomic_folder, png_bytes, save_npy, write_json
from latentatlas.pipelines.conditional import rows_needed
from latentatlas.pipelines.reencode import check_rounds
from latentatlas.pipelines.reencode import reencode as reencode_draws
from latentatlas.plots import save_image_grid
from latentatlas.progress import epoch_progress
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


def sample_run(
    run: Run,
    sampler: str,
    n: int = 64,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    subset: str = "train",
    grid_limit: int = 64,
    where: str | None = None,
    save_images: bool = False,
    progress: bool = False,
    reencode: int = 0,
    **options: Any,
) -> dict:
    """Fit sampler `sampler` on the run's `subset` z-points, draw `n` vectors and decode them.

    Writes, all at once, into `out` (default RUN/samples/<sampler>[-<options>][-<subset>][-where-<conditions>]
    -seed<seed>/, the subset named when it is not train):
    grid.png (the first `grid_limit` images), z.npy (all n vectors), sampler/ (the fitted sampler)
    and info.json. Everything is validated and computed before the folder appears. `where` (e.g.
    "Male=1,Eyeglasses=1") fits the sampler only on the z-points whose attributes satisfy it. With
    `progress`, a sampler that trains (flow, two-stage) reports every epoch on stderr (`epoch_progress`).
    `reencode` carries the draws that many times through z <- encode(decode(z)) (`pipelines.reencode`; in the
    folder's name, z.npy holds the re-encoded vectors and sampler/ the fitted sampler).
    """
    estimator = make_sampler(sampler, **options)
    n = checks.positive_int(n, "number of samples n")
    seed = checks.seed(seed)
    grid_limit = checks.positive_int(grid_limit, "grid size")
    reencode = check_rounds(reencode, run)
    conditions = parse_where(where) if where is not None else []
    z = run_zpoints(run, subset)
    if conditions:
        meta = run.metadata()
        selected = where_rows(meta.loc[meta["subset"].to_numpy() == subset], conditions)
        needed = max(MIN_CONDITIONED_ROWS, rows_needed(estimator, z.shape[1]))
        if selected.sum() < needed:
            raise LatentAtlasError(
                f"--where {where} selects {int(selected.sum())} of {len(z)} {subset} z-points; "
                f"{sampler} needs at least {needed}"
            )
        z = z[selected]
    if save_images:
        checks.allocation((n, run.image_size, run.image_size, 3), 1, f"--save-images of {n} images")
    estimator.fit(z, progress=epoch_progress() if progress else None)
    vectors = reencode_draws(run, estimator.sample(n, seed=seed), reencode)
    shown = min(n, grid_limit)
    images = run.decode(vectors[:shown])
    words = {"=": "=", "<": "-lt", ">": "-gt", "<=": "-le", ">=": "-ge"}
    condition_slug = "-where-" + ",".join(f"{n}{words[o]}{v:g}" for n, o, v in conditions) if conditions else ""
    # The subset is in the name when it is not the default, so a val sample does not replace the train one.
    subset_slug = f"-{subset}" if subset != "train" else ""
    reencode_slug = f"-reencode{reencode}" if reencode else ""
    default = f"{sampler}{_option_slug(options)}{reencode_slug}{subset_slug}{condition_slug}-seed{seed}"
    folder = Path(out) if out is not None else run.path / "samples" / default
    info = {
        **run.provenance(),
        "command": "sample",
        "run": str(run.path),
        "sampler": sampler,
        "options": estimator.get_params(),
        "n": n,
        "seed": seed,
        "reencode": reencode,
        "subset": subset,
        "where": where,
        "fitted_on": int(len(z)),
        "latent_dim": int(z.shape[1]),
        "mean_radius": {"samples": float(np.linalg.norm(vectors, axis=1).mean()), "z_points": mean_radius(z)},
        "files": {"vectors": "z.npy", "sampler": "sampler", **({"images": "images/"} if save_images else {})},
        "figures": [
            {
                "file": "grid.png",
                "caption": f"{shown} of {n} images decoded from {sampler} latent vectors (seed {seed}"
                + (f", re-encoded {reencode}×" if reencode else "")
                + f"), the sampler fitted on {len(z)} {subset} z-points"
                + (f" with {where}" if where else ""),
            }
        ],
    }
    with run.lock(), atomic_folder(folder, kind="samples") as tmp:
        save_image_grid(images, tmp / "grid.png", scale=grid_scale(images.shape[1]))
        save_npy(tmp / "z.npy", vectors)
        estimator.save(tmp / "sampler")
        if save_images:  # every decoded sample as its own PNG, for use with other tools (FID suites, viewers)
            (tmp / "images").mkdir()
            for start in range(0, n, 256):
                for offset, image in enumerate(run.decode(vectors[start : start + 256])):
                    (tmp / "images" / f"{start + offset:06d}.png").write_bytes(png_bytes(image, compress_level=6))
        write_json(tmp / "info.json", info)
    return {**info, "path": str(folder)}
