"""Latent copies: how many samples lie closer to a training z-point than half the held-out median distance."""

from __future__ import annotations

from latentatlas.evaluation.copies import copy_scores, latent_threshold
from latentatlas.evaluation.instruments.base import Instrument, Reference, Row
from latentatlas.evaluation.intervals import mean_interval, stream_seed
from latentatlas.evaluation.knn import nearest_distances
from latentatlas.evaluation.score import Metric, Score


class LatentCopies(Instrument):
    name = "latent_copies"
    columns = (
        Metric(
            "latent_copy_share", None, "share of samples closer to a training z-point than half the held-out median"
        ),
        Metric(
            "latent_copy_ratio", None, "median nearest-training distance of samples / of held-out z-points (1: new)"
        ),
    )

    def prepare(self, reference: Reference) -> None:
        self.reference = reference
        self.held_nearest = nearest_distances(
            reference.z, reference.train_z, chunk_size=reference.chunk_size, device=reference.device
        )

    def score(self, row: Row) -> dict[str, Score]:
        if row.role != "sample":  # training points do not copy themselves; held-out points are the baseline
            return {}
        ref = self.reference
        nearest = nearest_distances(row.z, ref.train_z, chunk_size=ref.chunk_size, device=ref.device)
        found = copy_scores(nearest, self.held_nearest, latent_threshold(self.held_nearest))
        return {
            "latent_copy_share": mean_interval(found.closer, seed=stream_seed(ref.seed, "latent_copy_share")),
            "latent_copy_ratio": Score(found.ratio),
        }
