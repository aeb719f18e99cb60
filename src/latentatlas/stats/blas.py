"""One BLAS thread for the numeric primitives."""

from __future__ import annotations

import functools

from threadpoolctl import threadpool_limits


def single_thread_blas():
    """One BLAS thread. N x N decompositions gain nothing from threads, the chunk products little
    (the passes are bound by reading the store); and on a busy machine OpenBLAS's spinning threads
    slow a 256 x 256 eigh or Cholesky down a hundredfold and the chunk products eightfold."""
    return threadpool_limits(limits=1, user_api="blas")


def one_blas_thread(method):
    """Decorator: run a fit method under `single_thread_blas`."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with single_thread_blas():
            return method(*args, **kwargs)

    return wrapper
