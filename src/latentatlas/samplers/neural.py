"""Shared machinery of the neural density samplers (flow, two-stage VAE): a seeded validation split,
standardisation, a CPU-friendly training loop with early stopping, and weights saved as safetensors."""

from __future__ import annotations

import copy
import math
import time
from abc import abstractmethod
from functools import partial
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.samplers.base import EpochCallback, EpochReport, Sampler, split_rows
from latentatlas.samplers.gaussian import principal_frame
from latentatlas.samplers.options import option, optional
from latentatlas.stats import subsample

WEIGHTS_FILE = "weights.safetensors"


class NeuralSampler(Sampler):
    """A density model trained by minimising a per-point loss (negative log-likelihood or its bound).

    The z-points (at most `max_points`, a seeded subset) are split into training and validation rows
    (`validation_fraction`) and whitened with the training rows' principal axes (centred, rotated onto
    the axes, each divided by its spread): the network models a density with unit covariance, and the
    strongly correlated bulk of an autoencoder no longer hides its structure in mixed axes. Training
    runs at most `epochs` epochs of Adam and stops once the validation loss has not improved for
    `patience` epochs, keeping the best epoch's weights. Everything is seeded by `random_state`: the
    same data and seed give the same weights (on the same machine and thread count). Weights are saved
    as safetensors, never pickled.

    Attributes
    ----------
    mean_ : ndarray (N,)
    components_ : ndarray (N, N)
        The whitening's principal axes (rows), from the training rows.
    scales_ : ndarray (N,)
        The spread along each axis.
    history_ : ndarray (epochs run, 2)
        Training and validation loss per epoch, in nats per dimension.
    best_epoch_ : int
        The epoch whose weights were kept (0-based).
    validation_log_likelihood_ : float
        Held-out log-likelihood of the kept model, nats per dimension (a lower bound for bounds).
    """

    neural = True
    _learned_arrays = ("mean_", "components_", "scales_", "history_")
    _learned_scalars = ("best_epoch_", "validation_log_likelihood_")

    epochs: int = option(100, help="at most this many epochs (default 100)", parse=int, check=checks.positive_int)
    patience: int = option(10, check=checks.positive_int)
    batch_size: int = option(128, check=checks.positive_int)
    lr: float = option(2e-3, check=checks.positive_number)
    validation_fraction: float = option(0.1, check=partial(checks.fraction, high=0.5, open_high=False))
    max_points: int | None = option(None, check=optional(checks.positive_int))
    random_state: int = option(0, check=checks.seed)

    def _min_rows(self) -> int:
        return 10

    @abstractmethod
    def _build(self, dim: int) -> torch.nn.Module:
        """The untrained network for N = dim."""

    @abstractmethod
    def _loss(self, module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Per-point loss (n,) in nats (negative log-likelihood or negative bound) of standardised x."""

    def _fit(self, z: np.ndarray) -> None:
        self._fit_reporting(z, None)

    def _fit_reporting(self, z: np.ndarray, progress: EpochCallback | None) -> None:
        points = subsample(z, self.max_points, self.random_state)
        train_rows, val_rows = split_rows(len(points), float(self.validation_fraction), int(self.random_state))
        train, val = points[train_rows], points[val_rows]
        self.mean_, self.components_, self.scales_ = principal_frame(train)
        if not self.scales_[-1] > 1e-9 * max(self.scales_[0], 1e-300):
            raise LatentAtlasError(
                f"{self.name} needs z-points that fill all {len(self.scales_)} dimensions; their covariance is singular"
            )
        torch.manual_seed(int(self.random_state))
        module = self._build(points.shape[1])
        self._train(module, self._standardised(train), self._standardised(val), progress)
        self.module_ = module
        self.validation_log_likelihood_ = float(self._log_density(val).mean() / points.shape[1])

    def _standardised(self, z: np.ndarray) -> torch.Tensor:
        whitened = ((np.asarray(z, dtype=np.float64) - self.mean_) @ self.components_.T) / self.scales_
        return torch.as_tensor(whitened, dtype=torch.float32)

    def _train(
        self, module: torch.nn.Module, train_x: torch.Tensor, val_x: torch.Tensor, progress: EpochCallback | None
    ) -> None:
        dim, epochs = train_x.shape[1], int(self.epochs)
        optimizer = torch.optim.Adam(module.parameters(), lr=float(self.lr))
        generator = torch.Generator().manual_seed(int(self.random_state))
        batch = int(self.batch_size)
        history, best_loss, best_state, best_epoch = [], math.inf, copy.deepcopy(module.state_dict()), 0
        for epoch in range(epochs):
            started = time.perf_counter()
            module.train()
            order = torch.randperm(len(train_x), generator=generator)
            total = 0.0
            for start in range(0, len(train_x), batch):
                x = train_x[order[start : start + batch]]
                loss = self._loss(module, x).mean()
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(module.parameters(), 10.0)
                optimizer.step()
                total += loss.item() * len(x)
            module.eval()
            with torch.no_grad():
                val_loss = float(self._loss(module, val_x).mean())
            history.append((total / len(train_x) / dim, val_loss / dim))
            finite = math.isfinite(val_loss)
            if finite and val_loss < best_loss - 1e-6:
                best_loss, best_state, best_epoch = val_loss, copy.deepcopy(module.state_dict()), epoch
            done = not finite or epoch - best_epoch >= int(self.patience) or epoch + 1 == epochs
            if progress is not None:
                train_loss, validation = history[-1]
                seconds = time.perf_counter() - started
                report = EpochReport(
                    self.name, epoch + 1, epochs, train_loss, validation, best_epoch + 1, seconds, done
                )
                progress(report)
            if done:
                break
        module.load_state_dict(best_state)
        module.eval()
        self.history_ = np.asarray(history, dtype=np.float64)
        self.best_epoch_ = int(best_epoch)

    def _log_density(self, z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            log_density = self._point_log_density(self._standardised(z)).double().numpy()
        # z = mean + (x * scales) @ components: the density of z carries the Jacobian 1 / prod(scales)
        return log_density - float(np.log(self.scales_).sum())

    def _point_log_density(self, x: torch.Tensor) -> torch.Tensor:
        """Log density (n,) of standardised x; the default is minus the training loss."""
        return -self._loss(self.module_, x)

    @abstractmethod
    def _decode_noise(self, noise: torch.Tensor) -> torch.Tensor:
        """Standardised samples from standard normal noise (n, latent)."""

    def _noise_dim(self) -> int:
        return self.n_features_

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        # the noise comes from numpy's seeded generator, so the draw does not depend on torch's global state
        noise = torch.as_tensor(rng.standard_normal((n, self._noise_dim())), dtype=torch.float32)
        with torch.no_grad():
            x = self._decode_noise(noise).double().numpy()
        if not np.isfinite(x).all():
            raise LatentAtlasError(f"{self.name} produced non-finite vectors: its fit diverged; try a smaller lr")
        return self.mean_ + (x * self.scales_) @ self.components_

    def _save_extra(self, folder: Path) -> dict[str, str]:
        state = {key: value.detach().contiguous().clone() for key, value in self.module_.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE))
        return {"weights": WEIGHTS_FILE}

    def _load_extra(self, folder: Path, files: dict[str, str]) -> None:
        if files.get("weights") != WEIGHTS_FILE or not (folder / WEIGHTS_FILE).is_file():
            raise LatentAtlasError(f"{folder} lacks the {self.name} weights ({WEIGHTS_FILE})")
        module = self._build(int(self.n_features_))
        try:
            module.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        except (RuntimeError, OSError, ValueError, SafetensorError) as exc:
            raise LatentAtlasError(f"corrupt {self.name} weights in {folder}: {exc}") from None
        module.eval()
        self.module_ = module
