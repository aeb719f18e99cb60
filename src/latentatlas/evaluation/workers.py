"""One pool of worker processes for the image instruments that keep a CPU core busy each: dlib's CNN detector and
face descriptors, the Haar cascade and InceptionV3 through ONNX Runtime.

One process per usable core, each running one thread (`_one_thread`): on the 2-core CPU two one-thread
processes ran InceptionV3 1.1x and the Haar cascade 1.5x faster than one process with two threads (issue 20;
docs/evaluation.md), and dlib holds the GIL while its networks run, so only processes use a second core. The
pool is started on first use and serves the whole process, so each worker loads its models once.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from latentatlas.io import usable_cores
from latentatlas.progress import Progress

PARALLEL_MIN_IMAGES = 64  # fewer images are processed here (unless the workers already run): starting them costs more
BLOCK = 64  # images per task sent to a worker process

_pool: ProcessPoolExecutor | None = None
_pool_workers = 0


def _cv2() -> Any | None:
    """OpenCV, or None where it cannot be imported (no libGL): then the work that needs it says so itself, and
    a worker that only runs Inception still starts."""
    try:
        import cv2
    except ImportError:
        return None
    return cv2


def _one_thread() -> None:
    """Worker initializer: one core per worker, so torch's and OpenCV's own thread pools stay at one thread."""
    torch.set_num_threads(1)
    cv2 = _cv2()
    if cv2 is not None:
        cv2.setNumThreads(1)


@contextmanager
def like_a_worker() -> Iterator[None]:
    """Run this process on one thread, as a worker does (a timing probe of the per-core cost), then restore."""
    cv2 = _cv2()
    torch_threads, cv2_threads = torch.get_num_threads(), None if cv2 is None else cv2.getNumThreads()
    _one_thread()
    try:
        yield
    finally:
        torch.set_num_threads(torch_threads)
        if cv2 is not None and cv2_threads is not None:
            cv2.setNumThreads(cv2_threads)


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """The process's pool of `workers` workers, started on first use (about 2 s per worker to load dlib's
    models, measured) and kept for every later call with the same count."""
    global _pool, _pool_workers
    if _pool is None or _pool_workers != workers:
        if _pool is not None:
            _pool.shutdown()
        # forkserver: workers forked from a clean process, never from a parent holding torch's threads.
        context = multiprocessing.get_context("forkserver" if sys.platform.startswith("linux") else "spawn")
        _pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_one_thread)
        _pool_workers = workers
    return _pool


def in_processes(
    work: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    progress: str | None = None,
    bar: Progress | None = None,
    block: int | None = None,
) -> np.ndarray:
    """`work(block)` over blocks of at most `block` (default BLOCK) images on one process per usable core, the results
    concatenated in image order; `progress` names a bar (count and time left; lines off a terminal) that counts
    the images done, or `bar` is the caller's bar to count them on. `work` must give the same result per image
    whatever the block (it then does not matter where an image is processed); below PARALLEL_MIN_IMAGES, or on
    one core, it runs in this process."""
    global _pool
    workers = usable_cores()
    blocks = np.array_split(np.arange(len(images)), max(workers, -(-len(images) // (block or BLOCK))))
    blocks = [rows for rows in blocks if len(rows)]
    with Progress(len(images), progress or "", "images", enabled=progress is not None and bar is None) as own:
        counter = bar if bar is not None else own
        started = counter.done
        few = len(images) < (2 * workers if _pool is not None else PARALLEL_MIN_IMAGES)
        if workers == 1 or few:
            return _blocks_here(work, images, blocks, counter)
        try:
            parts = []
            for rows, part in zip(blocks, worker_pool(workers).map(work, [images[rows] for rows in blocks])):
                parts.append(part)
                counter.update(len(rows))
            return np.concatenate(parts)
        except BrokenProcessPool:  # e.g. a script without `if __name__ == "__main__":` cannot start workers
            print("latentatlas: worker processes failed to start; running in this process", file=sys.stderr)
            _pool = None
            counter.done = started
            return _blocks_here(work, images, blocks, counter)


def _blocks_here(
    work: Callable[[np.ndarray], np.ndarray], images: np.ndarray, blocks: list[np.ndarray], bar: Progress
) -> np.ndarray:
    parts = []
    for rows in blocks:  # per image independent: blocks give the same results as one call, with a count
        parts.append(work(images[rows]))
        bar.update(len(rows))
    return np.concatenate(parts)
