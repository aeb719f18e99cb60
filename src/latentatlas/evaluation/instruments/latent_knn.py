"""Latent k-NN scores: precision, recall, density and coverage of the row's z-points against the held-out ones."""

from __future__ import annotations

import numpy as np

from latentatlas.evaluation.instruments.base import Instrument, Reference, Row
from latentatlas.evaluation.intervals import mean_interval
from latentatlas.evaluation.knn import KnnItems, knn_items
from latentatlas.evaluation.score import Metric, Score


def knn_interval_scores(items: KnnItems, prefix: str, seed: int) -> dict[str, Score]:
    """precision, recall, density, coverage (keys prefixed) with bootstrap intervals over the items."""
    return {
        f"{prefix}precision": mean_interval(items.balls_per_fake > 0, seed=seed),
        f"{prefix}recall": mean_interval(items.real_in_fake_ball, seed=seed + 1),
        f"{prefix}density": mean_interval(items.balls_per_fake / items.k, seed=seed + 2),
        f"{prefix}coverage": mean_interval(items.real_ball_hit, seed=seed + 3),
    }


class LatentKnn(Instrument):
    name = "latent_knn"
    columns = (
        Metric("precision", True, "share of samples inside the held-out z-points' k-NN balls"),
        Metric("recall", True, "share of held-out z-points inside the samples' k-NN balls"),
        Metric("density", None, "mean number of held-out balls holding a sample / k (about 1 for real data)"),
        Metric("coverage", True, "share of held-out balls holding at least one sample"),
    )

    def prepare(self, reference: Reference) -> None:
        self.reference = reference

    def score(self, row: Row) -> dict[str, Score]:
        if row.role == "held-out":  # its z-points are the held-out points: the scores would be 1 by construction
            return {metric.key: Score(float("nan")) for metric in self.columns}
        ref = self.reference
        items = knn_items(ref.z, np.asarray(row.z), k=ref.k, chunk_size=ref.chunk_size, device=ref.device)
        return knn_interval_scores(items, "", ref.seed)
