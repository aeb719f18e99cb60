"""The autoencoder's shapes, parameter count and configuration checks."""

from __future__ import annotations

import pytest
import torch

from latentatlas.errors import LatentAtlasError
from latentatlas.model import Autoencoder, ModelConfig


@pytest.mark.parametrize(
    "image_size, channels, latent_dim, batch_norm, activation",
    [
        (32, (16, 32), 16, True, "leaky_relu"),
        (32, (8, 16, 32), 4, False, "relu"),
        (64, (8, 16, 32, 64), 32, True, "gelu"),
        (64, (8, 16), 8, False, "silu"),
        (16, (4, 8, 16, 32), 1, True, "leaky_relu"),
    ],
)
def test_shapes_and_pixel_range(image_size, channels, latent_dim, batch_norm, activation):
    config = ModelConfig(image_size, channels, latent_dim, batch_norm, activation)
    torch.manual_seed(0)
    model = Autoencoder(config).eval()
    x = torch.rand(3, 3, image_size, image_size)
    with torch.no_grad():
        z = model.encode(x)
        y = model.decode(z)
        assert model(x).shape == x.shape
    assert z.shape == (3, latent_dim)
    assert y.shape == x.shape
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0  # sigmoid output
    assert config.bottom_size == image_size // 2 ** len(channels)
    has_norm = any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert has_norm == batch_norm


def test_parameter_count_known_answer():
    # conv 3->4 (k4): 3*4*16+4 = 196; linear 4*16*16 -> 2: 2*1024+2 = 2050;
    # linear 2 -> 1024: 2*1024+1024 = 3072; transposed conv 4->3: 4*3*16+3 = 195.
    model = Autoencoder(ModelConfig(image_size=32, channels=(4,), latent_dim=2, batch_norm=False))
    assert model.num_parameters() == 196 + 2050 + 3072 + 195


def test_default_config_matches_the_seed_architecture():
    config = ModelConfig()
    assert (config.image_size, config.channels, config.latent_dim) == (64, (32, 64, 128, 256), 256)
    assert config.bottom_size == 4
    assert config.to_dict()["channels"] == [32, 64, 128, 256]
    assert ModelConfig(**config.to_dict()) == config


def test_encoding_is_per_image_in_eval_mode():
    torch.manual_seed(1)
    model = Autoencoder(ModelConfig(image_size=32, channels=(8, 16), latent_dim=8)).eval()
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        together = model.encode(x)
        alone = torch.cat([model.encode(x[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"image_size": 40}, "multiple of 16"),
        ({"image_size": 0}, "multiple of 16"),
        ({"latent_dim": 0}, "latent dimension"),
        ({"latent_dim": -3}, "latent dimension"),
        ({"channels": ()}, "channels"),
        ({"channels": (16, 0)}, "channels"),
        ({"activation": "tanh"}, "activation"),
        ({"image_size": 16, "channels": (4, 8, 16, 32, 64)}, "divisible"),
    ],
)
def test_invalid_configs_raise_one_clear_error(options, message):
    with pytest.raises(LatentAtlasError, match=message):
        ModelConfig(**options)
