"""`latentatlas encode`: every image of a run's source through the encoder, into the z-point store
RUN/zpoints/ (zpoints.npy, zpoints.parquet with the `BOOKKEEPING_COLUMNS` first, zpoints.json)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from latentatlas.config import DataConfig
from latentatlas.data import load_images
from latentatlas.errors import LatentAtlasError
from latentatlas.io import atomic_folder
from latentatlas.store.model_import import IMPORTED_WEIGHTS, ZPOINTS_DIR, write_store
from latentatlas.store.run import Run


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

    which = IMPORTED_WEIGHTS if run.imported else weights
    with run.lock(), atomic_folder(run.path / ZPOINTS_DIR, kind="zpoints") as folder:
        write_store(
            folder,
            model,
            imageset,
            subset,
            source.to_dict(),
            external,
            which,
            run.weights_id(weights),
            batch_size=batch_size,
            progress=progress,
        )
    return run.zpoints_file("zpoints.npy")


__all__ = ["encode_run"]
