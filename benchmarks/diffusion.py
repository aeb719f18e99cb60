"""The diffusion sampler's cost: training steps/s, the projected fit of celeba-10k's z-points, sampling vectors/s
and the held-out log-likelihood (probability-flow ODE with a Hutchinson trace) per 1,000 points.

It trains on a run's training z-points (`--run RUN`) or on a synthetic 9,000 x 256 set with an autoencoder's
spectrum (variances falling over three decades), for `--epochs` epochs of the default batch, then samples
and scores. The fit of the default `epochs` (100, early stopping may end it sooner) is projected from the
measured epoch time. Torch's thread count is what `--threads` says (default: 1, as on a shared machine).

    python benchmarks/diffusion.py                         # synthetic 9000 x 256, width 256, 4 blocks
    python benchmarks/diffusion.py --run /tmp/run --width 512 --threads 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from latentatlas.samplers import EpochReport
from latentatlas.samplers.diffusion import Diffusion


def training_points(run: str | None, n: int, dim: int) -> np.ndarray:
    if run is None:
        rng = np.random.default_rng(0)
        spread = np.logspace(0.5, -1.0, dim)  # the bulk of a trained autoencoder: a few wide axes, many narrow
        mixing = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
        return ((rng.standard_normal((n, dim)) * spread) @ mixing).astype(np.float32)
    from latentatlas.store import Run  # a benchmark script may read a run folder

    return np.asarray(Run(run).zpoints("train"), dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="train on this run's training z-points (default: synthetic 9000 x 256)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs to time (default 3)")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20, help="Heun steps when sampling and scoring")
    parser.add_argument("-n", type=int, default=1000, help="vectors to sample and points to score")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    z = training_points(args.run, 9000, 256)
    reports: list[EpochReport] = []
    options = {"width": args.width, "blocks": args.blocks, "steps": args.steps}
    sampler = Diffusion(epochs=args.epochs, patience=args.epochs, **options)
    started = time.perf_counter()
    sampler.fit(z, progress=reports.append)
    fit_seconds = time.perf_counter() - started
    train_rows = len(z) - round(0.1 * len(z))
    steps_per_epoch = -(-train_rows // int(sampler.batch_size))
    epoch_seconds = float(np.median([r.seconds for r in reports]))

    started = time.perf_counter()
    sampler.sample(args.n, seed=0)
    sample_seconds = time.perf_counter() - started
    started = time.perf_counter()
    sampler.score_samples(z[: args.n])
    score_seconds = time.perf_counter() - started

    source = args.run or "synthetic"
    print(f"diffusion sampler, {source}: {len(z)} x {z.shape[1]} z-points, {options}, {args.threads} thread(s)")
    print(
        f"training: {steps_per_epoch / epoch_seconds:.1f} steps/s (batch {sampler.batch_size}), "
        f"{epoch_seconds:.2f} s per epoch (median of {len(reports)})"
    )
    print(
        f"fit of {args.epochs} epochs incl. whitening and the held-out likelihood: {fit_seconds:.1f} s; "
        f"100 epochs (the default bound) projected: {100 * epoch_seconds / 60:.1f} min"
    )
    print(f"sampling: {args.n / sample_seconds:.0f} vectors/s ({args.steps} Heun steps)")
    print(f"log-likelihood (probability-flow ODE, Hutchinson): {score_seconds:.1f} s per {args.n} points")


if __name__ == "__main__":
    main()
