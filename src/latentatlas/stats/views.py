"""Reading a (memory-mapped) z-point array: `ZView` (float64 chunks, an optional row selection) and
seeded subsets, without ever copying a large store whole."""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from typing import Any

import numpy as np

from latentatlas.errors import LatentAtlasError
from latentatlas.progress import Progress

DEFAULT_CHUNK = 16384


class ZView:
    """Rows of a z-point array (optionally a boolean row selection), read in float64 chunks.

    A selection is applied chunk by chunk, so a subset of a memory-mapped store is never copied whole.
    """

    def __init__(self, z: np.ndarray, rows: np.ndarray | None = None):
        if isinstance(z, ZView):
            z, rows = z.z, z.rows if rows is None else rows
        if not hasattr(z, "ndim") or z.ndim != 2:
            raise LatentAtlasError(f"z-points must be a 2-D array (n, N), got shape {getattr(z, 'shape', None)}")
        if not np.issubdtype(z.dtype, np.floating):
            raise LatentAtlasError(f"z-points must be floating point, got {z.dtype}")
        if rows is not None:
            rows = np.asarray(rows, dtype=bool)
            if rows.shape != (len(z),):
                raise LatentAtlasError(f"row selection has {rows.shape} entries for {len(z)} z-points")
        self.z, self.rows = z, rows
        self.n = int(rows.sum()) if rows is not None else len(z)
        self.dim = int(z.shape[1])

    def chunks(
        self, chunk_size: int = DEFAULT_CHUNK, desc: str | None = None, progress: bool = False
    ) -> Iterator[np.ndarray]:
        total = len(self.z)
        bar = Progress(total, desc or "rows", "rows", enabled=progress, leave=False, redraw_every=0.1, lines=False)
        with bar:  # closed also when the caller stops early (the generator is closed)
            for start in range(0, total, max(1, int(chunk_size))):
                bar.update(min(chunk_size, total - start))
                block = self.z[start : start + chunk_size]
                if self.rows is not None:
                    block = block[self.rows[start : start + chunk_size]]
                chunk = np.asarray(block, dtype=np.float64)
                release_pages(self.z)
                if len(chunk):
                    yield chunk

    def take(self, indices: np.ndarray) -> np.ndarray:
        """float64 rows at positions `indices` of the selection (sorted for sequential reads)."""
        indices = np.sort(np.asarray(indices, dtype=np.int64))
        absolute = np.flatnonzero(self.rows)[indices] if self.rows is not None else indices
        out = np.empty((len(absolute), self.dim))
        # in small blocks: each scattered row faults in a whole read-around window of the map (~64 KB),
        # so 20k random rows of a 1 GB store would otherwise make all of it resident at once
        for start in range(0, len(absolute), 256):
            out[start : start + 256] = self.z[absolute[start : start + 256]]
            release_pages(self.z)
        return out

    def subsample(self, size: int, seed: int) -> np.ndarray:
        if size >= self.n:
            return self.take(np.arange(self.n))
        return self.take(np.random.default_rng(seed).choice(self.n, size, replace=False))


def release_pages(z: np.ndarray) -> None:
    """Drop already-read pages of a read-only memory map from this process's resident set.

    The pages stay in the OS page cache, but without this a full pass over a 1 GB store counts 1 GB of
    file-backed pages as this process's memory.
    """
    mapping = getattr(z, "_mmap", None)
    if isinstance(mapping, mmap.mmap) and getattr(z, "mode", None) == "r" and hasattr(mapping, "madvise"):
        try:
            mapping.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):
            pass


def as_view(z: Any) -> ZView:
    return z if isinstance(z, ZView) else ZView(z)


def subsample(z: np.ndarray, max_points: int | None, seed: int) -> np.ndarray:
    """A seeded subset of at most `max_points` rows (sorted, so memmap reads stay sequential), as float64."""
    if max_points is None or len(z) <= max_points:
        return np.asarray(z, dtype=np.float64)
    rows = np.sort(np.random.default_rng(seed).choice(len(z), max_points, replace=False))
    return np.asarray(z[rows], dtype=np.float64)
