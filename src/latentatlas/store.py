"""The run folder (`Run`), encoding images into the z-point store, and batched decoding.

The z-point store is RUN/zpoints.npy (float32, one row per image of the source, memory-mappable),
RUN/zpoints.parquet (one metadata row per z-point) and RUN/zpoints.json (where the images came from).
"""

from __future__ import annotations

import os
import warnings
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from latentatlas.config import DataConfig, TrainConfig
from latentatlas.data import ImageSet, load_images
from latentatlas.errors import LatentAtlasError
from latentatlas.io import atomic_path, load_npy, read_json, save_npy, write_json
from latentatlas.model import Autoencoder, ModelConfig, default_device, load_model_weights, to_model_input
from latentatlas.train import HISTORY_COLUMNS, RunConfig, read_history, read_run_config

SUBSETS = ("train", "val", "external")
# An imported run (`latentatlas import`) has this file instead of config.json, and optionally a TorchScript decoder.
IMPORT_FILE = "imported.json"
DECODER_FILE = "decoder.pt"


def _model_device(model: torch.nn.Module, device: torch.device | str | None) -> torch.device:
    current = next(model.parameters(), torch.empty(0)).device
    if device is None:
        return current
    device = torch.device(device)
    if current != device:
        model.to(device)
    return device


def encode_images(
    model: Autoencoder,
    images: np.ndarray,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> np.ndarray:
    """uint8 images (n, H, W, 3) -> float32 z-points (n, latent_dim), in eval mode and full precision.

    `images` may be a memmap: it is read one batch at a time.
    """
    images = np.asarray(images) if not isinstance(images, np.ndarray) else images
    size = model.config.image_size
    if images.ndim != 4 or images.shape[1:] != (size, size, 3) or images.dtype != np.uint8:
        raise LatentAtlasError(
            f"expected uint8 images of shape (n, {size}, {size}, 3) for this model, got {images.dtype} {images.shape}"
        )
    if batch_size < 1:
        raise LatentAtlasError(f"batch size must be >= 1, got {batch_size}")
    device = _model_device(model, device)
    out = np.empty((len(images), model.config.latent_dim), np.float32)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in tqdm(
            range(0, len(images), batch_size), desc="encode", unit="batch", disable=None if progress else True
        ):
            x = to_model_input(images[start : start + batch_size], device)
            out[start : start + len(x)] = model.encode(x).float().cpu().numpy()
    model.train(was_training)
    return out


def decode_latents(
    model: Autoencoder,
    z: np.ndarray,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> np.ndarray:
    """float32 z-points (n, latent_dim) -> uint8 images (n, H, W, 3), in eval mode."""
    return decode_with(model.decoder, model.config.latent_dim, model.config.image_size, z, batch_size, device, progress)


def decode_with(
    decoder: torch.nn.Module,
    latent_dim: int,
    image_size: int,
    z: np.ndarray,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Decode with any module mapping float32 (B, latent_dim) to (B, 3, S, S) pixels in [0, 1]: the autoencoder's
    decoder or an imported TorchScript one. uint8 images (n, S, S, 3) out, in eval mode."""
    z = np.asarray(z, dtype=np.float32)
    if z.ndim == 1:
        z = z[None]
    if z.ndim != 2 or z.shape[1] != latent_dim:
        raise LatentAtlasError(f"expected latent vectors of shape (n, {latent_dim}), got {z.shape}")
    if not np.isfinite(z).all():
        raise LatentAtlasError("latent vectors contain NaN or infinite values")
    if batch_size < 1:
        raise LatentAtlasError(f"batch size must be >= 1, got {batch_size}")
    device = _model_device(decoder, device)
    out = np.empty((len(z), image_size, image_size, 3), np.uint8)
    was_training = decoder.training
    decoder.eval()
    # A TorchScript module's graph optimiser may fuse ops; plain execution keeps it bit-identical to eager.
    with torch.inference_mode(), torch.jit.optimized_execution(False):  # pyright: ignore[reportPrivateImportUsage]
        for start in tqdm(
            range(0, len(z), batch_size), desc="decode", unit="batch", disable=None if progress else True
        ):
            rows = torch.from_numpy(np.array(z[start : start + batch_size]))  # copy: z may be a read-only memmap
            x = decoder(rows.to(device))
            if not isinstance(x, torch.Tensor) or tuple(x.shape) != (len(rows), 3, image_size, image_size):
                shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                raise LatentAtlasError(
                    f"the decoder returned {shape} for {len(rows)} latent vectors, "
                    f"expected ({len(rows)}, 3, {image_size}, {image_size})"
                )
            pixels = x.float().clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(0, 2, 3, 1)
            out[start : start + len(x)] = pixels.cpu().numpy()
    decoder.train(was_training)
    return out


def load_torchscript_decoder(path: str | os.PathLike, device: torch.device | str = "cpu") -> torch.nn.Module:
    """A TorchScript decoder file. `torch.jit.load` rebuilds the module from its serialized graph and runs no
    Python from the file (unlike a pickled model), so a user's decoder file cannot execute code on load."""
    path = Path(path)
    if not path.is_file():
        raise LatentAtlasError(f"decoder file {path} does not exist")
    try:
        with warnings.catch_warnings():  # torch 2.x deprecates TorchScript for torch.export; jit.load still works
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location=torch.device(device)).eval()
    except (RuntimeError, ValueError, OSError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LatentAtlasError(f"{path} is not a TorchScript decoder (torch.jit.save): {first_line}") from None


class Run:
    """A run folder: configuration, trained model, split and z-point store. Read-only access."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_dir():
            raise LatentAtlasError(f"run folder {self.path} does not exist")
        if not (self.path / "config.json").is_file() and not (self.path / IMPORT_FILE).is_file():
            raise LatentAtlasError(
                f"{self.path} is not a latentatlas run folder (no config.json): run `latentatlas train`"
            )
        self._models: dict[str, Autoencoder] = {}
        self._decoders: dict[str, torch.nn.Module] = {}

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @property
    def imported(self) -> bool:
        """True for a run made by `latentatlas import` from another model's z-points (no autoencoder, no images)."""
        return (self.path / IMPORT_FILE).is_file() and not (self.path / "config.json").is_file()

    @cached_property
    def import_info(self) -> dict:
        """imported.json: latent_dim, image_size (None without a decoder), decoder, where the z-points came from."""
        info = read_json(self.path / IMPORT_FILE)
        if not isinstance(info, dict) or not isinstance(info.get("latent_dim"), int):
            raise LatentAtlasError(f"{self.path / IMPORT_FILE} is not an import record: run `latentatlas import`")
        return info

    def _refuse_imported(self, what: str) -> None:
        if self.imported:
            raise LatentAtlasError(f"run {self.path} was imported from z-points (latentatlas import): it has no {what}")

    @cached_property
    def config(self) -> RunConfig:
        """config.json, validated by type and range (one clear line naming the file if it is not valid)."""
        self._refuse_imported("autoencoder, training or data config")
        return read_run_config(self.path)

    @property
    def model_config(self) -> ModelConfig:
        return self.config.model

    @property
    def train_config(self) -> TrainConfig:
        return self.config.train

    @property
    def data_config(self) -> DataConfig:
        return self.config.data

    @property
    def latent_dim(self) -> int:
        return int(self.import_info["latent_dim"]) if self.imported else self.model_config.latent_dim

    @property
    def image_size(self) -> int:
        """Side of the decoded images (an imported run without a decoder has none)."""
        if self.imported:
            self.decoder_path()
            return int(self.import_info["image_size"])
        return self.model_config.image_size

    def decoder_path(self) -> Path:
        """RUN/decoder.pt of an imported run; one clear line when it was imported without one."""
        path = self.path / DECODER_FILE
        if not path.is_file() or not self.import_info.get("image_size"):
            raise LatentAtlasError(
                f"run {self.path} was imported without a decoder: images need one "
                f"(latentatlas import {self.path} --zpoints Z.npy --decoder D.pt)"
            )
        return path

    def train_state(self) -> dict:
        """train_state.json: epochs done, last and best losses, split sizes."""
        return read_json(self.path / "train_state.json")

    def history(self) -> pd.DataFrame:
        """history.csv: one row per epoch (epoch, train_loss, val_loss, seconds, images_per_s)."""
        path = self.path / "history.csv"
        if not path.is_file():
            raise LatentAtlasError(f"run {self.path} has no history.csv: run `latentatlas train --out {self.path}`")
        return pd.DataFrame(read_history(path), columns=list(HISTORY_COLUMNS))

    def load_model(self, device: torch.device | str | None = None) -> Autoencoder:
        """The trained autoencoder in eval mode, loaded once per device."""
        self._refuse_imported("autoencoder (decoding uses its decoder.pt; encoding images is not possible)")
        device = torch.device(device) if device is not None else default_device()
        if str(device) not in self._models:
            weights = self.path / "model.safetensors"
            if not weights.is_file():
                raise LatentAtlasError(
                    f"run {self.path} has no trained model (model.safetensors): "
                    f"run `latentatlas train --data SOURCE --out {self.path}`"
                )
            model = Autoencoder(self.model_config)
            load_model_weights(model, weights)
            self._models[str(device)] = model.to(device).eval()
        return self._models[str(device)]

    @cached_property
    def _images(self) -> ImageSet:
        imageset = load_images(self.data_config, progress=False)
        split_path = self.path / "split.npy"
        if split_path.is_file() and len(load_npy(split_path)) != len(imageset.images):
            raise LatentAtlasError(
                f"the data source of {self.path} now has {len(imageset.images)} images, "
                f"the run's split {len(load_npy(split_path))}"
            )
        return imageset

    def images(self) -> ImageSet:
        """The run's training source, through the image cache (loaded once)."""
        self._refuse_imported("source images (only z-points)")
        return self._images

    def split(self) -> np.ndarray:
        """int8 per image of the source: 0 train, 1 validation (held out)."""
        path = self.path / "split.npy"
        if not path.is_file():
            raise LatentAtlasError(f"run {self.path} has no split.npy: run `latentatlas train --out {self.path}`")
        return np.asarray(load_npy(path))

    def has_zpoints(self) -> bool:
        return (self.path / "zpoints.npy").is_file() and (self.path / "zpoints.parquet").is_file()

    def _require_zpoints(self) -> None:
        if not self.has_zpoints():
            raise LatentAtlasError(f"run {self.path} has no z-points: run `latentatlas encode {self.path}`")

    def zpoints(self, subset: str | None = None) -> np.ndarray:
        """float32 z-points: a memmap of all rows, or an in-memory copy of one subset ("train", "val", "external")."""
        self._require_zpoints()
        z = load_npy(self.path / "zpoints.npy")
        if z.ndim != 2 or z.dtype != np.float32:
            raise LatentAtlasError(
                f"{self.path / 'zpoints.npy'} is not a float32 (n, N) array: run `latentatlas encode`"
            )
        if subset is None:
            return z
        if subset not in SUBSETS:
            raise LatentAtlasError(f"unknown subset {subset!r}; choose from {', '.join(SUBSETS)}")
        rows = np.flatnonzero(self.metadata()["subset"].to_numpy() == subset)
        if len(rows) == 0:
            raise LatentAtlasError(f"run {self.path} has no z-points in subset {subset!r}")
        return np.asarray(z[rows])

    def metadata(self) -> pd.DataFrame:
        """zpoints.parquet: index, image_id, path, subset, partition, then attributes or synthetic factors."""
        self._require_zpoints()
        return pd.read_parquet(self.path / "zpoints.parquet")

    def zpoints_info(self) -> dict:
        """zpoints.json: the source DataConfig, n, latent_dim and whether the source is external."""
        self._require_zpoints()
        return read_json(self.path / "zpoints.json")

    def load_decoder(self, device: torch.device | str | None = None) -> torch.nn.Module:
        """The imported TorchScript decoder in eval mode, loaded once per device."""
        device = torch.device(device) if device is not None else default_device()
        if str(device) not in self._decoders:
            self._decoders[str(device)] = load_torchscript_decoder(self.decoder_path(), device)
        return self._decoders[str(device)]

    def decode(self, z: np.ndarray, batch_size: int = 256) -> np.ndarray:
        if self.imported:
            return decode_with(self.load_decoder(), self.latent_dim, self.image_size, z, batch_size)
        return decode_latents(self.load_model(), z, batch_size)

    def encode(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        return encode_images(self.load_model(), images, batch_size)


def encode_run(run: Run, data: DataConfig | None = None, batch_size: int = 256, progress: bool = True) -> Path:
    """Encode every image of the run's source (or of `data`) into RUN/zpoints.npy + .parquet + .json.

    Rows of the run's own source get subset "train"/"val" from split.npy; another source's rows are
    all "external". Returns the path of zpoints.npy.
    """
    model = run.load_model()
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
    leading = [c for c in ("index", "image_id", "path", "subset", "partition") if c in meta.columns]
    meta = meta[leading + [c for c in meta.columns if c not in leading]]

    save_npy(run.path / "zpoints.npy", z)
    with atomic_path(run.path / "zpoints.parquet") as tmp:
        meta.to_parquet(tmp, index=False)
    write_json(
        run.path / "zpoints.json",
        {
            "source": source.to_dict(),
            "external": bool(external),
            "n": n,
            "latent_dim": int(z.shape[1]),
            "subsets": {name: int((subset == name).sum()) for name in SUBSETS},
            "skipped_files": list(imageset.skipped),
        },
    )
    return run.path / "zpoints.npy"


def reconstruct(run: Run, n: int = 32, subset: str = "val", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(originals, reconstructions), both uint8 (n, H, W, 3), for a seeded random pick of one subset's images."""
    if n < 1:
        raise LatentAtlasError(f"number of images must be >= 1, got {n}")
    if subset not in ("train", "val", "all"):
        raise LatentAtlasError(f"unknown subset {subset!r}; choose from train, val, all")
    split = run.split()
    candidates = np.arange(len(split)) if subset == "all" else np.flatnonzero(split == (1 if subset == "val" else 0))
    if len(candidates) == 0:
        raise LatentAtlasError(f"run {run.path} has no {subset} images (validation fraction 0?); use --subset train")
    picked = np.sort(np.random.default_rng(seed).choice(candidates, size=min(n, len(candidates)), replace=False))
    originals = np.asarray(run.images().images[picked])
    return originals, run.decode(run.encode(originals))


def save_reconstructions(
    run: Run, path: str | os.PathLike | None = None, n: int = 32, subset: str = "val", seed: int = 0, ncols: int = 8
) -> dict:
    """PNG grid of originals (rows 1, 3, 5, ...) with their reconstructions right below (rows 2, 4, 6, ...).

    Writes the PNG and a JSON beside it (same name, .json) with the MSE and the figure caption.
    """
    from latentatlas.plots import save_image_grid

    path = Path(path) if path is not None else run.path / "reconstructions.png"
    if path.suffix.lower() != ".png":
        raise LatentAtlasError(f"the reconstruction grid is a PNG; give a file name ending in .png, not {path.name}")
    originals, recon = reconstruct(run, n, subset, seed)
    ncols = max(1, min(ncols, len(originals)))
    rows = []
    for start in range(0, len(originals), ncols):
        block = slice(start, start + ncols)
        pad = ncols - len(originals[block])
        filler = np.full((pad, *originals.shape[1:]), 255, np.uint8)
        rows += [originals[block], filler, recon[block], filler]
    save_image_grid(np.concatenate(rows), path, ncols=ncols, scale=2 if originals.shape[1] <= 64 else 1)
    mse = float(np.mean((originals.astype(np.float32) / 255 - recon.astype(np.float32) / 255) ** 2))
    summary = {
        "run": str(run.path),
        "subset": subset,
        "n": len(originals),
        "mse": mse,
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


__all__ = [
    "Run",
    "default_device",
    "encode_images",
    "decode_latents",
    "decode_with",
    "load_torchscript_decoder",
    "encode_run",
    "reconstruct",
    "save_reconstructions",
]
