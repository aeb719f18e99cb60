"""Training in TensorBoard (`train --tensorboard DIR`): per epoch the losses, the learning rate, the speed and a
grid of held-out images over their reconstructions, through torch.utils.tensorboard's SummaryWriter.

`TensorBoardLog` is the `on_epoch` hook of `latentatlas.train.train`; `tensorboard` is the optional extra
`latentatlas[tensorboard]`. The writer is opened at the first epoch, so the hook can be sent to the
processes of a multi-process training before any file is written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from latentatlas import extras
from latentatlas.decoding import decode_latents, encode_images
from latentatlas.errors import LatentAtlasError
from latentatlas.io import output_mark
from latentatlas.model import Autoencoder

GRID_COLUMNS = 8
EVENTS_PREFIX = "events.out.tfevents."  # SummaryWriter's event files
# written by pipelines.projector (`export --projector`), the config first; named here for check_log_dir
PROJECTOR_FILES = ("projector_config.pbtxt", "tensors.tsv", "metadata.tsv", "sprite.png")
SCALARS = {  # history row key -> TensorBoard tag
    "train_loss": "loss/train",
    "val_loss": "loss/val",
    "lr": "learning_rate",
    "images_per_s": "speed/images_per_s",
}


def check_log_dir(log_dir: str | os.PathLike, force: bool = False) -> Path:
    """The one rule for folders that `train --tensorboard` and `export --projector` write into: refuse a
    folder holding anything but TensorBoard event files and an earlier projector export (its config carries
    the export mark), unless `force`. The tensorboard package is checked first."""
    extras.require("tensorboard")
    path = Path(log_dir)
    if path.exists() and not path.is_dir():
        raise LatentAtlasError(f"{path} is a file; give a folder for TensorBoard")
    if force or not path.is_dir():
        return path
    config = path / PROJECTOR_FILES[0]
    earlier_export = config.is_file() and output_mark("export").encode("ascii") in config.read_bytes()[:4096]
    ours = set(PROJECTOR_FILES) if earlier_export else set()
    others = sorted(p.name for p in path.iterdir() if p.name not in ours and not p.name.startswith(EVENTS_PREFIX))
    if others:
        raise LatentAtlasError(
            f"refusing to write into {path}: it holds files that are not TensorBoard's or an earlier latentatlas "
            f"export ({', '.join(others[:3])}); choose another folder or add --force"
        )
    return path


def reconstruction_grid(images: np.ndarray, reconstructions: np.ndarray, columns: int = GRID_COLUMNS) -> np.ndarray:
    """uint8 (H', W', 3): rows of up to `columns` images, each row of originals above its reconstructions,
    with a 2-pixel dark gap."""
    n, side = len(images), images.shape[1]
    columns = min(columns, n)
    rows = -(-n // columns)
    gap = 2
    cell = side + gap
    grid = np.full((2 * rows * cell - gap, columns * cell - gap, 3), 32, np.uint8)
    for i in range(n):
        r, c = divmod(i, columns)
        x = c * cell
        grid[2 * r * cell : 2 * r * cell + side, x : x + side] = images[i]
        grid[(2 * r + 1) * cell : (2 * r + 1) * cell + side, x : x + side] = reconstructions[i]
    return grid


class TensorBoardLog:
    """Writes one epoch's history row and reconstructions of the same fixed images into `log_dir`."""

    def __init__(self, log_dir: str | os.PathLike) -> None:
        self.log_dir = Path(log_dir)
        self._writer: Any = None

    def __getstate__(self) -> dict:
        return {"log_dir": self.log_dir, "_writer": None}  # each process opens its own writer

    def _open(self) -> Any:
        if self._writer is None:
            extras.require("tensorboard")
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

            self._writer = SummaryWriter(str(self.log_dir))
        return self._writer

    def __call__(self, row: dict, model: Autoencoder, images: np.ndarray) -> None:
        writer = self._open()
        epoch = int(row["epoch"])
        for key, tag in SCALARS.items():
            value = row.get(key)
            if value is not None and np.isfinite(value):  # no validation set: val loss is NaN
                writer.add_scalar(tag, float(value), epoch)
        if len(images):
            reconstructions = decode_latents(model, encode_images(model, images))
            grid = reconstruction_grid(np.asarray(images), reconstructions)
            writer.add_image("reconstructions", grid, epoch, dataformats="HWC")
        writer.flush()  # each epoch is readable at once, and survives a killed run

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
