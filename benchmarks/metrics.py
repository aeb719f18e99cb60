"""Benchmark the evaluation scores.

1. k-NN scores (precision, recall, density, coverage) of `latentatlas.evaluation.knn_scores` (exact,
   float64, torch, in blocks) against a straightforward full-matrix NumPy / scikit-learn version
   (`sklearn.metrics.pairwise_distances`, as in Naeem et al.'s prdc code) on the same data: time,
   peak memory, their ratio, and an equality check of all four scores.
   Each measurement runs in its own subprocess so that its peak resident memory is its own.
   The full-matrix version needs about 3.5 x n² x 8 bytes at once (distance matrix, np.partition's
   copy, boolean masks: 2.7 GB at n = 10,000); it only runs where that fits into
   `--naive-memory-fraction` of the available memory and n <= --naive-max (20,000 by default: ~11 GB),
   and the benchmark says why when it skips it.
2. InceptionV3 throughput (images/s) on the run's kind of images (synthetic 64x64 faces), and the time
   of FID and KID on 2048-d features.

    python benchmarks/metrics.py                       # 10k and 20k points x 256 dims, ~3-4 min on 2 cores
    python benchmarks/metrics.py --sizes 10000,50000,200000 --naive-max 20000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _data(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((n, dim), dtype=np.float32)
    fake = (rng.standard_normal((n, dim), dtype=np.float32) * 1.05 + 0.02).astype(np.float32)
    return real, fake


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _naive_scores(real: np.ndarray, fake: np.ndarray, k: int) -> dict:
    from sklearn.metrics import pairwise_distances

    real, fake = real.astype(np.float64), fake.astype(np.float64)
    # A copy as the second argument: numpy turns X @ X.T into BLAS syrk, and the multithreaded syrk of
    # the scipy-openblas 0.3.31 that numpy 2.4 bundles segfaults at 20000 x 256. The self-distances then
    # come out ~1e-7 instead of exactly 0, far below any k-th neighbour distance.
    real_radii = np.partition(pairwise_distances(real, real.copy(), n_jobs=1), k, axis=1)[:, k]
    fake_radii = np.partition(pairwise_distances(fake, fake.copy(), n_jobs=1), k, axis=1)[:, k]
    d = pairwise_distances(real, fake, n_jobs=1)
    inside = d < real_radii[:, None]
    return {
        "precision": float(inside.any(axis=0).mean()),
        "recall": float((d < fake_radii[None, :]).any(axis=1).mean()),
        "density": float(inside.sum() / (k * len(fake))),
        "coverage": float((d.min(axis=1) < real_radii).mean()),
    }


def _worker(args: argparse.Namespace) -> None:
    """One measurement in this process; prints a JSON line."""
    import torch

    real, fake = _data(args.n, args.dim, args.seed)
    baseline = _rss_mb()
    started = time.perf_counter()
    if args.worker == "naive":
        scores = _naive_scores(real, fake, args.k)
        device = "cpu"
    else:
        from latentatlas.evaluation import knn_scores

        device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        scores = knn_scores(real, fake, k=args.k, chunk_size=args.chunk_size, device=device)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    result = {"seconds": seconds, "peak_mb": max(peak - baseline, 0.0), "scores": scores, "device": device}
    if device == "cuda":
        result["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(result))


def _measure(kind: str, n: int, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        kind,
        "--n",
        str(n),
        "--dim",
        str(args.dim),
        "--k",
        str(args.k),
        "--chunk-size",
        str(args.chunk_size),
        "--seed",
        str(args.seed),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        why = f"killed by signal {-done.returncode}" if done.returncode < 0 else f"exit status {done.returncode}"
        print(f"  {kind} worker at n={n} failed ({why}; out of memory?) {done.stderr.strip()[-500:]}", flush=True)
        return {}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _available_bytes() -> int:
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def benchmark_knn(args: argparse.Namespace) -> list[dict]:
    print(f"k-NN scores: n real = n fake points x {args.dim} dims, k={args.k}, chunk {args.chunk_size}", flush=True)
    print(
        f"{'n':>8} {'chunked s':>10} {'chunked MB':>11} {'naive s':>9} {'naive MB':>9} {'time ratio':>10} {'mem ratio':>9}  scores"
    )
    rows = []
    for n in args.sizes:
        chunked = _measure("chunked", n, args)
        if not chunked:
            continue
        naive_bytes = int(3.5 * n * n * 8)  # measured: ~3.3 n² doubles (distances, partition copy, masks)
        reason = None
        if n > args.naive_max:
            reason = f"n > --naive-max {args.naive_max}"
        elif naive_bytes > args.naive_memory_fraction * _available_bytes():
            reason = f"needs ~{naive_bytes / 2**30:.1f} GiB, {_available_bytes() / 2**30:.1f} GiB available"
        naive = None if reason else _measure("naive", n, args)
        if reason is None and not naive:
            reason, naive = "the full-matrix worker failed", None
        if naive is not None and naive["scores"] != chunked["scores"]:
            raise SystemExit(f"scores differ at n={n}: chunked {chunked['scores']} vs naive {naive['scores']}")
        scores = " ".join(f"{key}={value:.4f}" for key, value in chunked["scores"].items())
        if naive is None:
            print(
                f"{n:>8} {chunked['seconds']:>10.1f} {chunked['peak_mb']:>11.0f} {'-':>9} {'-':>9} {'-':>10} {'-':>9}  "
                f"{scores}  (full-matrix version skipped: {reason})",
                flush=True,
            )
        else:
            print(
                f"{n:>8} {chunked['seconds']:>10.1f} {chunked['peak_mb']:>11.0f} {naive['seconds']:>9.1f} "
                f"{naive['peak_mb']:>9.0f} {naive['seconds'] / chunked['seconds']:>10.2f} "
                f"{naive['peak_mb'] / max(chunked['peak_mb'], 1.0):>9.1f}  {scores}  (identical: yes)",
                flush=True,
            )
        rows.append({"n": n, "chunked": chunked, "naive": naive, "naive_skipped": reason})
    return rows


def benchmark_inception(args: argparse.Namespace) -> dict:
    import torch

    from latentatlas.data import synthetic_faces
    from latentatlas.evaluation import fid, inception_features, kid

    images, _ = synthetic_faces(args.images, image_size=64, seed=0)
    inception_features(images[:2])  # load the network and warm up TorchScript before timing
    started = time.perf_counter()
    features = inception_features(images, batch_size=args.batch_size)
    seconds = time.perf_counter() - started
    device = "cuda" if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
    print(
        f"\nInceptionV3 features: {args.images} images 64x64 -> 299x299 in {seconds:.1f} s on {device}: "
        f"{args.images / seconds:.1f} images/s"
    )
    rng = np.random.default_rng(0)
    a = rng.standard_normal((args.features, 2048)) + features.mean(axis=0)
    b = rng.standard_normal((args.features, 2048)) * 1.1 + features.mean(axis=0)
    started = time.perf_counter()
    fid(a, b)
    fid_seconds = time.perf_counter() - started
    started = time.perf_counter()
    kid(a, b, n_subsets=args.kid_subsets)
    kid_seconds = time.perf_counter() - started
    print(
        f"FID on 2 x {args.features} features: {fid_seconds:.2f} s; KID ({args.kid_subsets} subsets of "
        f"{min(1000, args.features)}): {kid_seconds:.2f} s"
    )
    return {
        "images": args.images,
        "seconds": seconds,
        "images_per_s": args.images / seconds,
        "device": device,
        "fid_seconds": fid_seconds,
        "kid_seconds": kid_seconds,
        "features": args.features,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,20000", help="comma-separated point counts (default 10000,20000)")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--chunk-size", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--naive-max", type=int, default=20000, help="largest n for the full-matrix version")
    parser.add_argument(
        "--naive-memory-fraction",
        type=float,
        default=0.6,
        help="run the full-matrix version only if 2 n² x 8 bytes fit in this share of free memory",
    )
    parser.add_argument("--images", type=int, default=64, help="images for the Inception throughput (0: skip)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--features", type=int, default=1000, help="feature rows per set for FID/KID timing")
    parser.add_argument("--kid-subsets", type=int, default=100)
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--worker", choices=["chunked", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    results = {"knn": benchmark_knn(args)}
    if args.images > 0:
        results["inception"] = benchmark_inception(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
