"""InceptionV3 through ONNX Runtime on the CPU: the shipped TorchScript (`default_1.pt`) exported once to
ONNX (`torch.onnx.export(..., dynamo=False, opset_version=17)`) and cached in the user cache dir, keyed by
the weights' SHA-256, so it needs no network. On the 2-core CPU, ONNX Runtime ran the same network about
2.4x faster than TorchScript (issue 20; `benchmarks/evaluate.py` measures it), features within ~1e-5.

`onnx_session()` gives the cached session, or None (with one line on stderr, once) when `onnxruntime` or
`onnx` is missing: the caller then uses the TorchScript path.
"""

from __future__ import annotations

import hashlib
import sys
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from latentatlas.data.cache import default_cache_dir
from latentatlas.io import atomic_path

ONNX_OPSET = 17
ONNX_HINT = "pip install onnxruntime onnx"


@lru_cache(maxsize=4)
def _weights_digest(path: Path, size: int, mtime: float) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def onnx_model_path(weights: Path) -> Path:
    """The ONNX export of `weights` in the user cache dir ($LATENTATLAS_CACHE/inception/), exported now (about
    half a minute, written atomically) when it is not there yet."""
    stat = weights.stat()
    path = default_cache_dir() / "inception" / f"inception-{_weights_digest(weights, stat.st_size, stat.st_mtime)}.onnx"
    if not path.is_file():
        print(f"latentatlas: exporting InceptionV3 to ONNX once ({path})", file=sys.stderr, flush=True)
        with warnings.catch_warnings():  # jit.load's deprecation and the exporter's notes on TorchScript input
            warnings.simplefilter("ignore")
            model = torch.jit.load(str(weights), map_location="cpu").eval()
            with atomic_path(path) as tmp, torch.inference_mode():
                torch.onnx.export(
                    model,
                    (torch.zeros(2, 3, 299, 299),),
                    str(tmp),
                    dynamo=False,
                    opset_version=ONNX_OPSET,
                    input_names=["images"],
                    output_names=["features"],
                    dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
                )
    return path


@lru_cache(maxsize=1)
def _missing_onnxruntime() -> str | None:
    """The missing package's name, said once on stderr with the install hint; None when both are there."""
    for package in ("onnxruntime", "onnx"):
        try:
            __import__(package)
        except ImportError:
            print(
                f"latentatlas: {package} is not installed: Inception features run through TorchScript on the CPU "
                f"(about 2.4x slower; {ONNX_HINT})",
                file=sys.stderr,
            )
            return package
    return None


@lru_cache(maxsize=2)
def _session(path: Path, threads: int) -> Any:
    # onnxruntime: an optional dependency, imported only on the CPU route
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3  # warnings about unused initialisers are not the user's concern
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_session(weights: Path) -> Any | None:
    """An ONNX Runtime session of the InceptionV3 `weights` with torch's thread count, or None when
    onnxruntime / onnx are missing (said once)."""
    if _missing_onnxruntime() is not None:
        return None
    return _session(onnx_model_path(weights), torch.get_num_threads())
