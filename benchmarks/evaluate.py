"""InceptionV3 features through both routes in one run: ONNX Runtime (the CPU default) and TorchScript.

    python benchmarks/evaluate.py [--images 256] [--size 64] [--threads 2] [--batch 32] [--repeats 2]

Images are synthetic faces (`latentatlas.data.synthetic_faces`). Each route loads its model and runs one
batch first (the ONNX export, once per weights, happens then), then is timed `--repeats` times over the
images, alternating routes so that a change of machine load hits both; the best time of each counts.
Prints images/s of each route, their ratio, the largest feature difference and the load average (this
machine is shared: say so beside any number).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from latentatlas.data import synthetic_faces
from latentatlas.evaluation.inception import fid, inception_features

ROUTES = ("onnx", "torchscript")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime intra-op threads")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images, _ = synthetic_faces(args.images, image_size=args.size, seed=0)
    features, best = {}, {route: float("inf") for route in ROUTES}
    for route in ROUTES:
        inception_features(images[: args.batch], batch_size=args.batch, device="cpu", backend=route)
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
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
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
