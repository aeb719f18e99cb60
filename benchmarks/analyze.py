"""Time and peak memory of the chunked z-point analysis on large synthetic stores.

For every size a float32 (n, N) store is written chunkwise to a temporary .npy (a correlated Gaussian
with an offset mean, like an encoder's z-points), memory-mapped, analysed in a fresh subprocess (so its
peak resident memory is its own), then deleted. Reported per size: fit and figure times, the resident
set before the fit (after imports), the process's peak resident set (ru_maxrss, figures included) and
the tracemalloc peak of the fit (numpy buffers).

    python benchmarks/analyze.py                      # 200k and 1M rows, N = 256
    python benchmarks/analyze.py --sizes 50000 --dim 64 --figures
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_store(path: Path, n: int, dim: int, seed: int = 0, chunk: int = 65536) -> None:
    """A correlated Gaussian with an offset mean, generated and written chunk by chunk."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim) * rng.uniform(0.3, 1.5, dim)
    mean = rng.normal(0.0, 0.5, dim)
    mean[rng.choice(dim, max(1, dim // 32), replace=False)] += rng.choice([-3.0, 3.0], max(1, dim // 32))
    store = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        store[start : start + m] = (mean + rng.standard_normal((m, dim)) @ mixing).astype(np.float32)
    store.flush()
    del store


def measure(path: Path, figures: bool, chunk_size: int) -> dict:
    """Run in the child process: analyse the store and report time and memory."""
    import resource
    import tracemalloc

    from latentatlas.analysis import LatentAnalysis, ZView
    from latentatlas.io import load_npy
    from latentatlas.pipelines.analyze import _write_figures

    z = load_npy(path)
    with open("/proc/self/statm") as statm:  # current resident set (pages), unlike ru_maxrss's high-water mark
        base_rss = int(statm.read().split()[1]) * resource.getpagesize() / 1024
    tracemalloc.start()  # only around the fit: it would slow matplotlib's many small allocations
    start = time.perf_counter()
    analysis = LatentAnalysis(chunk_size=chunk_size).fit(z)
    fit_seconds = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    figure_seconds = 0.0
    if figures:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            _write_figures(analysis, ZView(z), Path(folder), 5000, 200, 24, 0)
        figure_seconds = time.perf_counter() - start
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    summary = analysis.to_dict()
    return {
        "n": int(z.shape[0]),
        "dim": int(z.shape[1]),
        "store_mb": path.stat().st_size / 2**20,
        "fit_s": fit_seconds,
        "figures_s": figure_seconds,
        "peak_rss_mb": peak_rss / 1024,
        "baseline_rss_mb": base_rss / 1024,
        "tracemalloc_peak_mb": traced_peak / 2**20,
        "b_match": summary["radii"]["b_match"],
        "origin_percentile": summary["origin"]["percentile"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200000,1000000", help="comma-separated row counts")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--chunk-size", type=int, default=16384)
    parser.add_argument("--figures", action="store_true", help="also draw the figures")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--write", nargs=2, metavar=("PATH", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child), args.figures, args.chunk_size)))
        return
    if args.write:
        write_store(Path(args.write[0]), int(args.write[1]), args.dim)
        return
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    print(
        f"{'rows':>9} {'N':>4} {'store MB':>9} {'fit s':>7} {'figures s':>10} {'RSS before MB':>14} "
        f"{'peak RSS MB':>12} {'tracemalloc MB':>15}"
    )
    with tempfile.TemporaryDirectory(prefix="latentatlas-bench-") as folder:
        for n in sizes:
            path = Path(folder) / f"z{n}.npy"
            # written by its own process: Linux carries a parent's peak RSS over into a child's ru_maxrss,
            # and writing the store would inflate it by the store's size
            subprocess.run([sys.executable, __file__, "--write", str(path), str(n), "--dim", str(args.dim)], check=True)
            command = [sys.executable, __file__, "--child", str(path), "--chunk-size", str(args.chunk_size)]
            if args.figures:
                command.append("--figures")
            result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            path.unlink()
            print(
                f"{result['n']:>9} {result['dim']:>4} {result['store_mb']:>9.0f} {result['fit_s']:>7.1f} "
                f"{result['figures_s']:>10.1f} {result['baseline_rss_mb']:>14.0f} {result['peak_rss_mb']:>12.0f} "
                f"{result['tracemalloc_peak_mb']:>15.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
