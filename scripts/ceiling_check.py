"""Where the reconstruction ceiling sits (docs/diffusion.md, round 3): FID against the evaluation's held-out
images of the decoder's images of held-out points (the ceiling row), of training points (what replaying the
training z-points, a perfect copier, decodes: the same ceiling without the pairing), and of held-out points
re-encoded once and twice; then paired against unpaired halves of the held-out set.

    python scripts/ceiling_check.py RUN [-n 1000] [--splits 3]

It uses the evaluation's own held-out set, Inception route and feature cache (RUN/cache/features/), so its
first row is the evaluation's reconstruction FID.
"""

from __future__ import annotations

import argparse

import numpy as np

from latentatlas.evaluation.inception import fid, inception_features
from latentatlas.evaluation.instruments import instrument_set
from latentatlas.pipelines.evaluate_rows import build_reference
from latentatlas.pipelines.reencode import reencode
from latentatlas.store.run import Run


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--splits", type=int, default=3, help="random halves for the pairing check")
    args = parser.parse_args()
    run = Run(args.run)
    options = {"kid_subsets": 100, "kid_subset_size": 1000, "max_regions": 6}
    scorer = build_reference(
        run, instrument_set("standard", True, False), args.n, 5, seed=0, chunk_size=4096, device=None,
        progress=True, write=True, options=options,
    )  # fmt: skip
    ref = scorer.reference
    real = np.asarray(ref.features)
    ceiling = scorer.cache.features("reconstruction_features", ref.rows, run.decode(ref.z), ref.weights)
    train_z = np.asarray(run.zpoints()[scorer.reference_rows], dtype=np.float32)
    rows = [
        ("reconstructions of the held-out images (the ceiling row; paired)", ceiling),
        ("reconstructions of as many training images (unpaired)", inception_features(run.decode(train_z))),
    ]
    for rounds in (1, 2):
        images = run.decode(reencode(run, ref.z, rounds))
        rows.append((f"held-out reconstructions re-encoded {rounds}x", inception_features(images)))
    print(f"\nFID against the {len(real)} held-out images:")
    for label, features in rows:
        print(f"  {fid(features, real):6.1f}  {label}")
    rng = np.random.default_rng(0)
    print(f"\nhalves of n = {len(real) // 2} (paired: reconstructions against their own images):")
    for split in range(args.splits):
        order = rng.permutation(len(real))
        a, b = order[: len(real) // 2], order[len(real) // 2 :]
        paired = (fid(ceiling[a], real[a]), fid(ceiling[b], real[b]))
        unpaired = (fid(ceiling[a], real[b]), fid(ceiling[b], real[a]))
        print(
            f"  split {split}: paired {paired[0]:.1f} / {paired[1]:.1f}, unpaired {unpaired[0]:.1f} / {unpaired[1]:.1f}"
        )


if __name__ == "__main__":
    main()
