"""`latentatlas encode`: every image of a run's source through the encoder, into the z-point store
RUN/zpoints/ (zpoints.npy, zpoints.parquet with the `BOOKKEEPING_COLUMNS` first, zpoints.json)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from latentatlas.config import DataConfig
from latentatlas.data import BOOKKEEPING_COLUMNS, load_images
from latentatlas.decoding import encode_images
from latentatlas.errors import LatentAtlasError
from latentatlas.io import array_id, atomic_folder, save_npy, write_json
from latentatlas.store.run import SUBSETS, ZPOINTS_DIR, Run


def encode_run(
    run: Run,
    data: DataConfig | None = None,
    batch_size: int = 256,
    progress: bool = True,
    device: torch.device | str | None = None,
    weights: str = "best",
) -> Path:
    """Encode every image of the run's source (or of `data`) into the z-point store RUN/zpoints/.

    Rows of the run's own source get subset "train"/"val" from split.npy; another source's rows are
    all "external". zpoints.json records which weights (`best`/`last` and their id) encoded them.
    The three files appear together or not at all (one artifact folder), under the run's lock.
    Returns the path of zpoints.npy.
    """
    model = run.load_model(device, weights)
    external = data is not None and data.to_dict() != run.data_config.to_dict()
    source = data if data is not None else run.data_config
    if source.image_size != run.model_config.image_size:
        raise LatentAtlasError(
            f"data image size {source.image_size} differs from the model's {run.model_config.image_size}"
        )
    imageset = load_images(source, progress=progress) if external else run.images()
    n = len(imageset.images)
    if n == 0:
        raise LatentAtlasError(f"{source.source} holds no images to encode")
    if external:
        subset = np.full(n, "external", dtype=object)
    else:
        split = run.split()
        if len(split) != n:
            raise LatentAtlasError(f"split.npy has {len(split)} entries but the source has {n} images")
        subset = np.where(split == 1, "val", "train").astype(object)

    z = encode_images(model, imageset.images, batch_size=batch_size, progress=progress)
    meta = imageset.meta.reset_index(drop=True).copy()
    meta.insert(0, "index", np.arange(n, dtype=np.int64))
    meta["subset"] = subset
    leading = [c for c in BOOKKEEPING_COLUMNS if c in meta.columns]
    meta = meta[leading + [c for c in meta.columns if c not in leading]]

    with run.lock(), atomic_folder(run.path / ZPOINTS_DIR, kind="zpoints") as folder:
        save_npy(folder / "zpoints.npy", z)
        meta.to_parquet(folder / "zpoints.parquet", index=False)
        write_json(
            folder / "zpoints.json",
            {
                "source": source.to_dict(),
                "external": bool(external),
                "n": n,
                "latent_dim": int(z.shape[1]),
                "subsets": {name: int((subset == name).sum()) for name in SUBSETS},
                "skipped_files": list(imageset.skipped),
                "weights": weights,
                "weights_id": run.weights_id(weights),
                "store_id": array_id(z),  # recorded by every artifact: tells which store it saw
            },
        )
    return run.zpoints_file("zpoints.npy")


__all__ = ["encode_run"]
