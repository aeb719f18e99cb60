"""The convolutional autoencoder: one file, one config dataclass, plain PyTorch.

Encoder: `len(channels)` stages, each halving the image (stride-2 conv, optional batch norm,
activation), then a linear map of the flattened feature map to the latent vector z.
Decoder: the mirror image (linear, then stride-2 transposed convs), with a sigmoid output in [0, 1].
The latent layer is a plain linear layer: this is a standard AE, not a VAE.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from latentatlas import checks
from latentatlas.config import Config
from latentatlas.errors import LatentAtlasError
from latentatlas.io import atomic_path

ACTIVATIONS = {"leaky_relu": lambda: nn.LeakyReLU(0.2), "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


@dataclass
class ModelConfig(Config):
    section: ClassVar[str] = "model"

    image_size: int = 64
    channels: tuple[int, ...] = field(default=(32, 64, 128, 256))  # one entry per down-sampling stage
    latent_dim: int = 256
    batch_norm: bool = True
    activation: str = "leaky_relu"

    def check(self) -> None:
        checks.image_size(self.image_size)
        checks.positive_int(self.latent_dim, "latent dimension")
        if not self.channels or min(self.channels) <= 0:
            raise LatentAtlasError(f"channels must be positive widths, got {self.channels}")
        if self.image_size % 2 ** len(self.channels):
            raise LatentAtlasError(
                f"image size {self.image_size} is not divisible by 2**{len(self.channels)} (one halving per stage)"
            )
        if self.activation not in ACTIVATIONS:
            raise LatentAtlasError(f"unknown activation {self.activation!r}; choose from {sorted(ACTIVATIONS)}")
        # Counted before anything is allocated: a typo like --latent-dim 1000000000 is one line, not an OOM.
        checks.allocation((estimate_parameters(self),), 4, "the model")

    @property
    def bottom_size(self) -> int:
        """Side length of the smallest feature map, between the last conv stage and the latent layer."""
        return self.image_size // 2 ** len(self.channels)


def _stage(conv: nn.Module, out_channels: int, config: ModelConfig) -> nn.Sequential:
    norm = nn.BatchNorm2d(out_channels) if config.batch_norm else nn.Identity()
    return nn.Sequential(conv, norm, ACTIVATIONS[config.activation]())


class Encoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        stages, in_channels = [], 3
        for width in config.channels:
            conv = nn.Conv2d(in_channels, width, kernel_size=4, stride=2, padding=1, bias=not config.batch_norm)
            stages.append(_stage(conv, width, config))
            in_channels = width
        self.convs = nn.Sequential(*stages)
        self.to_latent = nn.Linear(in_channels * config.bottom_size**2, config.latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_latent(self.convs(x).flatten(1))


class Decoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        widths = list(reversed(config.channels))
        self.bottom_shape = (widths[0], config.bottom_size, config.bottom_size)
        self.from_latent = nn.Linear(config.latent_dim, widths[0] * config.bottom_size**2)
        stages = []
        for in_channels, out_channels in zip(widths, widths[1:]):
            conv = nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=not config.batch_norm)
            stages.append(_stage(conv, out_channels, config))
        # The last stage returns to full resolution and to RGB; the sigmoid keeps pixels in [0, 1].
        stages.append(nn.ConvTranspose2d(widths[-1], 3, 4, stride=2, padding=1))
        self.convs = nn.Sequential(*stages)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.from_latent(z).view(-1, *self.bottom_shape)
        return torch.sigmoid(self.convs(h))


class Autoencoder(nn.Module):
    """Images (B, 3, H, W) in [0, 1] -> z (B, latent_dim) -> reconstructions (B, 3, H, W) in [0, 1]."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def parse_device(device: torch.device | str) -> torch.device:
    """ "cpu", "cuda" or "cuda:N" as a torch.device, refused with one line when it is unknown or absent."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise LatentAtlasError(f"device must be cpu, cuda or cuda:N, got {device!r}") from None
    if parsed.type not in ("cpu", "cuda"):
        raise LatentAtlasError(f"device must be cpu, cuda or cuda:N, got {device!r}")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise LatentAtlasError(f"device {device!r} asked for, but torch sees no CUDA GPU here")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise LatentAtlasError(f"device {device!r}: torch sees only {torch.cuda.device_count()} GPU(s)")
    return parsed


def estimate_parameters(config: ModelConfig) -> int:
    """The number of parameters `Autoencoder(config)` will have, computed without allocating it."""
    widths = list(config.channels)
    bottom = widths[-1] * config.bottom_size**2
    bias = 0 if config.batch_norm else 1
    norm = 2 if config.batch_norm else 0
    encoder, in_channels = 0, 3
    for width in widths:
        encoder += in_channels * width * 16 + width * (bias + norm)
        in_channels = width
    encoder += bottom * config.latent_dim + config.latent_dim
    decoder = config.latent_dim * bottom + bottom
    reversed_widths = widths[::-1]
    for in_channels, out_channels in zip(reversed_widths, reversed_widths[1:]):
        decoder += in_channels * out_channels * 16 + out_channels * (bias + norm)
    decoder += reversed_widths[-1] * 3 * 16 + 3
    return encoder + decoder


def estimate_activations(config: ModelConfig) -> int:
    """Floats one image keeps for the backward pass (input, every stage's convolution, normalisation and
    activation outputs, encoder and decoder, the output): an upper estimate, computed without allocating."""
    stages = 0
    for k, width in enumerate(config.channels, start=1):
        stages += width * (config.image_size // 2**k) ** 2
    pixels = 3 * config.image_size**2
    return 3 * pixels + 2 * 3 * stages  # the input in 3 forms, each stage in 3 forms in both halves


def to_model_input(batch: torch.Tensor | np.ndarray, device: torch.device | str) -> torch.Tensor:
    """uint8 images (B, H, W, 3) -> float (B, 3, H, W) in [0, 1] on `device`; the permuted view is
    channels_last in memory, which the convolutions prefer."""
    if isinstance(batch, np.ndarray):
        batch = torch.from_numpy(np.array(batch))  # a copy: memmaps are read-only
    return batch.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255)


def save_model(model: Autoencoder, path: str | os.PathLike) -> None:
    """The weights as safetensors (no pickle), with the model config in the metadata."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", "model_config": json.dumps(model.config.to_dict())})


def load_model_weights(model: Autoencoder, path: str | os.PathLike) -> None:
    """Load safetensors weights into `model`; a damaged, mismatched or non-finite file is a LatentAtlasError."""
    path = Path(path)
    try:
        state = load_file(str(path))
    except (OSError, ValueError, SafetensorError) as exc:
        raise LatentAtlasError(f"corrupt model checkpoint {path}: {str(exc).splitlines()[0]}") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise LatentAtlasError(f"model checkpoint {path} does not fit config.json: {first_line}") from None
    for name, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise LatentAtlasError(f"model checkpoint {path} holds NaN or infinite weights ({name})")
