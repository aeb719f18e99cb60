"""The convolutional autoencoder: one file, one config dataclass, plain PyTorch.

Encoder: `len(channels)` stages, each halving the image (stride-2 conv, optional batch norm,
activation), then a linear map of the flattened feature map to the latent vector z.
Decoder: the mirror image (linear, then stride-2 transposed convs), with a sigmoid output in [0, 1].
The latent layer is a plain linear layer: this is a standard AE, not a VAE.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from latentatlas.errors import LatentAtlasError

ACTIVATIONS = {"leaky_relu": lambda: nn.LeakyReLU(0.2), "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


@dataclass
class ModelConfig:
    image_size: int = 64
    channels: tuple[int, ...] = field(default=(32, 64, 128, 256))  # one entry per down-sampling stage
    latent_dim: int = 256
    batch_norm: bool = True
    activation: str = "leaky_relu"

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        if self.image_size <= 0 or self.image_size % 16:
            raise LatentAtlasError(f"image size must be a positive multiple of 16, got {self.image_size}")
        if self.latent_dim <= 0:
            raise LatentAtlasError(f"latent dimension must be > 0, got {self.latent_dim}")
        if not self.channels or min(self.channels) <= 0:
            raise LatentAtlasError(f"channels must be positive widths, got {self.channels}")
        if self.image_size % 2 ** len(self.channels):
            raise LatentAtlasError(
                f"image size {self.image_size} is not divisible by 2**{len(self.channels)} (one halving per stage)"
            )
        if self.activation not in ACTIVATIONS:
            raise LatentAtlasError(f"unknown activation {self.activation!r}; choose from {sorted(ACTIVATIONS)}")

    @property
    def bottom_size(self) -> int:
        """Side length of the smallest feature map, between the last conv stage and the latent layer."""
        return self.image_size // 2 ** len(self.channels)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d


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
