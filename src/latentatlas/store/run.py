"""The run folder (`Run`): its configuration, weights, split and z-point store, read-only.

The z-point store is one artifact folder, RUN/zpoints/, replaced as a whole by `encode`: zpoints.npy
(float32, one row per image of the source, memory-mappable), zpoints.parquet (one metadata row per
z-point) and zpoints.json (where the images came from, which weights encoded them). Readers check that
the three agree with each other and with the model before using them (`encode_run` in `store.encode`
writes it).
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any

import filelock
import numpy as np
import pandas as pd
import torch
from pyarrow import ArrowException

from latentatlas.checkpoint import (
    HISTORY_COLUMNS,
    WEIGHTS,
    Checkpoint,
    find_checkpoint,
    latest_checkpoint,
    read_history,
    weights_id,
)
from latentatlas.config import DataConfig, TrainConfig
from latentatlas.data import ImageSet, load_images
from latentatlas.decoding import decode_latents, decode_with, encode_images, load_torchscript_decoder
from latentatlas.errors import LatentAtlasError
from latentatlas.io import folder_lock, load_npy, read_json
from latentatlas.model import Autoencoder, ModelConfig, default_device, load_model_weights, parse_device
from latentatlas.run_config import RunConfig, read_run_config
from latentatlas.store.model_import import (
    DECODER_FILE,
    ENCODER_FILE,
    IMPORT_FILE,
    IMPORTED_WEIGHTS,
    SUBSETS,
    ZPOINTS_DIR,
    ImportedAutoencoder,
    ImportedModelConfig,
    import_model,
    load_torchscript,
)


# The run folder's file names, the imported model's classes and the store writer live in `store.model_import`
# (which `Run.from_model` calls: one module, no import circle).
class Run:
    """A run folder: configuration, trained model, split and z-point store. Read-only access."""

    def __init__(self, path: str | os.PathLike, device: torch.device | str | None = None, weights: str = "best"):
        """`device` and `weights` are the defaults of every encode/decode through this Run (the commands'
        `--device` and `--weights`)."""
        self.path = Path(path)
        if not self.path.is_dir():
            raise LatentAtlasError(f"run folder {self.path} does not exist")
        if not (self.path / "config.json").is_file() and not (self.path / IMPORT_FILE).is_file():
            raise LatentAtlasError(
                f"{self.path} is not a latentatlas run folder (no config.json): run `latentatlas train`"
            )
        self._models: dict[str, Autoencoder] = {}
        self._decoders: dict[str, torch.nn.Module] = {}
        self.device = parse_device(device) if device is not None else None
        if weights not in WEIGHTS:
            raise LatentAtlasError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
        self.weights = weights

    @classmethod
    def from_model(
        cls,
        path: str | os.PathLike,
        *,
        encoder: str | os.PathLike | torch.nn.Module,
        decoder: str | os.PathLike | torch.nn.Module,
        data: str | os.PathLike | DataConfig,
        image_size: int | None = None,
        val_fraction: float | None = None,
        split: str | os.PathLike | None = None,
        seed: int = 0,
        batch_size: int = 256,
        device: torch.device | str | None = None,
        progress: bool = False,
        **data_options: Any,
    ) -> Run:
        """Make the run folder `path` from your own autoencoder and return it (`latentatlas import --encoder`).

        `encoder`: float (B, 3, S, S) images in [0, 1] -> (B, N) latent vectors; `decoder`: (B, N) -> (B, 3, S, S)
        in [0, 1]. Live `nn.Module`s (saved as TorchScript: scripted, else traced on one image; never pickled)
        or TorchScript files. `data`: any source `latentatlas train` takes (a folder, a zip, a CelebA root,
        "synthetic-faces", "digits") or a `DataConfig`; `image_size` (S, default 64) and `data_options`
        (partition, limit, synthetic_count, synthetic_classes) as train's flags. Every image is encoded into the
        z-point store and a seeded `val_fraction` (default 0.1) or a `split` file holds images out.
        """
        if isinstance(data, DataConfig):
            if image_size is not None or data_options:
                raise LatentAtlasError("give the image size and data options inside the DataConfig, not beside it")
            config = data
        else:
            size = {} if image_size is None else {"image_size": image_size}
            config = DataConfig.from_dict({"source": str(data), **size, **data_options})
        out = import_model(
            path,
            encoder,
            decoder,
            config,
            val_fraction=val_fraction,
            split=split,
            seed=seed,
            batch_size=batch_size,
            device=device,
            progress=progress,
        )
        return cls(out)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @property
    def imported(self) -> bool:
        """True for a run made by `latentatlas import` from another model (its z-points, or its encoder, decoder
        and images) rather than trained here."""
        return (self.path / IMPORT_FILE).is_file() and not (self.path / "config.json").is_file()

    @cached_property
    def import_info(self) -> dict:
        """imported.json: latent_dim, image_size (None without a decoder), decoder, encoder and data (the image
        source, when imported with images), where the z-points came from."""
        info = read_json(self.path / IMPORT_FILE)
        if not isinstance(info, dict) or not isinstance(info.get("latent_dim"), int):
            raise LatentAtlasError(f"{self.path / IMPORT_FILE} is not an import record: run `latentatlas import`")
        return info

    @property
    def has_images(self) -> bool:
        """Whether the run keeps real images of its z-points (a trained run, or one imported with --data); a run
        imported from z-points alone has none to hold its decoder's images against."""
        return not self.imported or isinstance(self.import_info.get("data"), dict)

    @property
    def has_encoder(self) -> bool:
        return not self.imported or (self.path / ENCODER_FILE).is_file()

    def _refuse_imported(self, what: str) -> None:
        if self.imported and not self.has_encoder:
            raise LatentAtlasError(
                f"run {self.path} was imported from z-points (latentatlas import): it has no {what}; import it "
                f"with --encoder E.pt --decoder D.pt --data SOURCE to have images"
            )

    @cached_property
    def config(self) -> RunConfig:
        """config.json, validated by type and range (one clear line naming the file if it is not valid)."""
        if self.imported:
            raise LatentAtlasError(f"run {self.path} was imported (latentatlas import): it has no training config")
        return read_run_config(self.path)

    @property
    def model_config(self) -> ModelConfig:
        """The model's config; for a run imported with an encoder, its image size and latent dimension."""
        if self.imported:
            self._refuse_imported("autoencoder")
            return ImportedModelConfig(image_size=self.image_size, latent_dim=self.latent_dim)
        return self.config.model

    @property
    def train_config(self) -> TrainConfig:
        return self.config.train

    @property
    def data_config(self) -> DataConfig:
        """The run's image source (for an imported run: the one given to `import --data`)."""
        if self.imported:
            self._refuse_imported("source images (only z-points)")
            return DataConfig.from_dict(self.import_info["data"])
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

    def _checkpoint(self, which: str = "last") -> Checkpoint | None:
        """The committed checkpoint (None for a run folder built by hand with a top-level model only)."""
        if latest_checkpoint(self.path) is None and (self.path / "model.safetensors").is_file():
            if which not in WEIGHTS:
                raise LatentAtlasError(f"weights must be one of {', '.join(WEIGHTS)}, got {which!r}")
            return None
        return find_checkpoint(self.path, which)

    def weights_path(self, which: str = "best") -> Path:
        """The weights file of the `best` (lowest validation loss) or `last` epoch."""
        if self.imported:
            raise LatentAtlasError(f"run {self.path} was imported (latentatlas import): it has no trained weights")
        checkpoint = self._checkpoint(which)
        return checkpoint.model_path if checkpoint is not None else self.path / "model.safetensors"

    def weights_id(self, which: str = "best") -> str:
        """A short content id of those weights, for artifacts to record what they were computed from (an
        imported run: of its encoder and decoder files, whichever `which`)."""
        if self.imported and isinstance(self.import_info.get("model_id"), str):
            return self.import_info["model_id"]
        checkpoint = self._checkpoint(which)
        if checkpoint is not None and isinstance(checkpoint.state.get("weights_id"), str):
            return checkpoint.state["weights_id"]
        return weights_id(self.weights_path(which))

    def train_state(self) -> dict:
        """The last checkpoint's train_state.json: epochs done, last and best losses and epoch, split sizes."""
        checkpoint = self._checkpoint("last")
        return checkpoint.state if checkpoint is not None else read_json(self.path / "train_state.json")

    def history(self) -> pd.DataFrame:
        """history.csv of the last checkpoint: one row per epoch (HISTORY_COLUMNS)."""
        checkpoint = self._checkpoint("last")
        path = checkpoint.history_path if checkpoint is not None else self.path / "history.csv"
        if not path.is_file():
            raise LatentAtlasError(f"run {self.path} has no history.csv: run `latentatlas train --out {self.path}`")
        return pd.DataFrame(read_history(path), columns=list(HISTORY_COLUMNS))

    def load_model(self, device: torch.device | str | None = None, weights: str = "best") -> Autoencoder:
        """The trained autoencoder (`best` or `last` weights) in eval mode, loaded once per device; for a run
        imported with an encoder, its TorchScript encoder and decoder (`weights` does not apply)."""
        self._refuse_imported("autoencoder (decoding uses its decoder.pt; encoding images is not possible)")
        device = parse_device(device) if device is not None else default_device()
        key = f"{device}/{weights}"
        if key not in self._models and self.imported:
            encoder = load_torchscript(self.path / ENCODER_FILE, device, "encoder")
            config = ImportedModelConfig(image_size=self.image_size, latent_dim=self.latent_dim)
            self._models[key] = ImportedAutoencoder(encoder, self.load_decoder(device), config).eval()
        if key not in self._models:
            path = self.weights_path(weights)
            model = Autoencoder(self.model_config)
            load_model_weights(model, path)
            self._models[key] = model.to(device).eval()
        return self._models[key]

    @cached_property
    def _images(self) -> ImageSet:
        imageset = load_images(self.data_config, progress=False)
        if self.imported and len(imageset.images) != self.import_info.get("n"):
            raise LatentAtlasError(
                f"the data source of {self.path} now has {len(imageset.images)} images, the imported run "
                f"{self.import_info.get('n')}: import it again"
            )
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

    def lock(self) -> filelock.BaseFileLock:
        """The run's advisory lock: commands that write into the run hold it, so writers never mix."""
        if not self.path.is_dir():
            raise LatentAtlasError(f"run folder {self.path} does not exist")
        return folder_lock(self.path)

    def zpoints_file(self, name: str) -> Path:
        """A file of the z-point store: "zpoints.npy", "zpoints.parquet" or "zpoints.json"."""
        return self.path / ZPOINTS_DIR / name

    def has_zpoints(self) -> bool:
        return all(self.zpoints_file(f"zpoints.{ext}").is_file() for ext in ("npy", "parquet", "json"))

    def _require_zpoints(self) -> None:
        if self.has_zpoints():
            return
        if (self.path / "zpoints.npy").is_file():
            raise LatentAtlasError(
                f"run {self.path} holds z-points in the old layout: run `latentatlas encode {self.path}` again"
            )
        raise LatentAtlasError(f"run {self.path} has no z-points: run `latentatlas encode {self.path}`")

    @cached_property
    def _checked_store(self) -> np.ndarray:
        """The memmapped store, after checking it against its metadata, its manifest and the model."""
        self._require_zpoints()
        path = self.zpoints_file("zpoints.npy")
        z = load_npy(path)
        if z.ndim != 2 or z.dtype != np.float32:
            raise LatentAtlasError(f"{path} is not a float32 (n, N) array: run `latentatlas encode {self.path}`")
        info = self.zpoints_info()
        rows = len(self.metadata())
        if not (len(z) == rows == info.get("n")):
            raise LatentAtlasError(
                f"the z-point store of {self.path} is inconsistent ({len(z)} rows in zpoints.npy, {rows} in "
                f"zpoints.parquet, {info.get('n')} in zpoints.json): run `latentatlas encode {self.path}`"
            )
        if (self.path / "config.json").is_file() and z.shape[1] != self.latent_dim:
            raise LatentAtlasError(
                f"{path} has {z.shape[1]} components but the model's latent dimension is {self.latent_dim}"
            )
        stale = self.stale_zpoints()
        if stale:
            raise LatentAtlasError(f"{stale}: run `latentatlas encode {self.path}` again")
        return z

    def stale_zpoints(self) -> str | None:
        """Why the z-points no longer match the run's weights (e.g. after `train --resume`), or None."""
        info = self.zpoints_info()
        which, encoded_with = info.get("weights"), info.get("weights_id")
        has_checkpoints = (self.path / "checkpoints").is_dir()
        if which not in ("best", "last") or not isinstance(encoded_with, str) or not has_checkpoints:
            return None  # imported z-points, or a run without checkpoints: nothing to compare with
        current = self.weights_id(which)
        if current == encoded_with:
            return None
        return f"the z-points of {self.path} were encoded with {which} weights {encoded_with}, now {current}"

    def provenance(self) -> dict[str, str | None]:
        """What an artifact is computed from, recorded in its JSON: the weights that encoded the z-points
        (`weights`: best or last, `weights_id`) and the z-point store's content id (`store_id`; None for a
        store written before it was recorded), so the report and later commands can tell stale results."""
        store_id = None
        if self.has_zpoints():
            info = self.zpoints_info()
            which, weights_id, store_id = info.get("weights"), info.get("weights_id"), info.get("store_id")
            store_id = store_id if isinstance(store_id, str) else None
            if isinstance(which, str) and isinstance(weights_id, str):
                return {"weights": which, "weights_id": weights_id, "store_id": store_id}
        if (self.path / "checkpoints").is_dir() or (self.path / "model.safetensors").is_file():
            return {"weights": "best", "weights_id": self.weights_id("best"), "store_id": store_id}
        return {"weights": None, "weights_id": None, "store_id": store_id}

    def zpoints(self, subset: str | None = None) -> np.ndarray:
        """float32 z-points: a memmap of all rows, or an in-memory copy of one subset ("train", "val", "external")."""
        z = self._checked_store
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
        path = self.zpoints_file("zpoints.parquet")
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError, ArrowException) as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise LatentAtlasError(f"corrupt z-point metadata {path}: {first_line}") from None

    def zpoints_info(self) -> dict:
        """zpoints.json: the source DataConfig, n, latent_dim, the weights that encoded them."""
        self._require_zpoints()
        return read_json(self.zpoints_file("zpoints.json"))

    def load_decoder(self, device: torch.device | str | None = None) -> torch.nn.Module:
        """The imported TorchScript decoder in eval mode, loaded once per device."""
        device = parse_device(device) if device is not None else default_device()
        if str(device) not in self._decoders:
            self._decoders[str(device)] = load_torchscript_decoder(self.decoder_path(), device)
        return self._decoders[str(device)]

    def decode(
        self, z: np.ndarray, batch_size: int = 256, device: torch.device | str | None = None, weights: str | None = None
    ) -> np.ndarray:
        device = device if device is not None else self.device
        weights = weights if weights is not None else self.weights
        if self.imported:
            return decode_with(self.load_decoder(device), self.latent_dim, self.image_size, z, batch_size)
        return decode_latents(self.load_model(device, weights), z, batch_size)

    def encode(
        self,
        images: np.ndarray,
        batch_size: int = 256,
        device: torch.device | str | None = None,
        weights: str | None = None,
    ) -> np.ndarray:
        device = device if device is not None else self.device
        return encode_images(
            self.load_model(device, weights if weights is not None else self.weights), images, batch_size
        )


__all__ = [
    "DECODER_FILE",
    "ENCODER_FILE",
    "IMPORTED_WEIGHTS",
    "IMPORT_FILE",
    "SUBSETS",
    "ZPOINTS_DIR",
    "ImportedAutoencoder",
    "load_torchscript",
    "ImportedModelConfig",
    "Run",
]
