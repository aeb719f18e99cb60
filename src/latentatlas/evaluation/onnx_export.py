"""Networks exported once to ONNX and run through ONNX Runtime on the CPU (InceptionV3, dlib's face ResNet).

Each export is cached in the user cache dir, keyed by the SHA-256 of the file its weights come from, and
written atomically, so it needs no network and a killed export leaves nothing half-written. `onnxruntime`
and `onnx` are imported only where used: without them the callers take their slower route.
"""

from __future__ import annotations

import hashlib
import sys
import warnings
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from latentatlas.io import atomic_path

ONNX_OPSET = 17
ONNX_HINT = "pip install onnxruntime onnx"


@lru_cache(maxsize=8)
def _digest(path: Path, size: int, mtime: float) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def file_digest(path: Path) -> str:
    """The first 16 hex digits of the file's SHA-256 (computed once per size and modification time)."""
    stat = Path(path).stat()
    return _digest(Path(path), stat.st_size, stat.st_mtime)


def missing_onnxruntime() -> str | None:
    """'onnxruntime' or 'onnx' when that package is missing, else None."""
    for package in ("onnxruntime", "onnx"):
        try:
            __import__(package)
        except ImportError:
            return package
    return None


def export_once(
    path: Path, build: Callable[[], torch.nn.Module], example: torch.Tensor, names: tuple[str, str], what: str
) -> Path:
    """`path`, exported now from the module `build()` returns when it is not there yet: one input and one
    output (`names`), the batch axis dynamic, with one line saying so (the export takes seconds)."""
    if not path.is_file():
        with warnings.catch_warnings():  # jit.load's deprecation and the exporter's notes on tracing
            warnings.simplefilter("ignore")
            module = build().eval()  # first: a file that cannot be read fails before the line below
            print(f"latentatlas: exporting {what} to ONNX once ({path})", file=sys.stderr, flush=True)
            with atomic_path(path) as tmp, torch.inference_mode():
                torch.onnx.export(
                    module,
                    (example,),
                    str(tmp),
                    dynamo=False,
                    opset_version=ONNX_OPSET,
                    input_names=[names[0]],
                    output_names=[names[1]],
                    dynamic_axes={names[0]: {0: "batch"}, names[1]: {0: "batch"}},
                )
    return path


@lru_cache(maxsize=4)
def session(path: Path, threads: int) -> Any:
    """An ONNX Runtime CPU session of the model file on `threads` intra-op threads (one per file and count)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3  # warnings about unused initialisers are not the user's concern
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
