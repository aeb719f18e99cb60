"""Decode the latent vectors of concurrent requests together: `DecodeBatcher`.

Each web request runs in its own worker thread. Were each to call the decoder itself, N concurrent
clicks would run N forward passes at once, every one fighting for the same CPU cores (torch's threads
times N), and each would finish about as late as the last. Instead every request hands its vectors to
one decoding thread, which takes everything queued when it gets free, decodes it in one forward pass
and hands each request its own rows back. A lone request is decoded at once (no waiting window);
under load the batches grow by themselves. Encoding PNGs and the face detector stay in the request
threads, where they run in parallel.

Under a mixed load a batch holds at most `max_rows` vectors: the job that has waited longest, then the
smallest of the others. A click (one vector) never waits behind more than the one forward pass in flight,
however many sampler draws (16 vectors each) are queued, and a draw is not starved by a steady stream of
clicks, as it could be when the smallest jobs always went first (tested). Under 16 closed-loop clients
on 2 cores the draws' latency is set by the CPU they share, not by this order (benchmarks/explorer_load.py).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np


@dataclass
class _Job:
    vectors: np.ndarray
    future: Future = field(default_factory=Future)


class DecodeBatcher:
    """Serialise decoding on one thread and merge the requests queued meanwhile into one batch.

    Parameters
    ----------
    decode : callable
        (m, N) float32 latent vectors -> (m, H, W, 3) uint8 images.
    max_rows : int
        At most this many vectors per forward pass (a single larger request is still decoded whole); it
        bounds how long a click waits for the pass in flight.

    Attributes
    ----------
    batches, rows : int
        Forward passes run and vectors decoded so far.
    """

    def __init__(self, decode: Callable[[np.ndarray], np.ndarray], *, max_rows: int = 32):
        self.decode_function = decode
        self.max_rows = max_rows
        self.batches = 0
        self.rows = 0
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._waiting: list[_Job] = []  # taken from the queue, left for a later batch (only the worker touches it)
        self._worker: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def decode(self, vectors: np.ndarray) -> np.ndarray:
        """Images of `vectors` (m, N), decoded in a batch shared with concurrent callers."""
        job = _Job(np.ascontiguousarray(vectors, dtype=np.float32))
        if len(job.vectors) == 0:
            return self.decode_function(job.vectors)
        self._start()
        self._queue.put(job)
        return job.future.result()

    def _start(self) -> None:
        with self._start_lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._serve, name="latentatlas-decode", daemon=True)
                self._worker.start()

    def _take_batch(self) -> list[_Job]:
        """The next batch: the oldest job queued, then the others smallest first (oldest first among equals),
        up to `max_rows` vectors."""
        if not self._waiting:
            self._waiting.append(self._queue.get())
        while True:
            try:
                self._waiting.append(self._queue.get_nowait())
            except queue.Empty:
                break
        oldest, *others = self._waiting  # the list is kept in arrival order
        jobs, rows = [oldest], len(oldest.vectors)
        for job in sorted(others, key=lambda job: len(job.vectors)):  # stable: arrival order among equal sizes
            if rows + len(job.vectors) > self.max_rows:
                break
            jobs.append(job)
            rows += len(job.vectors)
        taken = {id(job) for job in jobs}
        self._waiting = [job for job in self._waiting if id(job) not in taken]
        return jobs

    def _serve(self) -> None:
        while True:
            jobs = self._take_batch()
            try:
                images = self.decode_function(np.concatenate([job.vectors for job in jobs]))
            except BaseException as exc:  # every waiting request gets the error, the thread lives on
                for job in jobs:
                    job.future.set_exception(exc)
                continue
            self.batches += 1
            self.rows += len(images)
            start = 0
            for job in jobs:
                job.future.set_result(images[start : start + len(job.vectors)])
                start += len(job.vectors)
