"""Fragmentation on labelled data: do the regions of the z-points follow the digits, do a single Gaussian's
samples fall into the voids between them and decode to blends, and do per-region samples decode to digits?

    OMP_NUM_THREADS=1 python examples/digits_fragmentation.py --out runs/digits [--epochs 20] [--latent-dim 32]
        [--image-size 32] [--channels 16,32,64] [--max-regions 15] [-n 450] [--seed 0]

Trains a small autoencoder on the built-in `digits` source (scikit-learn's 1,797 handwritten digits,
upscaled; 25 % held out), encodes it, detects the regions of the training z-points (`analysis.Regions`:
mixture BIC sweep on 10 principal axes, cross-checked by HDBSCAN) and compares them with the digit labels
by the adjusted Rand index (ARI). The BIC picks its own number of regions among 1..--max-regions (15 here,
not the analysis default 6, so that ten digits could show as ten regions; the script says when the choice
hits the cap); because it need not be 10, the ARI of a mixture forced to 10 components on the same axes is
printed as a second, separately labelled number.
Then `evaluate_run` scores the `gaussian` and `regions` samplers (quick instruments, no face rate) against
the held-out digits: the void share (draws in no region's core) and the class instrument (a logistic
regression trained on the real training digits: confident share, coverage, class distribution), each with
its 95 % bootstrap interval. An existing run in --out is reused (trained and encoded once).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

from latentatlas.analysis import Regions
from latentatlas.checkpoint import latest_checkpoint
from latentatlas.config import DIGITS_SOURCE, DataConfig, TrainConfig
from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.table import Score
from latentatlas.model import ModelConfig
from latentatlas.pipelines.evaluate import evaluate_run
from latentatlas.store import Run, encode_run
from latentatlas.train import train

DIGIT_CLASSES = 10
COLUMNS = ("void_share", "class_confident", "class_coverage", "class_tv", "class_accuracy", "log_likelihood")


def digits_fragmentation(
    out: str | Path,
    *,
    epochs: int = 20,
    latent_dim: int = 32,
    image_size: int = 32,
    channels: tuple[int, ...] = (16, 32, 64),
    max_regions: int = 15,
    n: int = 450,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (unless done), encode, find the regions, evaluate both samplers; returns every number printed."""
    started = time.perf_counter()
    run_dir = Path(out)
    if latest_checkpoint(run_dir) is None:
        train(
            run_dir,
            DataConfig(source=DIGITS_SOURCE, image_size=image_size),
            ModelConfig(image_size=image_size, channels=channels, latent_dim=latent_dim),
            TrainConfig(epochs=epochs, val_fraction=0.25, seed=seed),
            progress=progress,
        )
    run = Run(run_dir)
    if not run.has_zpoints():
        encode_run(run, progress=progress)
    meta = run.metadata()
    train_rows = meta["subset"].to_numpy() == "train"
    z = run.zpoints("train")
    labels = meta["class"].to_numpy()[train_rows]

    regions = Regions(max_regions=max_regions, random_state=seed).fit(z)
    model = regions.model()
    forced = GaussianMixture(DIGIT_CLASSES, covariance_type="full", n_init=2, random_state=seed)
    forced_labels = forced.fit(model.project(z)).predict(model.project(z))
    evaluation = evaluate_run(
        run, samplers=["gaussian", "regions"], n=n, seed=seed, instruments="quick", faces=False, write=False,
        progress=progress, sampler_options={"regions": {"max_regions": max_regions}}, max_regions=max_regions,
    )  # fmt: skip
    return {
        "run": str(run.path),
        "val_loss": float(run.train_state()["val_loss"]),
        "train_points": int(len(z)),
        "n_regions": regions.n_regions_,
        "max_regions": max_regions,
        "bic": regions.bic_,
        "hdbscan_regions": regions.hdbscan_n_regions_,
        "hdbscan_noise": regions.hdbscan_noise_share_,
        "ari_regions_digits": float(adjusted_rand_score(labels, regions.labels_)),
        "ari_forced10_digits": float(adjusted_rand_score(labels, forced_labels)),
        "ari_mixture_hdbscan": regions.adjusted_rand_,
        "one_gaussian_void_share": regions.void_share_,
        "finding": regions.finding().sentence(),
        "rows": {row.name: {key: row.scores.get(key) for key in COLUMNS} for row in evaluation.rows},
        "n": evaluation.settings["n"],
        "seconds": time.perf_counter() - started,
    }


def report(numbers: dict[str, Any]) -> str:
    """The numbers as Markdown: the regions against the digits, then one row per evaluated set."""
    found = numbers["n_regions"]
    lines = [
        f"run {numbers['run']}: validation MSE {numbers['val_loss']:.5f}, {numbers['train_points']} training z-points",
        "",
        "| regions (BIC) | HDBSCAN regions (noise) | ARI regions vs digits | ARI k = 10 forced vs digits "
        "| ARI mixture vs HDBSCAN | one Gaussian's draws in voids |",
        "|---|---|---|---|---|---|",
        f"| {found} | {numbers['hdbscan_regions']} ({100 * numbers['hdbscan_noise']:.0f} % noise) "
        f"| {numbers['ari_regions_digits']:.3f} | {numbers['ari_forced10_digits']:.3f} "
        f"| {_number(numbers['ari_mixture_hdbscan'])} | {numbers['one_gaussian_void_share']:.3f} |",
        "",
    ]
    if found != DIGIT_CLASSES:
        lines += [f"The BIC finds {found} regions, not {DIGIT_CLASSES}: the forced k = 10 ARI is the second number."]
        lines += [""]
    if found == numbers["max_regions"]:
        lines += [f"The BIC's choice is the largest count tried (--max-regions {found}): more might fit better.", ""]
    bic = ", ".join(f"{k}: {value:.0f}" for k, value in numbers["bic"])
    lines += [f"BIC per number of regions: {bic}", ""]
    lines += [
        f"evaluation at n = {numbers['n']} (95 % bootstrap intervals; class_accuracy only where the digit is known):",
        "",
        "| row | " + " | ".join(COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for name, scores in numbers["rows"].items():
        lines.append(f"| {name} | " + " | ".join(_cell(scores[key]) for key in COLUMNS) + " |")
    lines += ["", numbers["finding"], f"({numbers['seconds']:.0f} s)"]
    return "\n".join(lines)


def _cell(score: Score | None) -> str:
    return "–" if score is None else score.cell()


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", required=True, help="run folder (reused when it already holds a trained run)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--channels", default="16,32,64", help="conv channels per stage (default 16,32,64)")
    parser.add_argument("--max-regions", type=int, default=15, help="most regions the BIC sweep tries (default 15)")
    parser.add_argument("-n", type=int, default=450, help="samples per sampler (capped at the held-out size)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        channels = tuple(int(c) for c in args.channels.split(","))
        numbers = digits_fragmentation(
            args.out, epochs=args.epochs, latent_dim=args.latent_dim, image_size=args.image_size,
            channels=channels, max_regions=args.max_regions, n=args.n, seed=args.seed,
        )  # fmt: skip
    except (LatentAtlasError, ValueError) as exc:
        print(f"digits_fragmentation: {exc}", file=sys.stderr)
        return 2
    print(report(numbers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
