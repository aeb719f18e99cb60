"""The `Sampler` base class: parameter handling, validation, density scores, saving without pickle."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from typing_extensions import dataclass_transform  # in `typing` from Python 3.11; torch depends on it

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.io import atomic_folder, save_npy, write_json
from latentatlas.samplers.options import option, options_of

FORMAT = "latentatlas-sampler"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class EpochReport:
    """One training epoch of a sampler that trains a network, as `fit(z, progress=...)` reports it.

    `epoch` counts from 1; `epochs` is the most the fit may run (early stopping may end it sooner);
    the losses are in `loss_unit` (nats per dimension for the likelihood-trained flow and two-stage; the
    diffusion sampler's flow-matching loss is a mean squared error per dimension); `best_epoch` (from 1)
    holds the weights kept so far; `seconds` is the epoch's wall time; `done` is True on the fit's last epoch.
    """

    sampler: str
    epoch: int
    epochs: int
    train_loss: float
    val_loss: float
    best_epoch: int
    seconds: float
    done: bool
    loss_unit: str = "nats/dim"


EpochCallback = Callable[[EpochReport], None]


def split_rows(n: int, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows): a seeded random split with at least one row on each side."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(max(1, round(validation_fraction * n)), n - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


@dataclass_transform(kw_only_default=True, eq_default=False, field_specifiers=(option,))
class Sampler(ABC):
    """Base class of every latent-vector sampler (scikit-learn conventions).

    A subclass declares its parameters as typed fields, `name: type = option(default, ...)` (see
    `samplers.options`); every subclass becomes a dataclass whose generated keyword-only `__init__` only
    stores them. `fit(z)` validates them and the z-points, learns the attributes ending in `_` and returns
    `self`; `sample(n, seed)` returns a float32 array (n, N). Subclasses implement `_fit` and `_sample`,
    and `_log_density` when they define a density. `save(folder)` writes sampler.json plus one .npy per
    learned array (never pickle).

    The capabilities below are class attributes that analysis, evaluation and the CLI read instead of
    lists of sampler names; a subclass sets the ones that hold for it.

    Attributes
    ----------
    n_features_ : int
        Dimension N of the z-points the sampler was fitted on.
    n_samples_fit_ : int
        Number of z-points it was fitted on.
    """

    name: ClassVar[str] = ""
    # Has a log-density (`score_samples`, `log_likelihood`), not only a way to draw vectors. Not set by
    # hand: it is True exactly when the class implements `_log_density`.
    defines_density: ClassVar[bool] = False
    # Fits one full N x N covariance from the rows, so it needs more than N + 1 of them (conditions).
    full_covariance: ClassVar[bool] = False
    # Draws every component on its own from a marginal fitted to that component (the seed's per-component
    # construction); the evaluation's "independent-components-miss" verdict tests these samplers.
    independent_components: ClassVar[bool] = False
    # Trains a network: seconds to minutes, where the others take moments.
    neural: ClassVar[bool] = False
    _learned_arrays: ClassVar[tuple[str, ...]] = ()  # saved as <attr>.npy
    _learned_scalars: ClassVar[tuple[str, ...]] = ()  # saved in sampler.json

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclass(cls, kw_only=True, eq=False, repr=False, match_args=False)
        cls.defines_density = cls._log_density is not Sampler._log_density

    @classmethod
    def param_names(cls) -> list[str]:
        """The parameters (the dataclass fields): the class's own first, then the inherited ones."""
        return list(options_of(cls))

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters, as scikit-learn's `get_params`."""
        return {p: getattr(self, p) for p in self.param_names()}

    def validate_params(self) -> None:
        """Raise LatentAtlasError for an invalid parameter: each option's choices and check, in parameter
        order; subclasses extend it with checks that involve several parameters."""
        for name, spec in options_of(type(self)).items():
            spec.validate(getattr(self, name), name)

    def fit(self, z: np.ndarray, *, progress: EpochCallback | None = None) -> Sampler:
        """Learn the sampler from z-points (n, N), possibly a memory map; returns self.

        `progress` is called with an `EpochReport` after every epoch by the samplers that train a network
        (`neural`: flow, two-stage); the others fit in one go and never call it. It only observes: the
        fitted sampler and its samples are the same with or without it.
        """
        self.validate_params()
        z = checks.points(z, min_rows=self._min_rows())
        if not np.issubdtype(z.dtype, np.floating):
            z = z.astype(np.float64)
        self._fit_reporting(z, progress)
        self.n_features_ = int(z.shape[1])
        self.n_samples_fit_ = int(z.shape[0])
        return self

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """`n` latent vectors (n, N) as float32; the same seed gives the same vectors."""
        self._check_fitted("call fit(z) before sample()")
        n = checks.positive_int(n, "number of samples n")
        checks.allocation((n, self.n_features_), 8, f"{n} samples of dimension {self.n_features_}")
        rng = np.random.default_rng(checks.seed(seed))
        return np.ascontiguousarray(self._sample(n, rng), dtype=np.float32)

    def score_samples(self, z: np.ndarray) -> np.ndarray:
        """Log-density (nats) of each row of `z` under the fitted density, as scikit-learn's `score_samples`."""
        self._check_fitted("call fit(z) before score_samples()")
        z = np.asarray(checks.points(z, min_rows=1, dim=self.n_features_), dtype=np.float64)
        return np.asarray(self._log_density(z), dtype=np.float64).reshape(len(z))

    def score(self, z: np.ndarray) -> float:
        """Mean log-likelihood per point (nats) of `z` under the fitted density, as scikit-learn's `score`."""
        return float(np.mean(self.score_samples(z)))

    def log_likelihood(self, z: np.ndarray) -> float:
        """Mean log-likelihood of `z` in nats per point and dimension (comparable across latent sizes)."""
        return self.score(z) / self.n_features_

    def save(self, folder: str | os.PathLike) -> Path:
        """Write sampler.json + one .npy per learned array into `folder` (replaced atomically)."""
        self._check_fitted("nothing to save")
        folder = Path(folder)
        scalars = {attr: getattr(self, attr) for attr in ("n_features_", "n_samples_fit_", *self._learned_scalars)}
        arrays = {attr: f"{attr.rstrip('_')}.npy" for attr in self._learned_arrays}
        with atomic_folder(folder, kind="sampler") as tmp:
            for attr, file in arrays.items():
                save_npy(tmp / file, np.asarray(getattr(self, attr)))
            extra = self._save_extra(tmp)
            manifest = {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "sampler": self.name,
                "params": self.get_params(),
                "fitted": scalars,
                "arrays": arrays,
                "extra": extra,
            }
            write_json(tmp / "sampler.json", manifest)
        return folder

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    def _check_fitted(self, action: str) -> None:
        if not hasattr(self, "n_features_"):
            raise LatentAtlasError(f"sampler {self.name!r} is not fitted yet: {action}")

    def _min_rows(self) -> int:
        return 2

    def _fit_reporting(self, z: np.ndarray, progress: EpochCallback | None) -> None:
        """`_fit`, for the samplers with epochs to report (they override this); the others ignore `progress`."""
        self._fit(z)

    def _log_density(self, z: np.ndarray) -> np.ndarray:
        """Log density (n,) of float64 points; samplers without a density keep this refusal."""
        raise LatentAtlasError(f"sampler {self.name!r} defines no density (it only draws vectors)")

    def _save_extra(self, folder: Path) -> dict[str, str]:
        """Write state that is not a plain learned array (e.g. network weights); returns {key: file}."""
        return {}

    def _load_extra(self, folder: Path, files: dict[str, str]) -> None:
        """Restore what `_save_extra` wrote."""
        return None

    @abstractmethod
    def _fit(self, z: np.ndarray) -> None:
        """Learn the `_` attributes from validated floating-point z-points (possibly a memmap)."""

    @abstractmethod
    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw (n, N) vectors (any float dtype) with `rng`."""
