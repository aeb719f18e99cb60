"""Atomic file writes: every artifact appears complete or not at all."""

from __future__ import annotations

import base64
import ctypes
import errno
import hashlib
import io
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import filelock
import numpy as np
from PIL import Image

from latentatlas.errors import LatentAtlasError

_UMASK = os.umask(0)
os.umask(_UMASK)


# Temporary names carry the writer's pid, so a later process can tell a dead writer's leftovers from
# a live writer's work in progress: ".<name>.<pid>.<random>.tmp<suffix>".
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp")
MARKER = ".artifact.json"


def usable_cores() -> int:
    """CPU cores this process may run on (container / taskset limits respected, unlike os.cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def _temp_name(name: str, suffix: str = "") -> str:
    return f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{suffix}"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete temporary files and folders that writers killed mid-write left in `folder`; returns them.

    Only names this module creates, and only those of processes that are no longer running.
    """
    folder = Path(folder)
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or _pid_alive(int(match["pid"])):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    if path.is_dir():
        raise LatentAtlasError(f"cannot write the file {path}: a folder of that name exists")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(path.parent)
        tmp_path = path.parent / _temp_name(path.name, path.suffix)
        tmp_path.touch()
    except OSError as exc:
        raise LatentAtlasError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        yield tmp_path
        # give the artifact the permissions a plain open() would
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    if sys.platform != "linux":
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EPERM):  # file system or kernel without the flag
        return False
    raise OSError(error, os.strerror(error), str(a))


def artifact_kind(path: str | os.PathLike) -> str | None:
    """The kind recorded in a folder's artifact marker, or None for a folder without one."""
    marker = Path(path) / MARKER
    if not marker.is_file():
        return None
    try:
        return str(json.loads(marker.read_text(encoding="utf-8")).get("kind"))
    except (OSError, ValueError, AttributeError):
        return None


def check_replaceable(path: str | os.PathLike, kind: str) -> None:
    """Refuse an output folder that exists and is not a previous output of the same kind.

    So `--out RUN` can never delete a run, a sample folder never replaces an analysis, and so on.
    """
    path = Path(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise LatentAtlasError(f"{path} exists and is not a folder")
    found = artifact_kind(path)
    if found == kind or (found is None and not any(path.iterdir())):
        return
    what = f"a {found} output" if found else "not an output of latentatlas"
    raise LatentAtlasError(
        f"refusing to replace {path}: it is {what}, not a previous {kind} output; choose another --out"
    )


@contextmanager
def atomic_folder(path: str | os.PathLike, kind: str) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; it replaces `path` as a whole only if the block succeeds.

    The folder gets a marker naming its `kind`; an existing `path` must be an earlier artifact of the same
    kind (or empty), else nothing is touched. A kill at any moment leaves the old folder or the new one,
    never a mix: the swap is one `renameat2(RENAME_EXCHANGE)` on Linux.
    """
    path = Path(path)
    check_replaceable(path, kind)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(path.parent)
        tmp = path.parent / _temp_name(path.name)
        tmp.mkdir()
    except OSError as exc:
        raise LatentAtlasError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        yield tmp
        (tmp / MARKER).write_text(json.dumps({"kind": kind, "pid": os.getpid()}) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o777 & ~_UMASK)
        check_replaceable(path, kind)  # again: another process may have written there meanwhile
        if not path.exists():
            os.rename(tmp, path)
        elif not _exchange(tmp, path):
            # No atomic swap here: move the old folder aside under a temp name (cleaned later if we die).
            aside = path.parent / _temp_name(path.name)
            os.rename(path, aside)
            os.rename(tmp, path)
            tmp = aside
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# An output file carries this mark (an HTML meta tag, a PNG text chunk, a JSON field, a TorchScript extra
# file) within its first bytes, so a later run of the same command knows the file is its own to replace.
OUTPUT_MARK = "latentatlas-output"
_MARK_BYTES = 65536


def output_mark(kind: str) -> str:
    """The text an output file of `kind` (the command that writes it: "report", "export", ...) embeds."""
    return f"{OUTPUT_MARK}:{kind}"


def check_output_file(path: str | os.PathLike, kind: str, force: bool = False) -> None:
    """Refuse an output file that exists and is not an earlier output of the same command (`kind`).

    An earlier output embeds `output_mark(kind)` in its first 64 KiB; anything else (a user's own notes,
    a photo, another command's output) is replaced only with `force`. Call it for every file a command
    will write before writing any of them, so a refusal leaves nothing written.
    """
    path = Path(path)
    if path.is_dir():
        raise LatentAtlasError(f"cannot write the file {path}: a folder of that name exists")
    if force or not (path.exists() or path.is_symlink()):
        return
    try:
        with open(path, "rb") as f:
            head = f.read(_MARK_BYTES)
    except OSError:
        head = b""
    if output_mark(kind).encode("ascii") in head:
        return
    raise LatentAtlasError(
        f"refusing to overwrite {path}: it exists and is not an earlier output of `latentatlas {kind}`; "
        "choose another file name or add --force"
    )


def folder_lock(folder: str | os.PathLike, timeout: float | None = None) -> _FolderLock:
    """An advisory lock on a folder (a run): one writer at a time, reentrant within a process.

    A second process waits, saying so once on stderr, and gives up with a clear message after `timeout`
    seconds (default: $LATENTATLAS_LOCK_TIMEOUT or 600).
    """
    folder = Path(folder)
    if timeout is None:
        timeout = float(os.environ.get("LATENTATLAS_LOCK_TIMEOUT", "600"))
    key = str(folder.resolve())
    lock = _LOCKS.get(key)
    if lock is None:
        lock = _LOCKS[key] = cast(_FolderLock, _FolderLock(str(folder / ".lock"), timeout=timeout))
    return lock


class _FolderLock(filelock.FileLock):
    def acquire(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        if self.is_locked:
            return super().acquire(*args, **kwargs)
        try:
            return super().acquire(timeout=0)
        except filelock.Timeout:
            folder = Path(self.lock_file).parent
            print(f"latentatlas: {folder} is in use by another latentatlas command; waiting", file=sys.stderr)
        try:
            return super().acquire(*args, **kwargs)
        except filelock.Timeout:
            folder = Path(self.lock_file).parent
            raise LatentAtlasError(
                f"{folder} is still in use by another latentatlas command after {self.timeout:g} s; try again later"
            ) from None


_LOCKS: dict[str, _FolderLock] = {}


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def to_jsonable(value: Any) -> Any:
    """The one JSON conversion: numpy scalars and arrays to Python numbers and lists, tuples to lists, paths
    to strings, NaN and infinities to None (JSON has neither). Other values are returned unchanged."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented JSON; numpy values become plain numbers, NaN/inf become null."""
    write_text(path, json.dumps(to_jsonable(obj), indent=2) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise LatentAtlasError(f"missing file: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LatentAtlasError(f"corrupt JSON file {path}: {exc}") from None


def array_id(array: np.ndarray, chunk_rows: int = 65_536) -> str:
    """A content id of an array (sha256 of its shape, dtype and bytes, 16 hex digits), read in row blocks so
    a memory-mapped store is hashed without loading it whole: the same z-points give the same id."""
    digest = hashlib.sha256(f"{array.shape}{array.dtype.str}".encode())
    for start in range(0, max(len(array), 1), chunk_rows):
        digest.update(np.ascontiguousarray(array[start : start + chunk_rows]).tobytes())
    return digest.hexdigest()[:16]


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
