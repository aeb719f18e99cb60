"""Latent-vector samplers: statistical constructions of z-points for the decoder.

Every sampler follows the scikit-learn convention: `__init__` only stores its parameters,
`fit(z)` learns from the encoded training z-points and returns `self`, learned attributes end
in `_`, and `sample(n, seed=...)` returns a float32 array (n, N). A fitted sampler is saved as
`sampler.json` plus one `.npy` per learned array (never pickle) and reloaded with `load_sampler`;
a reloaded sampler draws exactly the same vectors for the same seed.

The constructions, from the seed's naive one to the ex-post density estimators of its peers:

| name | construction |
| --- | --- |
| uniform-box | independent components uniform in a common [-b, b] (parts II, IV, V: misses the region) |
| component-box | independent uniform components, each in its own value interval (parts V, VII) |
| diagonal-gaussian | independent per-component Gaussians (part II's per-component fits) |
| gaussian | one multivariate normal with the full covariance (part VIII) |
| robust-gaussian | the same with a Minimum Covariance Determinant core (the later posts) |
| ellipsoid | PCA-whitened sampling inside a confidence ellipsoid, mapped back (part X) |
| gmm | a full-covariance Gaussian mixture fitted ex post (Ghosh et al. 2020, pythae) |
| resample | real z-points with a small Gaussian jitter (a KDE-style baseline) |
"""

from __future__ import annotations

import inspect
import math
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from scipy import stats
from scipy.special import logsumexp

from latentatlas.errors import LatentAtlasError
from latentatlas.io import atomic_folder, load_npy, read_json, save_npy, write_json

FORMAT = "latentatlas-sampler"
FORMAT_VERSION = 1
_CHUNK_BYTES = 64 * 2**20  # float64 working set per chunk: bounded memory on memmapped z-point stores


# ----------------------------------------------------------------------------- helpers


def _row_chunks(z: np.ndarray) -> Iterator[np.ndarray]:
    rows = max(1, _CHUNK_BYTES // (8 * max(1, z.shape[1])))
    for start in range(0, len(z), rows):
        yield np.asarray(z[start : start + rows], dtype=np.float64)


def check_points(z: Any, min_rows: int = 2) -> np.ndarray:
    """Validate a z-point array (n, N) without copying a memmap; NaN/inf are checked chunkwise."""
    if not isinstance(z, np.ndarray):
        try:
            z = np.asarray(z, dtype=np.float64)
        except (TypeError, ValueError):
            raise LatentAtlasError("z-points must be a numeric array (n, N)") from None
    if z.ndim != 2 or z.shape[1] == 0:
        raise LatentAtlasError(f"z-points must be a 2-D array (n, N), got shape {z.shape}")
    if not (np.issubdtype(z.dtype, np.floating) or np.issubdtype(z.dtype, np.integer)):
        raise LatentAtlasError(f"z-points must be numeric, got dtype {z.dtype}")
    if len(z) < min_rows:
        raise LatentAtlasError(f"need at least {min_rows} z-points to fit, got {len(z)}")
    for chunk in _row_chunks(z):
        if not np.isfinite(chunk).all():
            raise LatentAtlasError("z-points contain NaN or infinite values")
    return z


def mean_and_covariance(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample covariance (ddof=1) in float64, accumulated chunkwise over a (memmapped) array."""
    # Shifting by the first row keeps the one-pass sums well conditioned when the bulk sits far from 0.
    shift = np.asarray(z[0], dtype=np.float64)
    total = np.zeros(z.shape[1])
    outer = np.zeros((z.shape[1], z.shape[1]))
    for chunk in _row_chunks(z):
        chunk = chunk - shift
        total += chunk.sum(axis=0)
        outer += chunk.T @ chunk
    n = len(z)
    shifted_mean = total / n
    cov = (outer - n * np.outer(shifted_mean, shifted_mean)) / (n - 1)
    return shifted_mean + shift, (cov + cov.T) / 2


def column_percentiles(z: np.ndarray, q: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Per-component percentiles, computed in column blocks so a memmap is never loaded whole as float64."""
    cols = max(1, _CHUNK_BYTES // (8 * len(z)))
    lower, upper = np.empty(z.shape[1]), np.empty(z.shape[1])
    for start in range(0, z.shape[1], cols):
        block = np.asarray(z[:, start : start + cols], dtype=np.float64)
        lower[start : start + cols], upper[start : start + cols] = np.percentile(block, q, axis=0)
    return lower, upper


def _subsample(z: np.ndarray, max_points: int | None, seed: int) -> np.ndarray:
    """A seeded subset of at most `max_points` rows (sorted, so memmap reads stay sequential), as float64."""
    if max_points is None or len(z) <= max_points:
        return np.asarray(z, dtype=np.float64)
    rows = np.sort(np.random.default_rng(seed).choice(len(z), max_points, replace=False))
    return np.asarray(z[rows], dtype=np.float64)


def _gaussian_factor(cov: np.ndarray) -> np.ndarray:
    """A matrix A with A A^T = cov, valid for semi-definite (rank-deficient) covariances too."""
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    return eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))


def _gaussian_log_density(z: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    return stats.multivariate_normal(mean=mean, cov=cov, allow_singular=True).logpdf(z).reshape(-1)


def _positive_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise LatentAtlasError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise LatentAtlasError(f"{name} must be > 0, got {value}")
    return float(value)


def _positive_int(value: Any, name: str, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise LatentAtlasError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise LatentAtlasError(f"seed must be a non-negative integer, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------- base class


class Sampler(ABC):
    """Base class: parameter handling, validation, saving. Subclasses implement `_fit` and `_sample`."""

    name: ClassVar[str] = ""
    _learned_arrays: ClassVar[tuple[str, ...]] = ()  # saved as <attr>.npy
    _learned_scalars: ClassVar[tuple[str, ...]] = ()  # saved in sampler.json

    def get_params(self) -> dict[str, Any]:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {p: getattr(self, p) for p in names}

    def validate_params(self) -> None:
        """Raise LatentAtlasError for an invalid parameter; subclasses extend it."""

    def fit(self, z: np.ndarray) -> Sampler:
        self.validate_params()
        z = check_points(z, min_rows=self._min_rows())
        self._fit(z)
        self.n_features_ = int(z.shape[1])
        self.n_samples_fit_ = int(z.shape[0])
        return self

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        if not hasattr(self, "n_features_"):
            raise LatentAtlasError(f"sampler {self.name!r} is not fitted yet: call fit(z) before sample()")
        n = _positive_int(n, "number of samples n")
        rng = np.random.default_rng(_seed(seed))
        return np.ascontiguousarray(self._sample(n, rng), dtype=np.float32)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write sampler.json + one .npy per learned array into `folder` (replaced atomically)."""
        if not hasattr(self, "n_features_"):
            raise LatentAtlasError(f"sampler {self.name!r} is not fitted yet: nothing to save")
        folder = Path(folder)
        scalars = {attr: getattr(self, attr) for attr in ("n_features_", "n_samples_fit_", *self._learned_scalars)}
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "sampler": self.name,
            "params": self.get_params(),
            "fitted": scalars,
            "arrays": {attr: f"{attr.rstrip('_')}.npy" for attr in self._learned_arrays},
        }
        with atomic_folder(folder) as tmp:
            for attr, file in manifest["arrays"].items():
                save_npy(tmp / file, np.asarray(getattr(self, attr)))
            write_json(tmp / "sampler.json", manifest)
        return folder

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    def _min_rows(self) -> int:
        return 2

    @abstractmethod
    def _fit(self, z: np.ndarray) -> None:
        """Learn the `_` attributes from validated z-points (possibly a memmap)."""

    @abstractmethod
    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw (n, N) vectors (any float dtype) with `rng`."""


# ----------------------------------------------------------------------------- samplers


class UniformBox(Sampler):
    """The seed's naive construction: independent components, each uniform in a common [-b, b].

    `b="matched"` picks the b whose mean radius b*sqrt(N/3) equals the z-points' mean radius,
    so the sampled shell has the data's size but (as the series shows) not its position or shape.
    """

    name = "uniform-box"
    _learned_scalars = ("b_",)

    def __init__(self, b: float | str = "matched") -> None:
        self.b = b

    def validate_params(self) -> None:
        if self.b != "matched":
            _positive_number(self.b, "b")

    def _fit(self, z: np.ndarray) -> None:
        if self.b == "matched":
            radius_sum = sum(float(np.linalg.norm(chunk, axis=1).sum()) for chunk in _row_chunks(z))
            self.b_ = radius_sum / len(z) / math.sqrt(z.shape[1] / 3)
            if self.b_ <= 0:
                raise LatentAtlasError("cannot match b: all z-points sit at the origin")
        else:
            self.b_ = float(self.b)

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(-self.b_, self.b_, size=(n, self.n_features_))


class ComponentBox(Sampler):
    """Independent uniform components, each in its own interval (the seed's per-component value ranges).

    Intervals come from the per-component `percentiles` (default 1 and 99), or, when `k_sigma` is
    given, from mean ± k_sigma·std.
    """

    name = "component-box"
    _learned_arrays = ("lower_", "upper_")

    def __init__(self, percentiles: tuple[float, float] = (1.0, 99.0), k_sigma: float | None = None) -> None:
        self.percentiles = percentiles
        self.k_sigma = k_sigma

    def validate_params(self) -> None:
        if self.k_sigma is not None:
            _positive_number(self.k_sigma, "k_sigma")
            return
        try:
            low, high = (float(p) for p in self.percentiles)
        except (TypeError, ValueError):
            raise LatentAtlasError(f"percentiles must be two numbers like (1, 99), got {self.percentiles!r}") from None
        if not 0 <= low < high <= 100:
            raise LatentAtlasError(f"percentiles must satisfy 0 <= low < high <= 100, got {self.percentiles!r}")

    def _fit(self, z: np.ndarray) -> None:
        if self.k_sigma is not None:
            mean, cov = mean_and_covariance(z)
            half_width = float(self.k_sigma) * np.sqrt(np.diag(cov))
            self.lower_, self.upper_ = mean - half_width, mean + half_width
        else:
            low, high = (float(p) for p in self.percentiles)
            self.lower_, self.upper_ = column_percentiles(z, (low, high))

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.lower_ + rng.random((n, self.n_features_)) * (self.upper_ - self.lower_)


class DiagonalGaussian(Sampler):
    """Independent per-component Gaussians with the data's means and widths (part II's fits), no correlations."""

    name = "diagonal-gaussian"
    _learned_arrays = ("mean_", "std_")

    def __init__(self) -> None:
        pass

    def _fit(self, z: np.ndarray) -> None:
        self.mean_, cov = mean_and_covariance(z)
        self.std_ = np.sqrt(np.diag(cov))

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.mean_ + rng.standard_normal((n, self.n_features_)) * self.std_

    def score(self, z: np.ndarray) -> float:
        """Mean log-likelihood of `z` under the fitted density."""
        z = np.asarray(check_points(z, min_rows=1), dtype=np.float64)
        std = np.maximum(self.std_, 1e-12)
        return float(stats.norm.logpdf(z, self.mean_, std).sum(axis=1).mean())


class Gaussian(Sampler):
    """One multivariate normal with the data's mean and full covariance (part VIII's hypothesis)."""

    name = "gaussian"
    _learned_arrays = ("mean_", "cov_")

    def __init__(self) -> None:
        pass

    def _fit(self, z: np.ndarray) -> None:
        self.mean_, self.cov_ = mean_and_covariance(z)

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.mean_ + rng.standard_normal((n, self.n_features_)) @ _gaussian_factor(self.cov_).T

    def score(self, z: np.ndarray) -> float:
        """Mean log-likelihood of `z` under the fitted density."""
        z = np.asarray(check_points(z, min_rows=1), dtype=np.float64)
        return float(_gaussian_log_density(z, self.mean_, self.cov_).mean())


class RobustGaussian(Gaussian):
    """A multivariate normal whose location and covariance come from the robust core (Minimum
    Covariance Determinant), so asymmetric outer layers do not inflate it (the series' later posts).

    MCD runs on a seeded subsample of at most `max_points` z-points to stay fast.
    """

    name = "robust-gaussian"
    _learned_arrays = ("mean_", "cov_", "support_")
    _learned_scalars = ("support_fraction_",)

    def __init__(self, support_fraction: float | None = None, max_points: int = 5000, random_state: int = 0) -> None:
        self.support_fraction = support_fraction
        self.max_points = max_points
        self.random_state = random_state

    def validate_params(self) -> None:
        if self.support_fraction is not None:
            fraction = _positive_number(self.support_fraction, "support_fraction")
            if fraction > 1:
                raise LatentAtlasError(f"support_fraction must be in (0, 1], got {fraction}")
        _positive_int(self.max_points, "max_points")
        _seed(self.random_state)

    def _fit(self, z: np.ndarray) -> None:
        from sklearn.covariance import MinCovDet
        from threadpoolctl import threadpool_limits  # a scikit-learn dependency

        points = _subsample(z, self.max_points, self.random_state)
        if len(points) <= points.shape[1]:
            raise LatentAtlasError(
                f"robust-gaussian needs more z-points than dimensions ({points.shape[1]}), got {len(points)}"
            )
        # MCD runs thousands of small (N x N) linear-algebra calls: multi-threaded BLAS only adds contention
        # there (measured 5x-10x slower at N = 256 on a busy 2-core machine).
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            # In high N, MCD's C-steps hit round-off ("Determinant has increased"); the fit stays usable.
            warnings.filterwarnings("ignore", message="Determinant has increased", category=RuntimeWarning)
            mcd = MinCovDet(support_fraction=self.support_fraction, random_state=self.random_state).fit(points)
        self.mean_, self.cov_ = mcd.location_, (mcd.covariance_ + mcd.covariance_.T) / 2
        self.support_ = mcd.support_.astype(bool)
        self.support_fraction_ = float(self.support_.mean())


class Ellipsoid(Sampler):
    """Part X's affine construction: centre the z-points, rotate onto the PCA axes, scale by
    sqrt(eigenvalues); sample there inside the confidence ball, then transform back.

    Inside the ball of squared radius chi2.ppf(confidence, N) the whitened points follow a
    *truncated standard Gaussian* (exactly: a uniform direction and a squared radius drawn from
    the chi-square law truncated at that bound). A uniform ball would, in high N, put nearly
    every point on its surface, i.e. beyond the data's typical radius.
    """

    name = "ellipsoid"
    _learned_arrays = ("mean_", "components_", "explained_variance_")
    _learned_scalars = ("radius_",)

    def __init__(self, confidence: float = 0.9) -> None:
        self.confidence = confidence

    def validate_params(self) -> None:
        if isinstance(self.confidence, bool) or not isinstance(self.confidence, (int, float, np.number)):
            raise LatentAtlasError(f"confidence must be a number in (0, 1), got {self.confidence!r}")
        if not 0 < self.confidence < 1:
            raise LatentAtlasError(f"confidence must be in (0, 1), got {self.confidence}")

    def _fit(self, z: np.ndarray) -> None:
        self.mean_, cov = mean_and_covariance(z)
        eigenvalues, eigenvectors = np.linalg.eigh(cov)
        order = np.argsort(eigenvalues)[::-1]
        self.components_ = eigenvectors[:, order].T  # rows: principal axes, largest variance first
        self.explained_variance_ = np.clip(eigenvalues[order], 0.0, None)
        self.radius_ = float(math.sqrt(stats.chi2.ppf(float(self.confidence), z.shape[1])))

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        dim = self.n_features_
        directions = rng.standard_normal((n, dim))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        # Inverse-CDF draw of the truncated chi-square radius: exact, and no rejection loop.
        squared_radii = stats.chi2.ppf(rng.random(n) * stats.chi2.cdf(self.radius_**2, dim), dim)
        whitened = directions * np.sqrt(squared_radii)[:, None]
        return self.mean_ + (whitened * np.sqrt(self.explained_variance_)) @ self.components_

    def mahalanobis_sq(self, z: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distances of `z` under the fitted PCA frame (zero-variance axes ignored)."""
        z = np.asarray(z, dtype=np.float64)
        keep = self.explained_variance_ > 1e-12 * max(float(self.explained_variance_.max()), 1e-300)
        projected = (z - self.mean_) @ self.components_[keep].T
        return (projected**2 / self.explained_variance_[keep]).sum(axis=1)


class GaussianMixtureSampler(Sampler):
    """A full-covariance Gaussian mixture fitted ex post on the z-points (Ghosh et al. 2020, pythae's
    GaussianMixtureSampler). Fitting uses scikit-learn; sampling uses only the saved weights, means
    and covariances, so a reloaded sampler draws the same vectors.
    """

    name = "gmm"
    _learned_arrays = ("weights_", "means_", "covariances_")

    def __init__(
        self, components: int = 10, random_state: int = 0, max_points: int | None = None, reg_covar: float = 1e-6
    ) -> None:
        self.components = components
        self.random_state = random_state
        self.max_points = max_points
        self.reg_covar = reg_covar

    def validate_params(self) -> None:
        _positive_int(self.components, "components")
        _positive_int(self.max_points, "max_points", allow_none=True)
        _positive_number(self.reg_covar, "reg_covar")
        _seed(self.random_state)

    def _min_rows(self) -> int:
        return max(2, int(self.components))

    def _fit(self, z: np.ndarray) -> None:
        from sklearn.mixture import GaussianMixture

        points = _subsample(z, self.max_points, self.random_state)
        if len(points) < self.components:
            raise LatentAtlasError(f"gmm with {self.components} components needs at least that many z-points")
        mixture = GaussianMixture(
            n_components=int(self.components),
            covariance_type="full",
            reg_covar=float(self.reg_covar),
            random_state=int(self.random_state),
        ).fit(points)
        self.weights_ = mixture.weights_ / mixture.weights_.sum()
        self.means_ = mixture.means_
        self.covariances_ = mixture.covariances_

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        labels = rng.choice(len(self.weights_), size=n, p=self.weights_)
        noise = rng.standard_normal((n, self.n_features_))
        out = np.empty((n, self.n_features_))
        for k in range(len(self.weights_)):
            rows = labels == k
            if rows.any():
                out[rows] = self.means_[k] + noise[rows] @ _gaussian_factor(self.covariances_[k]).T
        return out

    def score(self, z: np.ndarray) -> float:
        """Mean log-likelihood of `z` under the fitted mixture."""
        z = np.asarray(check_points(z, min_rows=1), dtype=np.float64)
        per_component = np.stack(
            [
                np.log(weight) + _gaussian_log_density(z, mean, cov)
                for weight, mean, cov in zip(self.weights_, self.means_, self.covariances_)
            ]
        )
        return float(logsumexp(per_component, axis=0).mean())


class Resample(Sampler):
    """Real z-points with a small Gaussian jitter: a KDE-style baseline that stays on the data.

    The jitter is shaped like the bulk: N(0, h² C) with C the z-points' covariance, so it follows the
    correlations instead of leaving the bulk along its thin directions (a per-component jitter on a
    strongly correlated bulk puts nearly every sample outside it in Mahalanobis terms). The bandwidth h
    is `jitter` (default 0.1) or, with `jitter="scott"`, Scott's factor n**(-1/(N+4)).
    """

    name = "resample"
    _learned_arrays = ("points_", "scale_")

    def __init__(self, jitter: float | str = 0.1, max_points: int | None = None, random_state: int = 0) -> None:
        self.jitter = jitter
        self.max_points = max_points
        self.random_state = random_state

    def validate_params(self) -> None:
        if self.jitter != "scott":
            if isinstance(self.jitter, bool) or not isinstance(self.jitter, (int, float, np.number)):
                raise LatentAtlasError(f"jitter must be a number >= 0 or 'scott', got {self.jitter!r}")
            if not math.isfinite(self.jitter) or self.jitter < 0:
                raise LatentAtlasError(f"jitter must be >= 0, got {self.jitter}")
        _positive_int(self.max_points, "max_points", allow_none=True)
        _seed(self.random_state)

    def _fit(self, z: np.ndarray) -> None:
        _, cov = mean_and_covariance(z)
        points = _subsample(z, self.max_points, self.random_state)
        factor = len(points) ** (-1.0 / (z.shape[1] + 4)) if self.jitter == "scott" else float(self.jitter)
        self.points_ = points.astype(np.float32)
        self.scale_ = factor * _gaussian_factor(cov)  # scale_ @ scale_.T = h² C

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        rows = rng.integers(0, len(self.points_), size=n)
        return self.points_[rows].astype(np.float64) + rng.standard_normal((n, self.n_features_)) @ self.scale_.T


# ----------------------------------------------------------------------------- registry

SAMPLERS: dict[str, type[Sampler]] = {
    cls.name: cls
    for cls in (
        UniformBox,
        ComponentBox,
        DiagonalGaussian,
        Gaussian,
        RobustGaussian,
        Ellipsoid,
        GaussianMixtureSampler,
        Resample,
    )
}


def sampler_options(name: str) -> list[str]:
    """The parameter names `make_sampler(name, ...)` accepts."""
    cls = _sampler_class(name)
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


def _sampler_class(name: str) -> type[Sampler]:
    if name not in SAMPLERS:
        raise LatentAtlasError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
    return SAMPLERS[name]


def make_sampler(name: str, **options: Any) -> Sampler:
    """Build (unfitted) sampler `name` with `options`; unknown names and bad options raise LatentAtlasError."""
    cls = _sampler_class(name)
    accepted = sampler_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        allowed = ", ".join(accepted) if accepted else "none"
        raise LatentAtlasError(f"sampler {name!r} has no option {', '.join(unknown)} (options: {allowed})")
    sampler = cls(**options)
    sampler.validate_params()
    return sampler


def load_sampler(folder: str | os.PathLike) -> Sampler:
    """Rebuild a fitted sampler saved with `sampler.save(folder)`."""
    folder = Path(folder)
    manifest_path = folder / "sampler.json"
    if not manifest_path.is_file():
        raise LatentAtlasError(f"{folder} is not a saved sampler folder (no sampler.json)")
    manifest = read_json(manifest_path)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise LatentAtlasError(f"{manifest_path} is not a latentatlas sampler file")
    if manifest.get("version") != FORMAT_VERSION:
        raise LatentAtlasError(f"{manifest_path} has unsupported version {manifest.get('version')!r}")
    try:
        name, params, fitted, arrays = (manifest[k] for k in ("sampler", "params", "fitted", "arrays"))
    except KeyError as exc:
        raise LatentAtlasError(f"{manifest_path} lacks the field {exc.args[0]!r}") from None
    sampler = make_sampler(name, **params)
    expected = set(type(sampler)._learned_arrays)
    if set(arrays) != expected:
        raise LatentAtlasError(f"{manifest_path} lists arrays {sorted(arrays)}, expected {sorted(expected)}")
    for attr, value in fitted.items():
        setattr(sampler, attr, value)
    for attr, file in arrays.items():
        if Path(file).name != file:
            raise LatentAtlasError(f"{manifest_path}: array file {file!r} must lie in the sampler folder")
        setattr(sampler, attr, np.array(load_npy(folder / file, mmap=False)))
    if not isinstance(getattr(sampler, "n_features_", None), int):
        raise LatentAtlasError(f"{manifest_path} lacks the fitted dimension n_features_")
    return sampler


# ----------------------------------------------------------------------------- sampling a run


def _option_slug(options: dict[str, Any]) -> str:
    """Readable folder-name parts for the options the user set, e.g. "-b1.5" or "-percentiles5,95"."""
    parts = []
    for key, value in sorted(options.items()):
        text = (
            ",".join(f"{v:g}" for v in value)
            if isinstance(value, (tuple, list))
            else (f"{value:g}" if isinstance(value, float) else str(value))
        )
        parts.append(f"-{key.replace('_', '-')}{text}")
    return "".join(parts)


def grid_scale(image_size: int) -> int:
    """Enlarge small images in PNG grids so faces stay recognisable."""
    return max(1, 128 // max(1, image_size)) if image_size < 64 else 1


def sample_run(
    run: Any,
    sampler: str,
    n: int = 64,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    subset: str = "train",
    grid_limit: int = 64,
    **options: Any,
) -> dict:
    """Fit sampler `sampler` on the run's `subset` z-points, draw `n` vectors and decode them.

    Writes, all at once, into `out` (default RUN/samples/<sampler>[-<options>]-seed<seed>/):
    grid.png (the first `grid_limit` images), z.npy (all n vectors), sampler/ (the fitted sampler)
    and info.json. Everything is validated and computed before the folder appears.
    """
    from latentatlas.plots import save_image_grid

    estimator = make_sampler(sampler, **options)
    n = _positive_int(n, "number of samples n")
    seed = _seed(seed)
    grid_limit = _positive_int(grid_limit, "grid size")
    z = run.zpoints(subset)
    if z.shape[1] != run.latent_dim:
        raise LatentAtlasError(
            f"the z-points of {run.path} have dimension {z.shape[1]}, the model {run.latent_dim}: "
            f"run `latentatlas encode {run.path}`"
        )
    estimator.fit(z)
    vectors = estimator.sample(n, seed=seed)
    shown = min(n, grid_limit)
    images = run.decode(vectors[:shown])
    folder = Path(out) if out is not None else run.path / "samples" / f"{sampler}{_option_slug(options)}-seed{seed}"
    data_radius = sum(float(np.linalg.norm(c, axis=1).sum()) for c in _row_chunks(z)) / len(z)
    info = {
        "command": "sample",
        "run": str(run.path),
        "sampler": sampler,
        "options": estimator.get_params(),
        "n": n,
        "seed": seed,
        "subset": subset,
        "fitted_on": int(len(z)),
        "latent_dim": int(z.shape[1]),
        "mean_radius": {"samples": float(np.linalg.norm(vectors, axis=1).mean()), "z_points": data_radius},
        "files": {"vectors": "z.npy", "sampler": "sampler"},
        "figures": [
            {
                "file": "grid.png",
                "caption": f"{shown} of {n} images decoded from {sampler} latent vectors (seed {seed}), "
                f"the sampler fitted on {len(z)} {subset} z-points",
            }
        ],
    }
    with atomic_folder(folder) as tmp:
        save_image_grid(images, tmp / "grid.png", scale=grid_scale(images.shape[1]))
        save_npy(tmp / "z.npy", vectors)
        estimator.save(tmp / "sampler")
        write_json(tmp / "info.json", info)
    return {**info, "path": str(folder)}


_FLAG_NAMES = {
    "b": "--b",
    "percentiles": "--percentiles",
    "k_sigma": "--k-sigma",
    "components": "--components",
    "confidence": "--confidence",
    "jitter": "--jitter",
    "support_fraction": "--support-fraction",
}


def sample_options_from_flags(name: str, flags: dict[str, Any]) -> dict[str, Any]:
    """The sampler options from the CLI's flags that were given; a flag the sampler lacks is an error."""
    accepted = sampler_options(name)
    given = {key: value for key, value in flags.items() if value is not None}
    stray = [_FLAG_NAMES.get(key, key) for key in given if key not in accepted]
    if stray:
        own = [_FLAG_NAMES[key] for key in accepted if key in _FLAG_NAMES]
        raise LatentAtlasError(
            f"{', '.join(stray)} does not apply to sampler {name} (its options: {', '.join(own) or 'none'})"
        )
    if "percentiles" in given:
        if len(given["percentiles"]) != 2:
            raise LatentAtlasError(f"--percentiles needs two numbers like 1,99, got {given['percentiles']}")
        given["percentiles"] = tuple(given["percentiles"])
    return given
