"""GPU figures: autoencoder training steps/s at 64 and 128 px (fp32 vs. bf16 autocast, eager vs. torch.compile)
and exact k-NN precision/recall/density/coverage on 200k x 256 z-points.

Prints one line per configuration. Without a GPU it says so and exits 0 (CPU figures are in the other scripts).
Run: python benchmarks/gpu.py [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np
import torch
import torch.nn.functional as F

from latentatlas.evaluation import knn_scores
from latentatlas.model import Autoencoder, ModelConfig


def _sync() -> None:
    torch.cuda.synchronize()


def train_images_per_s(image_size: int, bf16: bool, compiled: bool, batch: int, steps: int) -> float:
    torch.manual_seed(0)
    model = Autoencoder(ModelConfig(image_size=image_size)).cuda().to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    step_model = torch.compile(model) if compiled else model
    data = torch.randint(0, 256, (batch * 8, image_size, image_size, 3), dtype=torch.uint8, device="cuda")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def step(i: int) -> None:
        x = data[(i % 8) * batch : (i % 8 + 1) * batch].permute(0, 3, 1, 2).float().div_(255)
        with autocast:
            loss = F.mse_loss(step_model(x).float(), x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for i in range(10 if compiled else 3):  # compilation and cudnn autotuning happen here
        step(i)
    _sync()
    started = time.perf_counter()
    for i in range(steps):
        step(i)
    _sync()
    return steps * batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer steps and 50k points for k-NN")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no GPU: nothing to measure here")
        return
    torch.backends.cudnn.benchmark = True
    print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}")
    steps = 20 if args.quick else 100
    for image_size in (64, 128):
        base = None
        for bf16 in (False, True):
            for compiled in (False, True):
                rate = train_images_per_s(image_size, bf16, compiled, batch=256, steps=steps)
                base = base or rate
                print(
                    f"train {image_size}px batch 256 {'bf16' if bf16 else 'fp32'} "
                    f"{'compiled' if compiled else 'eager   '}: {rate:9.0f} images/s  ({rate / base:.2f}x fp32 eager)"
                )
    n = 50_000 if args.quick else 200_000
    rng = np.random.default_rng(0)
    real = rng.normal(size=(n, 256)).astype(np.float32)
    fake = (rng.normal(size=(n, 256)) * 1.1 + 0.05).astype(np.float32)
    started = time.perf_counter()
    scores = knn_scores(real, fake, k=5, device="cuda")
    _sync()
    seconds = time.perf_counter() - started
    print(f"k-NN scores {n:,} x {n:,} x 256 (k=5) on the GPU: {seconds:.1f} s  {scores}")


if __name__ == "__main__":
    main()
