"""`latentatlas reconstruct` and `latentatlas export`: held-out images beside their reconstructions, and the
decoder as TorchScript for use without latentatlas."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from latentatlas import checks
from latentatlas.decoding import decode_latents, encode_images
from latentatlas.errors import LatentAtlasError
from latentatlas.io import atomic_path, check_output_file, output_mark, write_json
from latentatlas.plots import save_image_grid
from latentatlas.store import Run

KIND = "reconstruct"  # the command whose outputs the grid and its JSON are


def reconstruct(
    run: Run,
    n: int = 32,
    subset: str = "val",
    seed: int = 0,
    device: torch.device | str | None = None,
    weights: str = "best",
) -> tuple[np.ndarray, np.ndarray]:
    """(originals, reconstructions), both uint8 (n, H, W, 3), for a seeded random pick of one subset's images."""
    checks.positive_int(n, "the number of images")
    checks.seed(seed)
    if subset not in ("train", "val", "all"):
        raise LatentAtlasError(f"unknown subset {subset!r}; choose from train, val, all")
    split = run.split()
    candidates = np.arange(len(split)) if subset == "all" else np.flatnonzero(split == (1 if subset == "val" else 0))
    if len(candidates) == 0:
        raise LatentAtlasError(f"run {run.path} has no {subset} images (validation fraction 0?); use --subset train")
    picked = np.sort(np.random.default_rng(seed).choice(candidates, size=min(n, len(candidates)), replace=False))
    originals = np.asarray(run.images().images[picked])
    model = run.load_model(device, weights)
    return originals, decode_latents(model, encode_images(model, originals))


def save_reconstructions(
    run: Run,
    path: str | os.PathLike | None = None,
    n: int = 32,
    subset: str = "val",
    seed: int = 0,
    ncols: int = 8,
    device: torch.device | str | None = None,
    weights: str = "best",
    force: bool = False,
) -> dict:
    """PNG grid of originals (rows 1, 3, 5, ...) with their reconstructions right below (rows 2, 4, 6, ...).

    Writes the PNG and a JSON beside it (same name, .json) with the MSE and the figure caption. Existing files
    at `path` that are not earlier reconstructions are refused unless `force` (RUN/reconstructions.png is
    the run's own).
    """
    own = path is None or force
    path = Path(path) if path is not None else run.path / "reconstructions.png"
    if path.suffix.lower() != ".png":
        raise LatentAtlasError(f"the reconstruction grid is a PNG; give a file name ending in .png, not {path.name}")
    for file in (path, path.with_suffix(".json")):  # both before either is written
        check_output_file(file, KIND, force=own)
    originals, recon = reconstruct(run, n, subset, seed, device, weights)
    ncols = max(1, min(ncols, len(originals)))
    rows = []
    for start in range(0, len(originals), ncols):
        block = slice(start, start + ncols)
        pad = ncols - len(originals[block])
        filler = np.full((pad, *originals.shape[1:]), 255, np.uint8)
        rows += [originals[block], filler, recon[block], filler]
    save_image_grid(
        np.concatenate(rows), path, ncols=ncols, scale=2 if originals.shape[1] <= 64 else 1, mark=output_mark(KIND)
    )
    mse = float(np.mean((originals.astype(np.float32) / 255 - recon.astype(np.float32) / 255) ** 2))
    summary = {
        "output": output_mark(KIND),  # first, so a later reconstruct recognises the file as its own
        "run": str(run.path),
        "subset": subset,
        "n": len(originals),
        "mse": mse,
        "weights": weights,
        "weights_id": run.weights_id(weights),
        "figures": [
            {
                "file": path.name,
                "caption": f"{len(originals)} {subset} images: originals on odd rows (1, 3, ...), "
                f"the autoencoder's reconstructions directly below them on even rows (MSE {mse:.5f})",
            }
        ],
    }
    write_json(path.with_suffix(".json"), summary)
    return summary


def export_decoder(run: Run, path: str | os.PathLike, weights: str = "best", force: bool = False) -> dict:
    """Write the decoder as a TorchScript file (z (B, latent_dim) -> images (B, 3, S, S) in [0, 1], on CPU).

    `torch.jit.load` of the file runs no Python code. The file carries latentatlas.json (latent
    dimension, image size, weights id) as an extra file; returns that description. An existing file that is
    not an exported decoder is refused unless `force`.
    """
    path = Path(path)
    if path.is_dir():
        raise LatentAtlasError(f"{path} is a folder; give a file name for the decoder, e.g. decoder.pt")
    check_output_file(path, "export", force=force)
    decoder = run.load_model("cpu", weights).decoder.eval()
    info = {
        "output": output_mark("export"),  # the extra file lies in the first bytes: a later export recognises it
        "format": "latentatlas-decoder",
        "latent_dim": run.model_config.latent_dim,
        "image_size": run.model_config.image_size,
        "weights": weights,
        "weights_id": run.weights_id(weights),
        "run": str(run.path),
    }
    # TorchScript is what the issue asks for (loadable without Python code); newer torch calls it deprecated.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.trace(decoder, torch.zeros(2, run.model_config.latent_dim))
    try:
        with atomic_path(path) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(scripted, str(tmp), _extra_files={"latentatlas.json": json.dumps(info)})
    except OSError as exc:
        raise LatentAtlasError(f"cannot write {path}: {exc.strerror or exc}") from None
    return info
