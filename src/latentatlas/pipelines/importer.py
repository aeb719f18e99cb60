"""`latentatlas import`: z-points of any model (and a TorchScript decoder, e.g. from `latentatlas export`) as a run.

(The other route, an encoder and decoder with the images they encode, is `store.model_import.import_model`,
which `Run.from_model` and `latentatlas import --encoder` call.)

An imported run folder holds what the analysis, samplers, paths, evaluation and report read:
zpoints/ (zpoints.npy float32, zpoints.parquet: index, subset, then the user's metadata columns, zpoints.json),
split.npy (0 train, 1 held out), imported.json (in place of config.json) and, optionally, decoder.pt:
a TorchScript module mapping float32 (B, N) latent vectors to (B, 3, S, S) pixels in [0, 1].
`torch.jit.load` rebuilds such a module from its serialized graph and executes no Python from the file,
unlike unpickling a model, so importing a decoder someone sent you cannot run their code on load.
Everything is checked before the folder is written, and it appears whole or not at all.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from latentatlas import checks
from latentatlas.data import BOOKKEEPING_COLUMNS, IMAGE_COLUMNS
from latentatlas.errors import LatentAtlasError
from latentatlas.io import array_id, atomic_folder, atomic_path, load_npy, save_npy, write_json
from latentatlas.store import DECODER_FILE, IMPORT_FILE, SUBSETS, ZPOINTS_DIR, Run, load_torchscript_decoder
from latentatlas.store.model_import import IMPORT_KIND, read_split
from latentatlas.train import make_split

# the bookkeeping columns a run writes itself (given metadata may bring the image ones: image_id, path, ...)
RESERVED_COLUMNS = tuple(c for c in BOOKKEEPING_COLUMNS if c not in IMAGE_COLUMNS)
PROBE_ROWS = 2  # latent vectors passed through a decoder at import to check its output shape


def read_zpoints(path: str | os.PathLike) -> np.ndarray:
    """Z.npy as float32 (n, N): 2-D, numeric, finite, at least 2 rows."""
    z = load_npy(path, mmap=False)
    z = checks.points(z, min_rows=2, name=f"z-points in {Path(path).name}")
    return np.ascontiguousarray(z, dtype=np.float32)


def read_metadata(path: str | os.PathLike, n: int) -> pd.DataFrame:
    """One row per z-point from a .parquet or .csv file."""
    path = Path(path)
    if not path.is_file():
        raise LatentAtlasError(f"metadata file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise LatentAtlasError(f"metadata must be a .parquet or .csv file, not {path.name}")
    try:
        frame = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise LatentAtlasError(f"cannot read metadata {path}: {str(exc).splitlines()[0]}") from None
    if len(frame) != n:
        raise LatentAtlasError(f"metadata {path.name} has {len(frame)} rows, the z-points {n}: one row per z-point")
    clash = [c for c in RESERVED_COLUMNS if c in frame.columns]
    if clash:
        raise LatentAtlasError(f"metadata {path.name} has column(s) {', '.join(clash)}, which the run writes itself")
    return frame.reset_index(drop=True)


def probe_decoder(path: str | os.PathLike, z: np.ndarray, image_size: int | None) -> int:
    """Load the TorchScript decoder, run it on the first z-points; returns the image size it produces."""
    decoder = load_torchscript_decoder(path, "cpu")
    try:
        with torch.inference_mode():
            x = decoder(torch.from_numpy(z[:PROBE_ROWS].copy()))
    except Exception as exc:  # a user's module can fail in any way; report it as the bad input it is
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LatentAtlasError(
            f"the decoder {Path(path).name} failed on ({PROBE_ROWS}, {z.shape[1]}) z-points: {first_line}"
        ) from None
    rows = min(PROBE_ROWS, len(z))
    shape = tuple(x.shape) if isinstance(x, torch.Tensor) else None
    if shape is None or len(shape) != 4 or shape[:2] != (rows, 3) or shape[2] != shape[3]:
        raise LatentAtlasError(
            f"the decoder {Path(path).name} returned {shape or type(x).__name__} for ({rows}, {z.shape[1]}) "
            f"z-points; expected square RGB images ({rows}, 3, S, S)"
        )
    if image_size is not None and shape[2] != image_size:
        raise LatentAtlasError(
            f"the decoder {Path(path).name} returns {shape[2]}x{shape[3]} images, the declared image size is "
            f"{image_size}"
        )
    if not torch.isfinite(x).all():
        raise LatentAtlasError(f"the decoder {Path(path).name} returned NaN or infinite pixels")
    return int(shape[2])


def import_run(
    out: str | os.PathLike,
    zpoints: str | os.PathLike,
    meta: str | os.PathLike | None = None,
    decoder: str | os.PathLike | None = None,
    val_fraction: float | None = None,
    split: str | os.PathLike | None = None,
    image_size: int | None = None,
    seed: int = 0,
) -> Run:
    """Create the run folder `out` from another model's z-points; returns it as a Run.

    The held-out rows come from `split` (a file) or a seeded `val_fraction` (default 0.1; 0 holds none out).
    `image_size` is checked against the decoder's output (and inferred from it when not given).
    """
    out = Path(out)
    if split is not None and val_fraction is not None:
        raise LatentAtlasError("give either --split or --val-fraction, not both")
    if image_size is not None:
        image_size = checks.positive_int(image_size, "image size")
        if decoder is None:
            raise LatentAtlasError("--image-size declares the decoder's output size: give --decoder too")
    seed = checks.seed(seed)
    z = read_zpoints(zpoints)
    n = len(z)
    frame = read_metadata(meta, n) if meta is not None else pd.DataFrame(index=range(n))
    fraction = 0.1 if val_fraction is None else val_fraction
    if split is not None:
        split_array = read_split(split, n)
    else:
        fraction = checks.fraction(fraction, "validation fraction", open_low=False)
        split_array = make_split(n, fraction, seed)
    size = probe_decoder(decoder, z, image_size) if decoder is not None else None

    subset = np.where(split_array == 1, "val", "train").astype(object)
    frame.insert(0, "index", np.arange(n, dtype=np.int64))
    frame.insert(1, "subset", subset)
    info = {
        "zpoints": str(Path(zpoints).resolve()),
        "metadata": str(Path(meta).resolve()) if meta is not None else None,
        "decoder": DECODER_FILE if decoder is not None else None,
        "decoder_source": str(Path(decoder).resolve()) if decoder is not None else None,
        "latent_dim": int(z.shape[1]),
        "image_size": size,
        "n": n,
        "split": str(Path(split).resolve()) if split is not None else {"val_fraction": fraction, "seed": seed},
    }
    with atomic_folder(out, kind=IMPORT_KIND) as tmp, atomic_folder(tmp / ZPOINTS_DIR, kind="zpoints") as store:
        save_npy(store / "zpoints.npy", z)
        with atomic_path(store / "zpoints.parquet") as parquet:
            frame.to_parquet(parquet, index=False)
        save_npy(tmp / "split.npy", split_array)
        write_json(
            store / "zpoints.json",
            {
                "source": {"imported": info["zpoints"]},
                "external": False,
                "n": n,
                "latent_dim": int(z.shape[1]),
                "subsets": {name: int((subset == name).sum()) for name in SUBSETS},
                "skipped_files": [],
                "store_id": array_id(z),
            },
        )
        if decoder is not None:
            shutil.copyfile(decoder, tmp / DECODER_FILE)
        write_json(tmp / IMPORT_FILE, info)
    return Run(out)


__all__ = ["import_run", "read_zpoints", "read_metadata", "read_split", "probe_decoder"]
