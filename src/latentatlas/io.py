"""Atomic file writes: every artifact appears complete or not at all."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from latentatlas.errors import LatentAtlasError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the artifact the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def atomic_folder(path: str | os.PathLike, kind: str = "") -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; move it onto `path` only if the block succeeds.

    `kind` names the artifact (the lead's version on main writes and checks a marker with it).

    A failure leaves neither a partial folder nor a damaged previous version behind.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LatentAtlasError(f"{path} exists and is not a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700 folders
        if path.exists():
            # A folder cannot be renamed over a non-empty one: swap via a hidden name, then delete the old.
            old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _to_jsonable(value.item())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not np.isfinite(value):
        return None  # JSON has no NaN/inf
    return value


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented JSON; numpy values become plain numbers, NaN/inf become null."""
    write_text(path, json.dumps(_to_jsonable(obj), indent=2) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise LatentAtlasError(f"missing file: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LatentAtlasError(f"corrupt JSON file {path}: {exc}") from None


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)


def load_npy(path: str | os.PathLike, mmap: bool = True) -> np.ndarray:
    """Load a .npy without ever unpickling; memory-mapped by default."""
    path = Path(path)
    if not path.is_file():
        raise LatentAtlasError(f"missing file: {path}")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise LatentAtlasError(f"corrupt array file {path}: {exc}") from None


def png_bytes(image: np.ndarray, compress_level: int = 1) -> bytes:
    """One uint8 (H, W, 3) image as PNG; light compression keeps encoding well under a millisecond."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def data_uri(data: bytes | np.ndarray, mime: str = "image/png") -> str:
    """A base64 data URI of file bytes, or of a uint8 image (encoded as PNG)."""
    if isinstance(data, np.ndarray):
        data, mime = png_bytes(data), "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
