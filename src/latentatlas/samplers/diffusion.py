"""A latent diffusion prior: a residual MLP trained by flow matching on the whitened z-points, sampled by a
deterministic ODE (DiffAE's latent DDIM, RCG's representation diffusion, here as an ex-post sampler)."""

from __future__ import annotations

import copy
import math
import time
from functools import partial

import numpy as np
import torch
from torch import nn

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.samplers.base import EpochCallback, EpochReport, split_rows
from latentatlas.samplers.neural import NeuralSampler
from latentatlas.samplers.options import option, temperature_option

_FREQUENCIES = 32  # sinusoidal time embedding: 2 x 32 features
_TIME_WIDTH = 128  # the time features each block's scale and shift come from (narrow: they cost width x this)
_VALIDATION_DRAWS = 4  # fixed (time, noise) pairs per held-out row: a smooth loss for early stopping
_DENSITY_ROWS = 1024  # rows per probability-flow ODE block (activations and their gradients stay small)
LOSS_UNIT = "MSE/dim (flow matching)"  # the epoch lines: not nats, only its course means something


def _time_embedding(t: torch.Tensor) -> torch.Tensor:
    """Sinusoidal features (n, 2 x _FREQUENCIES) of times t in [0, 1] (n,), periods from 1 to 1,000 steps."""
    frequencies = torch.exp(-math.log(1000.0) * torch.arange(_FREQUENCIES, dtype=t.dtype) / _FREQUENCIES)
    angles = 1000.0 * t[:, None] * frequencies[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class _Block(nn.Module):
    """Pre-norm residual block: LayerNorm, scale and shift from the time embedding, Linear-SiLU-Linear."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.modulation = nn.Linear(_TIME_WIDTH, 2 * width)
        first, last = nn.Linear(width, width), nn.Linear(width, width)
        # each block starts as the identity, so a deep stack trains from the first step
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.inner = nn.Sequential(first, nn.SiLU(), nn.Dropout(dropout), last)

    def forward(self, h: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        scale, shift = self.modulation(time).chunk(2, dim=1)
        return h + self.inner(self.norm(h) * (1.0 + scale) + shift)


class _VelocityNetwork(nn.Module):
    """v(x, t): the velocity of the straight path from a data point (t = 0) to its noise (t = 1)."""

    def __init__(self, dim: int, width: int, blocks: int, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Linear(dim, width)
        self.time = nn.Sequential(
            nn.Linear(2 * _FREQUENCIES, _TIME_WIDTH), nn.SiLU(), nn.Linear(_TIME_WIDTH, _TIME_WIDTH), nn.SiLU()
        )
        self.blocks = nn.ModuleList(_Block(width, dropout) for _ in range(blocks))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        time = self.time(_time_embedding(t))
        h = self.embed(x)
        for block in self.blocks:
            h = block(h, time)
        return self.out(h)


def _non_negative(value: float, name: str) -> None:
    if value != 0 and not (isinstance(value, (int, float)) and 0 < value < 1e12):
        raise LatentAtlasError(f"{name} must be a finite number >= 0, got {value!r}")


class Diffusion(NeuralSampler):
    """A diffusion prior on the whitened z-points: a residual MLP (LayerNorm + SiLU blocks modulated by a
    sinusoidal time embedding) learns by flow matching (rectified flow: x_t = (1 - t) x + t e, target
    velocity e - x, t uniform in [0, 1]) to carry standard normal noise to the training rows. An
    exponential moving average of its weights (decay `ema`, warmed up over the first steps) is what the
    validation loss, early stopping, saving and sampling use.

    Sampling integrates the ODE dx/dt = v(x, t) from t = 1 (seeded noise times `temperature`) to t = 0
    with `steps` Heun steps (2 network passes each): deterministic, so a seed gives the same vectors.
    `score_samples` integrates the same ODE the other way (the probability-flow ODE) with a seeded
    Hutchinson estimate of the divergence (one Rademacher probe per point, fixed along its path): the
    log-density of the law `sample` draws from (base N(0, T² I)), an estimate, not a bound.

    The defaults (width 256, 4 blocks, EMA 0.995, 20 steps) are those measured on celeba-10k in
    docs/diffusion.md, with the FID, the copy tests and the cost of each configuration tried.

    The training history holds the flow-matching loss per dimension (mean squared velocity error), not
    nats: only its course means something; the validation column scores every held-out row at the same
    `_VALIDATION_DRAWS` (time, noise) pairs in every epoch, so its changes are the model's.

    Attributes
    ----------
    module_ : torch.nn.Module
        The EMA velocity network (saved as weights.safetensors).
    mean_, components_, scales_, history_, best_epoch_, validation_log_likelihood_
        See `NeuralSampler` (history: flow-matching loss per dimension; the likelihood is the ODE estimate).
    """

    name = "diffusion"

    # and NeuralSampler's training options (epochs, patience, batch_size, lr, ...)
    width: int = option(
        256, help="hidden width of the residual MLP (default 256)", parse=int, check=checks.positive_int
    )
    blocks: int = option(4, help="residual blocks of the MLP (default 4)", parse=int, check=checks.positive_int)
    steps: int = option(
        20,  # 20 and 50 Heun steps scored the same FID on celeba-10k (docs/diffusion.md); 20 is 2.5x faster
        help="Heun steps of the sampling ODE, 2 network passes each (default 20)",
        parse=int,
        check=partial(checks.positive_int, maximum=10_000),
    )
    ema: float = option(
        0.995,
        help="decay of the weights' moving average, the weights kept (default 0.995)",
        parse=float,
        check=checks.fraction,
    )
    dropout: float = option(
        0.0,
        help="dropout inside the residual blocks (default 0)",
        parse=float,
        check=partial(checks.fraction, open_low=False),
    )
    weight_decay: float = option(0.0, help="AdamW weight decay (default 0)", parse=float, check=_non_negative)
    keep: str = option(
        "best",
        help="best: the EMA weights of the lowest held-out loss (early stopping); last: every epoch, the last kept",
        choices=("best", "last"),
    )
    temperature: float = temperature_option()

    def _fit_reporting(self, z: np.ndarray, progress: EpochCallback | None) -> None:
        rows, dim = min(len(z), self.max_points or len(z)), z.shape[1]
        needed = _rows_needed(dim, float(self.validation_fraction))
        if rows < needed:
            raise LatentAtlasError(
                f"diffusion needs at least {needed} z-points in {dim} dimensions (N + 1 = {dim + 1} training "
                f"rows after its validation split, for the whitening), got {rows}"
            )
        super()._fit_reporting(z, progress)

    def _build(self, dim: int) -> nn.Module:
        return _VelocityNetwork(dim, int(self.width), int(self.blocks), float(self.dropout))

    def _loss(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        t = torch.rand(len(x))
        noise = torch.randn_like(x)
        return self._velocity_error(module, x, t, noise)

    @staticmethod
    def _velocity_error(module: nn.Module, x: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Per-point squared error (n,) of the predicted velocity on the straight path from x to noise."""
        x_t = (1.0 - t[:, None]) * x + t[:, None] * noise
        return ((module(x_t, t) - (noise - x)) ** 2).sum(dim=1)

    def _train(
        self, module: nn.Module, train_x: torch.Tensor, val_x: torch.Tensor, progress: EpochCallback | None
    ) -> None:
        """NeuralSampler's loop, with an EMA copy of the weights that is validated, kept and sampled, a
        fixed validation draw, and a stop at the first non-finite training loss."""
        dim, epochs, batch = train_x.shape[1], int(self.epochs), int(self.batch_size)
        generator = torch.Generator().manual_seed(int(self.random_state))
        val_t = torch.rand(_VALIDATION_DRAWS * len(val_x), generator=generator)
        val_noise = torch.randn((_VALIDATION_DRAWS * len(val_x), dim), generator=generator)
        val_rows = val_x.repeat(_VALIDATION_DRAWS, 1)
        optimizer = torch.optim.AdamW(
            module.parameters(), lr=float(self.lr), weight_decay=float(self.weight_decay), foreach=True
        )
        average = copy.deepcopy(module).eval()
        for parameter in average.parameters():
            parameter.requires_grad_(False)
        kept_parameters, current_parameters = list(average.parameters()), list(module.parameters())
        history: list[tuple[float, float]] = []
        best_loss, best_state, best_epoch, step = math.inf, copy.deepcopy(average.state_dict()), 0, 0
        for epoch in range(epochs):
            started = time.perf_counter()
            module.train()
            order = torch.randperm(len(train_x), generator=generator)
            total = 0.0
            for start in range(0, len(train_x), batch):
                x = train_x[order[start : start + batch]]
                t = torch.rand(len(x), generator=generator)
                noise = torch.randn(x.shape, generator=generator)
                loss = self._velocity_error(module, x, t, noise).mean()
                if not torch.isfinite(loss):
                    raise LatentAtlasError(
                        f"diffusion training diverged in epoch {epoch + 1} (the loss is {loss.item()}); "
                        f"nothing was kept: try a smaller lr than {self.lr}"
                    )
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
                optimizer.step()
                step += 1
                # warm-up (Karras et al.): early on the average must not hold the random initial weights
                decay = min(float(self.ema), (1.0 + step) / (10.0 + step))
                with torch.no_grad():
                    for kept, current in zip(kept_parameters, current_parameters, strict=True):
                        kept.lerp_(current, 1.0 - decay)
                total += loss.item() * len(x)
            with torch.no_grad():
                val_loss = float(self._velocity_error(average, val_rows, val_t, val_noise).mean())
            history.append((total / len(train_x) / dim, val_loss / dim))
            finite, keep_last = math.isfinite(val_loss), self.keep == "last"
            if finite and (keep_last or val_loss < best_loss - 1e-6):
                best_loss, best_state, best_epoch = val_loss, copy.deepcopy(average.state_dict()), epoch
            stalled = not keep_last and epoch - best_epoch >= int(self.patience)
            done = not finite or stalled or epoch + 1 == epochs
            if progress is not None:
                train_loss, validation = history[-1]
                seconds = time.perf_counter() - started
                progress(
                    EpochReport(
                        self.name, epoch + 1, epochs, train_loss, validation, best_epoch + 1, seconds, done, LOSS_UNIT
                    )
                )
            if done:
                break
        module.load_state_dict(best_state)
        module.eval()
        self.history_ = np.asarray(history, dtype=np.float64)
        self.best_epoch_ = int(best_epoch)

    def _times(self) -> torch.Tensor:
        return torch.linspace(1.0, 0.0, int(self.steps) + 1)

    def _decode_noise(self, noise: torch.Tensor) -> torch.Tensor:
        module, x = self.module_, noise * float(self.temperature)
        times = self._times()
        for t_now, t_next in zip(times[:-1], times[1:], strict=True):
            h = float(t_next - t_now)
            now = torch.full((len(x),), float(t_now))
            velocity = module(x, now)
            guess = x + h * velocity
            x = x + 0.5 * h * (velocity + module(guess, torch.full((len(x),), float(t_next))))
        return x

    def _point_log_density(self, x: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)  # fixed probes: the same z always scores the same
        parts = []
        for start in range(0, len(x), _DENSITY_ROWS):
            rows = x[start : start + _DENSITY_ROWS]
            probe = torch.randint(0, 2, rows.shape, generator=generator, dtype=torch.float32) * 2.0 - 1.0
            parts.append(self._ode_log_density(rows, probe))
        return torch.cat(parts)

    def _ode_log_density(self, x: torch.Tensor, probe: torch.Tensor) -> torch.Tensor:
        """log p(x) = log N(x_1; 0, T² I) + integral over t in [0, 1] of div v(x_t, t), by Heun from t = 0."""
        times = self._times().flip(0)
        divergence_integral = torch.zeros(len(x), dtype=torch.float64)
        for t_now, t_next in zip(times[:-1], times[1:], strict=True):
            h = float(t_next - t_now)
            velocity, divergence = self._velocity_divergence(x, float(t_now), probe)
            guess = x + h * velocity
            velocity_next, divergence_next = self._velocity_divergence(guess, float(t_next), probe)
            x = x + 0.5 * h * (velocity + velocity_next)
            divergence_integral += 0.5 * h * (divergence + divergence_next).double()
        spread = float(self.temperature)
        dim = x.shape[1]
        base = -0.5 * (x.double() ** 2).sum(dim=1) / spread**2 - dim * (math.log(spread) + 0.5 * math.log(2 * math.pi))
        return base + divergence_integral

    def _velocity_divergence(self, x: torch.Tensor, t: float, probe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """v(x, t) and Hutchinson's estimate probeᵀ (dv/dx) probe of its divergence."""
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            velocity = self.module_(x, torch.full((len(x),), t))
            (row_jacobian,) = torch.autograd.grad(velocity, x, grad_outputs=probe)
        return velocity.detach(), (row_jacobian * probe).sum(dim=1)


def _rows_needed(dim: int, validation_fraction: float) -> int:
    """Fewest z-points that leave N + 1 training rows after the validation split (the whitening needs them)."""
    rows = dim + 2
    while rows - len(split_rows(rows, validation_fraction, 0)[1]) < dim + 1:
        rows += 1
    return rows
