"""Validation of user-facing values: one function per kind of value, each raising `LatentAtlasError`.

Pure modules call these at the top of `fit`/`sample`/functions so that a bad option ends in one clear
line (the CLI prints it and exits 2) before any work or any write.
"""

from __future__ import annotations

import difflib
import heapq
import math
import operator
import os
import resource
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from latentatlas.errors import LatentAtlasError

MAX_SEED = 2**32 - 1  # numpy's legacy seeds and torch.manual_seed both accept this range
_CHUNK_BYTES = 64 * 2**20  # float64 working set per chunk when scanning a (memmapped) array


def nearest_names(text: str, names: Iterable[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
    """The `n` names most like `text` (difflib's ratio >= `cutoff`), for "did you mean" hints; ties go to
    the name sharing the longer prefix plus suffix with `text` (000008.jpg for a mistyped 00008.jpg)."""
    matcher = difflib.SequenceMatcher()
    matcher.set_seq2(text)
    scored = []
    for name in names:
        matcher.set_seq1(name)
        if matcher.real_quick_ratio() >= cutoff and matcher.quick_ratio() >= cutoff:
            ratio = matcher.ratio()
            if ratio >= cutoff:
                affix = len(os.path.commonprefix([name, text])) + len(os.path.commonprefix([name[::-1], text[::-1]]))
                scored.append((ratio, affix, name))
    return [name for _, _, name in heapq.nlargest(n, scored)]


def path_text(value: Any, name: str = "path") -> str:
    """A file or folder name the operating system can take: a non-empty string without a NUL character
    (every system call refuses one, and Python reports it as a bare ValueError deep inside)."""
    if not isinstance(value, (str, os.PathLike)):
        raise LatentAtlasError(f"{name} must be a path, got {value!r}")
    text = os.fspath(value)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text:
        raise LatentAtlasError(f"{name} is empty")
    if "\0" in text:
        raise LatentAtlasError(f"{name} {text!r} contains a NUL character, which no file name can hold")
    return text


def positive_int(value: Any, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer in [minimum, maximum] (bools are refused: True is not a count)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise LatentAtlasError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise LatentAtlasError(f"{name} must be an integer <= {maximum}, got {value!r}")
    return int(value)


def image_size(value: Any, name: str = "image size") -> int:
    """An image side in pixels: a positive multiple of 16 (the autoencoder halves it once per stage)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0 or value % 16:
        raise LatentAtlasError(f"{name} must be a positive multiple of 16, got {value!r}")
    return int(value)


def positive_number(value: Any, name: str, limit: float = 1e12) -> float:
    """A finite number > 0 and at most `limit` (beyond that no latent-space quantity means anything, and
    numpy's random generators overflow)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise LatentAtlasError(f"{name} must be a number > 0, got {value!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise LatentAtlasError(f"{name} must be a finite number > 0, got {value!r}")
    if value > limit:
        raise LatentAtlasError(f"{name} must be at most {limit:g}, got {value!r}")
    return float(value)


def finite_number(value: Any, name: str, limit: float = 1e12) -> float:
    """A finite number of at most `limit` in magnitude (beyond that nothing a decoder does is meaningful)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise LatentAtlasError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or abs(number) > limit:
        raise LatentAtlasError(f"{name} must be a finite number within +-{limit:g}, got {value!r}")
    return number


def fraction(
    value: Any, name: str, low: float = 0.0, high: float = 1.0, open_low: bool = True, open_high: bool = True
) -> float:
    """A number in the interval between low and high (open or closed at each end)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise LatentAtlasError(f"{name} must be a number in ({low}, {high}), got {value!r}") from None
    below = number <= low if open_low else number < low
    above = number >= high if open_high else number > high
    if not math.isfinite(number) or below or above:
        left, right = "(" if open_low else "[", ")" if open_high else "]"
        raise LatentAtlasError(f"{name} must be in {left}{low:g}, {high:g}{right}, got {value!r}")
    return number


def confidence(value: Any) -> float:
    """A confidence level in (0, 1)."""
    return fraction(value, "a confidence level")


def seed(value: Any, name: str = "seed") -> int:
    """A seed in [0, 2**32 - 1]."""
    return positive_int(value, name, minimum=0, maximum=MAX_SEED)


def plane(value: Sequence[int], dim: int) -> tuple[int, int]:
    """A coordinate plane: two distinct integer axis indices in [0, dim)."""
    try:
        j1, j2 = (operator.index(j) for j in value)
    except (TypeError, ValueError):
        raise LatentAtlasError(f"a plane is two integer axis indices like (151, 195), got {value!r}") from None
    for j in (j1, j2):
        if not 0 <= j < dim:
            raise LatentAtlasError(f"plane ({j1}, {j2}): axis {j} is out of range for latent dimension {dim}")
    if j1 == j2:
        raise LatentAtlasError(f"plane ({j1}, {j2}) repeats an axis; give two different axes")
    return j1, j2


def row_chunks(z: np.ndarray) -> Iterator[np.ndarray]:
    """float64 row blocks of a (memmapped) array, each of bounded size."""
    rows = max(1, _CHUNK_BYTES // (8 * max(1, z.shape[1])))
    for start in range(0, len(z), rows):
        yield np.asarray(z[start : start + rows], dtype=np.float64)


def points(z: Any, min_rows: int = 2, dim: int | None = None, name: str = "z-points") -> np.ndarray:
    """A numeric, finite (n, N) array, checked chunkwise so a memmap is never copied whole."""
    if not isinstance(z, np.ndarray):
        try:
            z = np.asarray(z, dtype=np.float64)
        except (TypeError, ValueError):
            raise LatentAtlasError(f"{name} must be a numeric array (n, N)") from None
    if z.ndim != 2 or z.shape[1] == 0:
        raise LatentAtlasError(f"{name} must be a 2-D array (n, N), got shape {z.shape}")
    if not (np.issubdtype(z.dtype, np.floating) or np.issubdtype(z.dtype, np.integer)):
        raise LatentAtlasError(f"{name} must be numeric, got dtype {z.dtype}")
    if dim is not None and z.shape[1] != dim:
        raise LatentAtlasError(f"{name} have {z.shape[1]} components, expected {dim}")
    if len(z) < min_rows:
        raise LatentAtlasError(f"need at least {min_rows} {name}, got {len(z)}")
    seen = 0
    for chunk in row_chunks(z):
        finite = np.isfinite(chunk).all(axis=1)
        if not finite.all():
            bad = seen + int(np.flatnonzero(~finite)[0])
            raise LatentAtlasError(f"{name} contain NaN or infinite values (first bad row: {bad})")
        seen += len(chunk)
    return z


def images(value: Any, name: str = "images", min_size: int = 1) -> np.ndarray:
    """A uint8 image batch (n, H, W, 3) with sides of at least `min_size` pixels."""
    array = np.asarray(value)
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise LatentAtlasError(f"{name} must be uint8 (n, H, W, 3), got {array.dtype} {array.shape}")
    if min(array.shape[1:3]) < min_size:
        raise LatentAtlasError(f"{name} are {array.shape[1]}x{array.shape[2]} pixels; at least {min_size} needed")
    return array


def allocation(shape: Sequence[int], itemsize: int, what: str, budget_bytes: int = 8 * 2**30) -> None:
    """Refuse an array that could not fit in memory, before allocating it."""
    total = itemsize
    for size in shape:
        total *= int(size)
    if total > budget_bytes:
        raise LatentAtlasError(
            f"{what} would need {total / 2**30:.1f} GiB (limit {budget_bytes / 2**30:.0f} GiB); ask for fewer"
        )


def _proc_kib(path: str, key: str) -> int | None:
    """A "Key:   N kB" value of a /proc file in bytes; None where the file or key is missing (not Linux)."""
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def available_memory() -> int | None:
    """Bytes this process can still allocate: the smaller of the system's available memory and what is left
    of its address-space limit (ulimit -v); None where neither is known."""
    limits = []
    free = _proc_kib("/proc/meminfo", "MemAvailable")
    if free is not None:
        limits.append(free)
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        used = _proc_kib("/proc/self/status", "VmSize") or 0
        limits.append(max(0, soft - used))
    return min(limits) if limits else None


def memory(needed: int, what: str, available: int | None = None, hint: str = "ask for less") -> None:
    """Refuse work that needs more memory than is available (`available_memory()` unless given), before
    anything of it is allocated: a failed allocation deep inside numpy or torch is a traceback."""
    available = available_memory() if available is None else available
    if available is not None and needed > available:
        raise LatentAtlasError(
            f"{what} would need about {needed / 2**30:.1f} GiB of memory, {available / 2**30:.1f} GiB is available; "
            f"{hint}"
        )
