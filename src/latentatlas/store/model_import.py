"""Another autoencoder as a run: its encoder and decoder (TorchScript files or live `nn.Module`s) and an image
source become a run folder whose z-point store, images and split every command reads as a trained run's.

Also home of the run folder's file names (`ZPOINTS_DIR`, `IMPORT_FILE`, ...) and of the z-point store writer
(`write_store`), which `store.run`, `store.encode` and `latentatlas import` share.

Safety: a TorchScript file is loaded with `torch.jit.load`, which rebuilds the module from its serialized
graph and runs no Python from the file (unlike unpickling a model). A live module is converted to TorchScript
(`torch.jit.script`, else `torch.jit.trace` on one of the run's images) and saved that way: nothing is pickled.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch

from latentatlas import checks
from latentatlas.config import DataConfig
from latentatlas.data import BOOKKEEPING_COLUMNS, ImageSet, load_images
from latentatlas.decoding import encode_images, load_torchscript
from latentatlas.errors import LatentAtlasError
from latentatlas.io import array_id, atomic_folder, check_replaceable, load_npy, save_npy, write_json
from latentatlas.model import Autoencoder, ModelConfig, default_device, parse_device, to_model_input
from latentatlas.train import make_split

SUBSETS = ("train", "val", "external")
ZPOINTS_DIR = "zpoints"
# An imported run (`latentatlas import`) has this file instead of config.json, optionally a TorchScript decoder
# and, when it was imported with its images, a TorchScript encoder.
IMPORT_FILE = "imported.json"
DECODER_FILE = "decoder.pt"
ENCODER_FILE = "encoder.pt"
IMPORTED_WEIGHTS = "imported"  # what zpoints.json names as the weights of an imported encoder


@dataclass
class ImportedModelConfig(ModelConfig):
    """The shape of an imported autoencoder: its image size and latent dimension are all latentatlas knows
    (no conv stages of its own: `channels` is empty)."""

    channels: tuple[int, ...] = ()

    def check(self) -> None:
        checks.image_size(self.image_size)
        checks.positive_int(self.latent_dim, "latent dimension")


class ImportedAutoencoder(Autoencoder):
    """An imported TorchScript encoder and decoder behind the autoencoder's interface (`encode`, `decode`,
    `decoder`, `config`), so encoding, decoding and reconstructing go through the same code as a trained run."""

    def __init__(self, encoder: torch.nn.Module, decoder: torch.nn.Module, config: ImportedModelConfig):
        torch.nn.Module.__init__(self)  # not Autoencoder.__init__: the layers are the user's, already built
        self.config = config
        self.encoder = encoder
        self.decoder = decoder


IMPORT_KIND = "imported-run"  # the artifact kind of an imported run folder
PIXEL_TOLERANCE = 1e-3  # decoder outputs this far outside [0, 1] are rounding, not another value range


def read_split(path: str | os.PathLike, n: int) -> np.ndarray:
    """S.npy: one 0 (train) or 1 (held out) per z-point."""
    split = np.asarray(load_npy(path, mmap=False))
    if split.shape != (n,) or not np.issubdtype(split.dtype, np.integer) or not np.isin(split, (0, 1)).all():
        raise LatentAtlasError(f"split {Path(path).name} must hold one 0 (train) or 1 (held out) per z-point ({n})")
    return split.astype(np.int8)


def choose_split(
    n: int, val_fraction: float | None, split: str | os.PathLike | None, seed: int
) -> tuple[np.ndarray, object]:
    """The held-out rows from a split file or a seeded `val_fraction` (default 0.1), and how they were chosen."""
    if split is not None and val_fraction is not None:
        raise LatentAtlasError("give either --split or --val-fraction, not both")
    if split is not None:
        return read_split(split, n), str(Path(split).resolve())
    fraction = checks.fraction(0.1 if val_fraction is None else val_fraction, "validation fraction", open_low=False)
    return make_split(n, fraction, seed), {"val_fraction": fraction, "seed": seed}


def write_store(
    folder: Path,
    model: Autoencoder,
    imageset: ImageSet,
    subset: np.ndarray,
    source: dict,
    external: bool,
    weights: str,
    weights_id: str,
    batch_size: int = 256,
    progress: bool = True,
) -> np.ndarray:
    """Encode `imageset` with `model` into the (new, empty) store `folder`: zpoints.npy, zpoints.parquet (the
    bookkeeping columns first, `subset` per row) and zpoints.json. Returns the z-points."""
    n = len(imageset.images)
    z = encode_images(model, imageset.images, batch_size=batch_size, progress=progress)
    meta = imageset.meta.reset_index(drop=True).copy()
    meta.insert(0, "index", np.arange(n, dtype=np.int64))
    meta["subset"] = subset
    leading = [c for c in BOOKKEEPING_COLUMNS if c in meta.columns]
    meta = meta[leading + [c for c in meta.columns if c not in leading]]
    save_npy(folder / "zpoints.npy", z)
    meta.to_parquet(folder / "zpoints.parquet", index=False)
    write_json(
        folder / "zpoints.json",
        {
            "source": source,
            "external": bool(external),
            "n": n,
            "latent_dim": int(z.shape[1]),
            "subsets": {name: int((subset == name).sum()) for name in SUBSETS},
            "skipped_files": list(imageset.skipped),
            "weights": weights,
            "weights_id": weights_id,
            "store_id": array_id(z),  # recorded by every artifact: tells which store it saw
        },
    )
    return z


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def probe_model(encoder: torch.nn.Module, decoder: torch.nn.Module, image: np.ndarray, names: tuple[str, str]) -> int:
    """Run one uint8 image (1, S, S, 3) through the encoder and its z-point through the decoder; one clear line
    when the encoder does not return a finite (1, N) vector or the decoder not (1, 3, S, S) pixels in [0, 1].
    Returns N, the latent dimension."""
    size = image.shape[1]
    x = to_model_input(image, "cpu")
    shown = f"one ({', '.join(map(str, x.shape))}) image in [0, 1]"
    with torch.inference_mode():
        try:
            z = encoder(x)
        except Exception as exc:  # a user's module can fail in any way; report it as the bad input it is
            raise LatentAtlasError(
                f"the encoder {names[0]} failed on {shown} (is --image-size {size} its input size?): {_first_line(exc)}"
            ) from None
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[0] != 1:
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise LatentAtlasError(
                f"the encoder {names[0]} returned {got} for {shown}; expected one latent vector per image (1, N)"
            )
        if not torch.isfinite(z).all():
            raise LatentAtlasError(f"the encoder {names[0]} returned NaN or infinite values for {shown}")
        try:
            y = decoder(z.float())
        except Exception as exc:
            raise LatentAtlasError(
                f"the decoder {names[1]} failed on the encoder's (1, {z.shape[1]}) z-point: {_first_line(exc)}"
            ) from None
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != (1, 3, size, size):
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise LatentAtlasError(
            f"the decoder {names[1]} returned {got} for the encoder's (1, {z.shape[1]}) z-point; the images are "
            f"(1, 3, {size}, {size})"
        )
    if not torch.isfinite(y).all():
        raise LatentAtlasError(f"the decoder {names[1]} returned NaN or infinite pixels")
    low, high = float(y.min()), float(y.max())
    if low < -PIXEL_TOLERANCE or high > 1 + PIXEL_TOLERANCE:
        raise LatentAtlasError(
            f"the decoder {names[1]} returned pixels in [{low:.3g}, {high:.3g}]; the images are in [0, 1] "
            "(end it with a sigmoid, or map a tanh output with (x + 1) / 2)"
        )
    return int(z.shape[1])


def to_torchscript(module: torch.nn.Module, example: torch.Tensor, what: str) -> torch.jit.ScriptModule:
    """A live module as TorchScript: scripted (keeps its control flow) where TorchScript can compile it, else
    traced on `example` (in eval mode: batch norm and dropout as at inference)."""
    if isinstance(module, torch.jit.ScriptModule):
        return module
    was_training = module.training
    module.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecation and tracer notes about a user's module
            try:
                return torch.jit.script(module)
            except Exception:  # noqa: BLE001  (TorchScript cannot compile much Python; tracing is the fallback)
                with torch.no_grad():
                    return cast(torch.jit.ScriptModule, torch.jit.trace(module, example))
    except Exception as exc:
        raise LatentAtlasError(
            f"the {what} cannot be converted to TorchScript (torch.jit.script and torch.jit.trace both failed): "
            f"{_first_line(exc)}"
        ) from None
    finally:
        module.train(was_training)


def _file_id(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _describe(module: str | os.PathLike | torch.nn.Module) -> str:
    if isinstance(module, torch.nn.Module):
        return f"nn.Module {type(module).__name__}"
    return str(Path(module).resolve())


def import_model(
    out: str | os.PathLike,
    encoder: str | os.PathLike | torch.nn.Module,
    decoder: str | os.PathLike | torch.nn.Module,
    data: DataConfig,
    *,
    val_fraction: float | None = None,
    split: str | os.PathLike | None = None,
    seed: int = 0,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> Path:
    """Create the run folder `out` from an autoencoder and an image source; returns its path.

    `encoder` maps float (B, 3, S, S) images in [0, 1] to (B, N) latent vectors and `decoder` maps those back
    to (B, 3, S, S) pixels in [0, 1], S = `data.image_size`: TorchScript files, or live modules (saved as
    TorchScript). Both are checked on the source's first image before anything is encoded. Every image of
    `data` is encoded into the z-point store; the held-out rows come from `split` (a file of 0/1 per image) or
    a seeded `val_fraction` (default 0.1). The folder appears whole or not at all.
    """
    out = Path(out)
    check_replaceable(out, IMPORT_KIND)  # before the images are read and encoded, not after
    seed = checks.seed(seed)
    batch_size = checks.positive_int(batch_size, "batch size")
    device = parse_device(device) if device is not None else default_device()
    names = tuple(
        f"({type(m).__name__})" if isinstance(m, torch.nn.Module) else Path(m).name for m in (encoder, decoder)
    )
    live = [
        load_torchscript(m, "cpu", what) if not isinstance(m, torch.nn.Module) else m
        for m, what in ((encoder, "encoder"), (decoder, "decoder"))
    ]
    imageset = load_images(data, progress=progress)
    n = len(imageset.images)
    if n < 2:
        raise LatentAtlasError(f"{data.source} holds {n} image(s): a run needs at least 2")
    split_array, split_info = choose_split(n, val_fraction, split, seed)
    first = np.asarray(imageset.images[:1])
    example = to_model_input(first, "cpu")
    modes = [m.training for m in live]
    try:  # probed and converted as at inference (batch norm's running statistics, no dropout)
        for module in live:
            module.eval()
        latent_dim = probe_model(live[0], live[1], first, (names[0], names[1]))
        with torch.no_grad():
            example_z = live[0](example).float()
        scripted = [to_torchscript(live[0], example, "encoder"), to_torchscript(live[1], example_z, "decoder")]
    finally:
        for module, mode in zip(live, modes):
            module.train(mode)

    subset = np.where(split_array == 1, "val", "train").astype(object)
    with atomic_folder(out, kind=IMPORT_KIND) as tmp:
        for module, source, file in zip(scripted, (encoder, decoder), (ENCODER_FILE, DECODER_FILE)):
            if isinstance(source, torch.nn.Module):
                torch.jit.save(module, str(tmp / file))
            else:
                shutil.copyfile(source, tmp / file)
        model_id = _file_id(tmp / ENCODER_FILE, tmp / DECODER_FILE)
        config = ImportedModelConfig(image_size=data.image_size, latent_dim=latent_dim)
        # Encoded with the saved files, as every later command loads them: the z-points are theirs exactly.
        model = ImportedAutoencoder(
            load_torchscript(tmp / ENCODER_FILE, device, "encoder"),
            load_torchscript(tmp / DECODER_FILE, device, "decoder"),
            config,
        ).eval()
        save_npy(tmp / "split.npy", split_array)
        with atomic_folder(tmp / ZPOINTS_DIR, kind="zpoints") as store:
            write_store(
                store,
                model,
                imageset,
                subset,
                data.to_dict(),
                False,
                IMPORTED_WEIGHTS,
                model_id,
                batch_size=batch_size,
                progress=progress,
            )
        write_json(
            tmp / IMPORT_FILE,
            {
                "zpoints": None,
                "metadata": None,
                "encoder": ENCODER_FILE,
                "encoder_source": _describe(encoder),
                "decoder": DECODER_FILE,
                "decoder_source": _describe(decoder),
                "data": data.to_dict(),
                "latent_dim": latent_dim,
                "image_size": data.image_size,
                "n": n,
                "split": split_info,
                "model_id": model_id,
            },
        )
    return out


__all__ = [
    "DECODER_FILE",
    "ENCODER_FILE",
    "IMPORTED_WEIGHTS",
    "IMPORT_FILE",
    "IMPORT_KIND",
    "SUBSETS",
    "ZPOINTS_DIR",
    "ImportedAutoencoder",
    "ImportedModelConfig",
    "choose_split",
    "import_model",
    "load_torchscript",
    "probe_model",
    "read_split",
    "to_torchscript",
    "write_store",
]
