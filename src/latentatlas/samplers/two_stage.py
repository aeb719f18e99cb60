"""A two-stage VAE on the z-points (Dai & Wipf 2019): a small VAE fitted ex post on the autoencoder's z."""

from __future__ import annotations

import math

import torch
from torch import nn

from latentatlas import checks
from latentatlas.samplers.neural import NeuralSampler
from latentatlas.samplers.options import option, optional

_IMPORTANCE_ROWS = 256  # rows per importance-sampling block: draws x rows x N floats stay small


class _TwoStageNetwork(nn.Module):
    """Encoder z -> q(u|z) = N(mu, diag sigma^2), decoder u -> mean of p(z|u) = N(mean, gamma I)."""

    def __init__(self, dim: int, latent: int, hidden: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent)
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, dim)
        )
        # Dai & Wipf: a learned decoder variance gamma lets the second stage match the first's manifold
        self.log_gamma = nn.Parameter(torch.zeros(()))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_var = self.encoder(x).chunk(2, dim=1)
        return mu, log_var.clamp(-12.0, 8.0)

    def log_likelihood(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """log p(x|u) for u (..., latent) and x broadcastable to (..., dim)."""
        log_gamma = self.log_gamma.clamp(min=-9.0)
        squared = ((x - self.decoder(u)) ** 2).sum(dim=-1)
        return -0.5 * (squared / log_gamma.exp() + x.shape[-1] * (math.log(2 * math.pi) + log_gamma))


class TwoStage(NeuralSampler):
    """A two-stage VAE (Dai & Wipf 2019) on the z-points: a small VAE whose latent u is trained to be
    standard normal, fitted ex post on the autoencoder's z (the first stage). Sampling draws u from
    N(0, I), decodes it and adds the decoder's learned noise sqrt(gamma) * e: a draw from the model's
    own density. In the paper gamma -> 0 on a low-dimensional manifold and this is the decoder's mean;
    on an already nearly Gaussian bulk the VAE may collapse (decoder ~ constant, gamma ~ 1), and
    without the noise every sample would sit at the centre.

    Its density is defined by the VAE; `log_likelihood` estimates it by importance sampling with
    `importance_samples` draws from q(u|z) (the IWAE bound, which approaches log p(z) from below as
    the number of draws grows; training maximises the ordinary ELBO).

    Attributes
    ----------
    module_ : torch.nn.Module
        Encoder, decoder and log decoder variance (saved as weights.safetensors).
    mean_, components_, scales_, history_, best_epoch_, validation_log_likelihood_
        See `NeuralSampler` (the history holds the negative ELBO per dimension).
    """

    name = "two-stage"

    # and NeuralSampler's training options (epochs, patience, batch_size, lr, ...)
    latent: int | None = option(None, check=optional(checks.positive_int))
    hidden: int = option(256, check=checks.positive_int)
    importance_samples: int = option(64, check=checks.positive_int)

    def _latent(self, dim: int) -> int:
        return dim if self.latent is None else int(self.latent)  # the paper keeps the first stage's size

    def _build(self, dim: int) -> nn.Module:
        return _TwoStageNetwork(dim, self._latent(dim), int(self.hidden))

    def _noise_dim(self) -> int:
        return self._latent(self.n_features_) + self.n_features_  # u, then the decoder's own noise

    def _loss(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        assert isinstance(module, _TwoStageNetwork)
        mu, log_var = module.encode(x)
        u = mu + torch.randn_like(mu) * (0.5 * log_var).exp()
        kl = 0.5 * (mu**2 + log_var.exp() - 1.0 - log_var).sum(dim=1)
        return kl - module.log_likelihood(x, u)

    def _point_log_density(self, x: torch.Tensor) -> torch.Tensor:
        module = self.module_
        assert isinstance(module, _TwoStageNetwork)
        draws = int(self.importance_samples)
        generator = torch.Generator().manual_seed(0)  # a fixed estimate: the same z always scores the same
        parts = []
        for start in range(0, len(x), _IMPORTANCE_ROWS):
            rows = x[start : start + _IMPORTANCE_ROWS]
            mu, log_var = module.encode(rows)
            std = (0.5 * log_var).exp()
            noise = torch.randn((draws, *mu.shape), generator=generator)
            u = mu + noise * std
            log_q = (-0.5 * noise**2 - 0.5 * math.log(2 * math.pi) - std.log()).sum(dim=-1)
            log_prior = (-0.5 * u**2 - 0.5 * math.log(2 * math.pi)).sum(dim=-1)
            weights = module.log_likelihood(rows, u) + log_prior - log_q
            parts.append(torch.logsumexp(weights, dim=0) - math.log(draws))
        return torch.cat(parts)

    def _decode_noise(self, noise: torch.Tensor) -> torch.Tensor:
        module = self.module_
        assert isinstance(module, _TwoStageNetwork)
        latent = self._latent(self.n_features_)
        spread = (0.5 * module.log_gamma.clamp(min=-9.0)).exp()
        return module.decoder(noise[:, :latent]) + spread * noise[:, latent:]
