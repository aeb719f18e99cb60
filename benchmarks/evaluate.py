"""Evaluation speed: InceptionV3 through both routes, or the issue's evaluation targets on a run.

    python benchmarks/evaluate.py [--images 256] [--size 64] [--threads 2] [--batch 32] [--repeats 2]
    python benchmarks/evaluate.py --targets RUN [--n 1000] [--n-small 500] [--only all,all-warm,four]

Inception (the default mode): images are synthetic faces (`latentatlas.data.synthetic_faces`). Each route
loads its model and runs one batch first (the ONNX export, once per weights, happens then), then is timed
`--repeats` times over the images, alternating routes so that a change of machine load hits both; the best
time of each counts. Prints images/s of each route, their ratio, the largest feature difference and the
load average (this machine is shared: say so beside any number).

Targets (`--targets RUN`): each evaluation runs as its own `latentatlas evaluate` process on a copy of RUN
in a temporary folder, without its cache/, evaluation/ and evaluation-entries/ (cold: nothing cached but
the ONNX export of Inception, made once per installation), its progress on stderr as a user sees it:

* `all`: every sampler plus the two reference rows at `--n` with the default (full) instruments, cold
  (target: 30 min on the 2-core CPU);
* `all-warm`: the same command again on the same copy (its feature caches filled and its slow sampler fits
  kept; target: 20 min); without `all`, the cold pass runs first, untimed, to warm the copy;
* `four`: `--samplers uniform-box,gaussian -n <--n-small>` on a fresh copy, cold (target: 400 s).

Prints each command, its wall time beside its target, and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from latentatlas.data import synthetic_faces
from latentatlas.evaluation.inception import fid, inception_features

ROUTES = ("onnx", "torchscript")
TARGETS = {"all": 30 * 60, "all-warm": 20 * 60, "four": 400}  # seconds, on the 2-core CPU at the n
FRESH = ("cache", "evaluation", "evaluation-entries")  # what a cold evaluation must not find


def _load() -> str:
    return f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)"


def inception(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    images, _ = synthetic_faces(args.images, image_size=args.size, seed=0)
    features, best = {}, {route: float("inf") for route in ROUTES}
    for route in ROUTES:
        inception_features(images[: args.batch], batch_size=args.batch, device="cpu", backend=route)
    print(f"before: {_load()}", flush=True)
    for _ in range(args.repeats):
        for route in ROUTES:
            started = time.perf_counter()
            features[route] = inception_features(images, batch_size=args.batch, device="cpu", backend=route)
            best[route] = min(best[route], time.perf_counter() - started)
    for route in ROUTES:
        print(f"{route:<12} {args.images / best[route]:>7.1f} images/s ({best[route]:.1f} s for {args.images})")
    print(f"ratio onnx / torchscript: {best['torchscript'] / best['onnx']:.2f}x")
    half = args.images // 2
    fids = {route: fid(features[route][:half], features[route][half:]) for route in ROUTES}
    difference = np.abs(features["onnx"] - features["torchscript"]).max()
    print(f"largest feature difference {difference:.2e}; FID difference {abs(fids['onnx'] - fids['torchscript']):.2e}")
    print(f"after: {_load()}")


def _fresh_copy(run: Path, parent: Path) -> Path:
    copy = parent / f"{run.name}-{len(list(parent.iterdir()))}"
    shutil.copytree(run, copy, ignore=lambda folder, names: [n for n in names if Path(folder) == run and n in FRESH])
    return copy


def _timed(label: str, command: list[str]) -> float:
    print(f"\n== {label}: {' '.join(command)}; {_load()}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{label} failed with exit status {done.returncode}")
    return seconds


def targets(args: argparse.Namespace) -> None:
    run = Path(args.targets).resolve()
    if not (run / "zpoints").exists():
        raise SystemExit(f"{run} is not a run with z-points")
    only = args.only.split(",")
    unknown = set(only) - set(TARGETS)
    if unknown:
        raise SystemExit(f"--only takes {', '.join(TARGETS)}; got {', '.join(sorted(unknown))}")
    evaluate = [sys.executable, "-m", "latentatlas", "evaluate"]
    results: list[tuple[str, str, float]] = []
    print(f"before: {_load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="latentatlas-targets-") as tmp:
        parent = Path(tmp)
        if "all" in only or "all-warm" in only:
            copy = _fresh_copy(run, parent)
            command = [*evaluate, str(copy), "-n", str(args.n)]
            shown = " ".join(["latentatlas evaluate", "RUN", "-n", str(args.n)])
            cold = _timed("every sampler, cold" + ("" if "all" in only else " (warming the copy, not timed)"), command)
            if "all" in only:
                results.append(("all", f"{shown} (cold)", cold))
            if "all-warm" in only:
                results.append(("all-warm", f"{shown} (warm)", _timed("every sampler, warm", command)))
        if "four" in only:
            copy = _fresh_copy(run, parent)
            command = [*evaluate, str(copy), "--samplers", "uniform-box,gaussian", "-n", str(args.n_small)]
            shown = f"latentatlas evaluate RUN --samplers uniform-box,gaussian -n {args.n_small} (cold)"
            results.append(("four", shown, _timed("4 rows, cold", command)))
    print(f"\nrun {run}; after: {_load()}")
    for key, shown, seconds in results:
        scale = "" if (args.n, args.n_small) == (1000, 500) else " (target set for n = 1,000 / 500)"
        print(f"{seconds:>8.0f} s  target {TARGETS[key]:>5} s{scale}  {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime intra-op threads")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--targets", metavar="RUN", help="time the issue's evaluation targets on a copy of RUN")
    parser.add_argument("--n", type=int, default=1000, help="n of the every-sampler evaluation (targets)")
    parser.add_argument("--n-small", type=int, default=500, help="n of the 4-row evaluation (targets)")
    parser.add_argument("--only", default="all,all-warm,four", help="which targets, comma-separated")
    args = parser.parse_args()
    if args.targets:
        targets(args)
    else:
        inception(args)


if __name__ == "__main__":
    main()
