"""Batched encoding and decoding: images -> z-points with the autoencoder (`encode_images`), z-points ->
images with any decoder module (`decode_with`, `decode_latents`), and loading a TorchScript decoder file.

The autoencoder's own decoder and an imported TorchScript one (`latentatlas import --decoder`) go through
the same `decode_with`, so their images are produced, clamped and rounded identically.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.model import Autoencoder, to_model_input
from latentatlas.progress import Progress


def model_device(model: torch.nn.Module, device: torch.device | str | None) -> torch.device:
    current = next(model.parameters(), torch.empty(0)).device
    if device is None:
        return current
    device = torch.device(device)
    if current != device:
        model.to(device)
    return device


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
    batch_size = checks.positive_int(batch_size, "batch size")
    device = model_device(decoder, device)
    out = np.empty((len(z), image_size, image_size, 3), np.uint8)
    was_training = decoder.training
    decoder.eval()
    # A TorchScript module's graph optimiser may fuse ops; plain execution keeps it bit-identical to eager.
    bar = Progress(len(z), "decode", "img", enabled=progress, redraw_every=0.1, lines=False)
    with torch.inference_mode(), torch.jit.optimized_execution(False), bar:  # pyright: ignore[reportPrivateImportUsage]
        for start in range(0, len(z), batch_size):
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
            bar.update(len(x))
    decoder.train(was_training)
    return out


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
    batch_size = checks.positive_int(batch_size, "batch size")
    device = model_device(model, device)
    out = np.empty((len(images), model.config.latent_dim), np.float32)
    was_training = model.training
    model.eval()
    bar = Progress(len(images), "encode", "img", enabled=progress, redraw_every=0.1, lines=False)
    with torch.inference_mode(), bar:
        for start in range(0, len(images), batch_size):
            x = to_model_input(images[start : start + batch_size], device)
            out[start : start + len(x)] = model.encode(x).float().cpu().numpy()
            bar.update(len(x))
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


def load_torchscript(
    path: str | os.PathLike, device: torch.device | str = "cpu", what: str = "decoder"
) -> torch.nn.Module:
    """A TorchScript module file (a decoder, or an imported encoder) in eval mode. `torch.jit.load` rebuilds the
    module from its serialized graph and runs no Python from the file (unlike a pickled model), so a user's
    file cannot execute code on load."""
    path = Path(path)
    if not path.is_file():
        raise LatentAtlasError(f"{what} file {path} does not exist")
    try:
        with warnings.catch_warnings():  # torch 2.x deprecates TorchScript for torch.export; jit.load still works
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location=torch.device(device)).eval()
    except (RuntimeError, ValueError, OSError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LatentAtlasError(f"{path} is not a TorchScript {what} (torch.jit.save): {first_line}") from None


def load_torchscript_decoder(path: str | os.PathLike, device: torch.device | str = "cpu") -> torch.nn.Module:
    """A TorchScript decoder file (`load_torchscript` with the decoder's messages)."""
    return load_torchscript(path, device, "decoder")


__all__ = [
    "decode_latents",
    "decode_with",
    "encode_images",
    "load_torchscript",
    "load_torchscript_decoder",
    "model_device",
]
