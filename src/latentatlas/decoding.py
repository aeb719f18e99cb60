"""Batched decoding with any decoder module, and loading a TorchScript decoder file.

The autoencoder's own decoder and an imported TorchScript one (`latentatlas import --decoder`) go through
the same `decode_with`, so their images are produced, clamped and rounded identically.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from latentatlas.errors import LatentAtlasError


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
    if batch_size < 1:
        raise LatentAtlasError(f"batch size must be >= 1, got {batch_size}")
    device = model_device(decoder, device)
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


__all__ = ["model_device", "decode_with", "load_torchscript_decoder"]
