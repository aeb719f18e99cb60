"""Benchmark the evaluation scores.

1. k-NN scores (precision, recall, density, coverage) of `latentatlas.evaluation.knn_scores` (float32
   matrix products in blocks with a running top-k, float64 decisions near every radius: exact) against
   the reference implementation itself, the `prdc` package of Naeem et al. (clovaai; full float32
   distance matrices via scikit-learn), on the same float32 data: time, peak memory (resident, above
   the data and the imported modules), the speed ratio, and whether all four scores are identical.
   Each measurement runs in its own subprocess (its own peak resident memory), once with one thread
   (OMP/OpenBLAS/MKL/torch; prdc still asks joblib for 8 threads in its pairwise distances) and once
   with the default threads.
   `prdc` is a benchmark-only dependency, installed with the dev extras (`make install`).
2. InceptionV3 throughput (images/s) on the run's kind of images (synthetic 64x64 faces), and the time
   of FID and KID on 2048-d features.

    python benchmarks/metrics.py                       # 10k and 20k points x 256 dims
    python benchmarks/metrics.py --sizes 10000,50000 --threads 1
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

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _data(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((n, dim), dtype=np.float32)
    fake = (rng.standard_normal((n, dim), dtype=np.float32) * 1.05 + 0.02).astype(np.float32)
    return real, fake


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _worker(args: argparse.Namespace) -> None:
    """One measurement in this process; prints a JSON line."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    real, fake = _data(args.n, args.dim, args.seed)
    # Imported before the baseline, so the memory column is the computation's own, not the imports'.
    if args.worker == "prdc":
        from prdc import compute_prdc
    else:
        from latentatlas.evaluation import knn_scores
    baseline = _rss_mb()
    device = "cpu"
    started = time.perf_counter()
    if args.worker == "prdc":
        scores = {key: float(value) for key, value in compute_prdc(real, fake, nearest_k=args.k).items()}
    else:
        device = "cuda" if torch.cuda.is_available() and not args.threads else "cpu"
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        scores = knn_scores(real, fake, k=args.k, chunk_size=args.chunk_size, device=device)
        if device == "cuda":
            torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    result = {"seconds": seconds, "peak_mb": max(peak - baseline, 0.0), "scores": scores, "device": device}
    if device == "cuda":
        result["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(result))


def _measure(kind: str, n: int, threads: int, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--worker", kind, "--n", str(n), "--dim", str(args.dim), "--k", str(args.k)]
    command += ["--chunk-size", str(args.chunk_size), "--seed", str(args.seed), "--worker-threads", str(threads)]
    env = dict(os.environ)
    for name in _THREAD_VARIABLES:
        if threads:
            env[name] = str(threads)
        else:
            env.pop(name, None)
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        why = f"killed by signal {-done.returncode}" if done.returncode < 0 else f"exit status {done.returncode}"
        print(f"  {kind} worker at n={n} failed ({why}; out of memory?) {done.stderr.strip()[-500:]}", flush=True)
        return {}
    return json.loads(done.stdout.strip().splitlines()[-1])


def benchmark_knn(args: argparse.Namespace) -> list[dict]:
    print(f"k-NN scores: n real = n fake float32 points x {args.dim} dims, k={args.k}, chunk {args.chunk_size}")
    header = (
        f"{'n':>7} {'threads':>8} {'latentatlas s':>13} {'MB':>6} {'prdc s':>8} {'MB':>6} {'speed-up':>8}  identical"
    )
    print(header, flush=True)
    rows = []
    for n in args.sizes:
        for threads in args.threads:
            ours = _measure("latentatlas", n, threads, args)
            reference = _measure("prdc", n, threads, args) if ours else {}
            if not ours or not reference:
                continue
            same = ours["scores"] == reference["scores"]
            differing = {key: (ours["scores"][key], reference["scores"][key]) for key in ours["scores"]}
            print(
                f"{n:>7} {threads or 'default':>8} {ours['seconds']:>13.2f} {ours['peak_mb']:>6.0f} "
                f"{reference['seconds']:>8.2f} {reference['peak_mb']:>6.0f} "
                f"{reference['seconds'] / ours['seconds']:>7.2f}x  "
                + ("yes" if same else f"no: {differing}")
                + (f" (latentatlas on {ours['device']})" if ours["device"] != "cpu" else ""),
                flush=True,
            )
            rows.append({"n": n, "threads": threads or "default", "latentatlas": ours, "prdc": reference})
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
    parser.add_argument("--threads", default="1,0", help="thread counts to measure; 0 = default (default 1,0)")
    parser.add_argument("--images", type=int, default=64, help="images for the Inception throughput (0: skip)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--features", type=int, default=1000, help="feature rows per set for FID/KID timing")
    parser.add_argument("--kid-subsets", type=int, default=100)
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--worker", choices=["latentatlas", "prdc"], help=argparse.SUPPRESS)
    parser.add_argument("--worker-threads", dest="worker_threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.threads = args.worker_threads
        _worker(args)
        return
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.threads = [int(t) for t in args.threads.split(",") if t.strip()]
    results = {"knn": benchmark_knn(args)}
    if args.images > 0:
        results["inception"] = benchmark_inception(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
