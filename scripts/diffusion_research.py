"""One research row of docs/diffusion.md: fit the diffusion sampler on a run's training z-points (optionally
with the z-points of the horizontally flipped training images added), then score it at several temperatures
with the evaluation's own row scorer (the same held-out set, instruments and feature cache as `evaluate`).

    OMP_NUM_THREADS=1 nice -n 5 python scripts/diffusion_research.py RUN --name A --options '{"epochs": 300}' \
        --temperatures 1,0.9,0.85 [--flip] [-n 500] [--out results.jsonl]

Besides the evaluation's columns it prints the copy distance (median distance of the samples to their nearest
training z-point; held-out points score their own) and, with --flip, the copy tests against the union of the
training and flipped-training z-points (a copy of a flipped training image is a copy too).
It writes RUN/cache (the feature cache) and nothing else into RUN.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentatlas.evaluation.copies import Authenticity, CopyingTest
from latentatlas.evaluation.instruments import instrument_set
from latentatlas.evaluation.knn import nearest_distances
from latentatlas.pipelines.evaluate_rows import build_reference
from latentatlas.pipelines.reencode import Reencoded
from latentatlas.samplers.base import EpochReport, split_rows
from latentatlas.samplers.diffusion import Diffusion
from latentatlas.store.run import Run


class PairedDiffusion(Diffusion):
    """Diffusion fitted on [z; z_flipped] (rows i and i + half belong to one image): the validation split is
    drawn over images, so no held-out row has its mirror image among the training rows."""

    def _fit_reporting(self, z, progress):  # noqa: ANN001, ANN202 (an experiment's override)
        from latentatlas.samplers.gaussian import principal_frame

        half = len(z) // 2
        train_images, val_images = split_rows(half, float(self.validation_fraction), int(self.random_state))
        train = z[np.concatenate([train_images, train_images + half])]
        val = z[np.concatenate([val_images, val_images + half])]
        self.mean_, self.components_, self.scales_ = principal_frame(train)
        torch.manual_seed(int(self.random_state))
        module = self._build(z.shape[1])
        self._train(module, self._standardised(train), self._standardised(val), progress)
        self.module_ = module
        self.validation_log_likelihood_ = float(self._log_density(val).mean() / z.shape[1])


def flipped_zpoints(run: Run, rows: np.ndarray, cache: Path) -> np.ndarray:
    """The encoder's z-points of the horizontally flipped images `rows` (cached in `cache`)."""
    if cache.is_file():
        return np.load(cache)
    images = np.asarray(run.images().images[rows])[:, :, ::-1, :].copy()
    z = run.encode(images).astype(np.float32)
    np.save(cache, z)
    return z


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--name", required=True)
    parser.add_argument("--options", default="{}")
    parser.add_argument("--temperatures", default="1")
    parser.add_argument("--flip", action="store_true")
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--out", default="/tmp/diffexp/results.jsonl")
    parser.add_argument("--save", default=None, help="folder to save the fitted sampler in")
    parser.add_argument("--load", default=None, help="a saved sampler folder instead of fitting")
    parser.add_argument(
        "--project", type=int, default=0, help="rounds of z <- encode(decode(z)) after sampling (the CLI's --reencode)"
    )
    parser.add_argument("--sampler", default="diffusion", help="another registered sampler (a baseline row)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = Run(args.run)
    tools = instrument_set("standard", True, False)
    scorer = build_reference(
        run,
        tools,
        args.n,
        5,
        seed=0,
        chunk_size=4096,
        device=None,
        progress=False,
        write=True,
        options={"kid_subsets": 100, "kid_subset_size": 1000, "max_regions": 6},
    )
    ref = scorer.reference
    train_z = np.asarray(ref.train_z)
    union = None
    if args.flip:
        union = np.concatenate([train_z, flipped_zpoints(run, ref.train_rows, Path(args.run) / "flipped_train_z.npy")])
    options = json.loads(args.options)
    started = time.perf_counter()
    sampler: Any
    if args.load:
        from latentatlas.samplers import load_sampler  # noqa: PLC0415

        sampler = load_sampler(args.load)
        epochs_run = len(sampler.history_)
    elif args.sampler != "diffusion":
        from latentatlas.samplers import make_sampler  # noqa: PLC0415

        sampler = make_sampler(args.sampler, **options).fit(train_z)
        epochs_run = 0
        sampler.best_epoch_ = -1
    else:
        sampler = (PairedDiffusion if args.flip else Diffusion)(**options)

        def line(report: EpochReport) -> None:
            if report.epoch % 10 == 0 or report.done:
                print(
                    f"  epoch {report.epoch}: train {report.train_loss:.4f} val {report.val_loss:.4f} "
                    f"best {report.best_epoch} ({report.seconds:.1f} s)",
                    file=sys.stderr,
                    flush=True,
                )

        sampler.fit(union if union is not None else train_z, progress=line)
        epochs_run = len(sampler.history_)
        if args.save:
            sampler.save(args.save)
    fit_seconds = time.perf_counter() - started
    held_copy = float(np.median(nearest_distances(ref.z, train_z)))
    print(
        f"{args.name}: fit {fit_seconds:.0f} s, {epochs_run} epochs, best {sampler.best_epoch_ + 1}; "
        f"held-out copy distance {held_copy:.1f}",
        file=sys.stderr,
        flush=True,
    )
    union_tests = None
    if union is not None:
        union_tests = (CopyingTest(seed=0).fit(union, ref.validation_z), Authenticity().fit(union))
    for temperature in [float(t) for t in args.temperatures.split(",")]:
        tempered = copy.copy(sampler)
        tempered.temperature = temperature
        if args.project:
            tempered = Reencoded(tempered, run, args.project)
        row_started = time.perf_counter()
        row, _ = scorer.score(f"diffusion-{args.name}-T{temperature}", tempered, args.n, 0)
        z = tempered.sample(args.n, seed=0)
        record = {
            "name": args.name,
            "options": options,
            "flip": args.flip,
            "temperature": temperature,
            "n": args.n,
            "fit_seconds": round(fit_seconds, 1),
            "epochs": epochs_run,
            "best_epoch": sampler.best_epoch_ + 1,
            "row_seconds": round(time.perf_counter() - row_started, 1),
            "copy_distance": float(np.median(nearest_distances(z, train_z))),
            "held_copy_distance": held_copy,
            "scores": {key: [s.value, s.low, s.high] for key, s in row.scores.items()},
        }
        if union_tests is not None and union is not None:
            ct, auth = union_tests[0].score(z), union_tests[1]
            record["union_ct"] = [ct.value, ct.low, ct.high] if ct is not None else [np.nan] * 3
            record["union_copy_distance"] = float(np.median(nearest_distances(z, union)))
            record["union_authenticity"] = auth.score(z).value
            record["union_authenticity_held"] = auth.score(ref.z).value
        with open(args.out, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        s = record["scores"]
        print(
            f"{args.name} T={temperature}: FID {s['fid'][0]:.1f} [{s['fid'][1]:.1f}, {s['fid'][2]:.1f}] "
            f"FIDinf {s['fid_infinity'][0]:.1f} KID {s['kid'][0]:.4f} C_T {s.get('latent_ct', [np.nan])[0]:+.2f} "
            f"copy ratio {s['latent_copy_ratio'][0]:.3f} copy dist {record['copy_distance']:.1f} "
            f"P/R {s['precision'][0]:.2f}/{s['recall'][0]:.2f} ll {s.get('log_likelihood', [np.nan])[0]:.3f} "
            + (
                f"union C_T {record['union_ct'][0]:+.2f} auth {record['union_authenticity']:.3f}/"
                f"{record['union_authenticity_held']:.3f} "
                if union_tests
                else ""
            )
            + f"({record['row_seconds']:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
