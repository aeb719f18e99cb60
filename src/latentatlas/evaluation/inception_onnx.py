"""InceptionV3 through ONNX Runtime on the CPU: the shipped TorchScript (`default_1.pt`) exported once to
ONNX (`torch.onnx.export(..., dynamo=False, opset_version=17)`) and cached in the user cache dir, keyed by
the weights' SHA-256, so it needs no network. On the 2-core CPU, ONNX Runtime ran the same network about
2.4x faster than TorchScript (issue 20; `benchmarks/evaluate.py` measures it), features within ~1e-5.

`onnx_session()` gives the cached session, or None (with one line on stderr, once) when `onnxruntime` or
`onnx` is missing: the caller then uses the TorchScript path.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from latentatlas.data.cache import default_cache_dir
from latentatlas.evaluation.onnx_export import ONNX_HINT, export_once, file_digest, missing_onnxruntime, session


def onnx_model_path(weights: Path) -> Path:
    """The ONNX export of `weights` in the user cache dir ($LATENTATLAS_CACHE/inception/), exported now (about
    half a minute, written atomically) when it is not there yet."""
    path = default_cache_dir() / "inception" / f"inception-{file_digest(weights)}.onnx"
    return export_once(
        path,
        lambda: torch.jit.load(str(weights), map_location="cpu"),
        torch.zeros(2, 3, 299, 299),
        ("images", "features"),
        "InceptionV3",
    )


@lru_cache(maxsize=1)
def _missing_onnxruntime() -> str | None:
    """The missing package's name, said once on stderr with the install hint; None when both are there."""
    package = missing_onnxruntime()
    if package is not None:
        print(
            f"latentatlas: {package} is not installed: Inception features run through TorchScript on the CPU "
            f"(about 2.4x slower; {ONNX_HINT})",
            file=sys.stderr,
        )
    return package


def onnx_session(weights: Path) -> Any | None:
    """An ONNX Runtime session of the InceptionV3 `weights` with torch's thread count, or None when
    onnxruntime / onnx are missing (said once)."""
    if _missing_onnxruntime() is not None:
        return None
    return session(onnx_model_path(weights), torch.get_num_threads())
