"""Latent k-NN scores: precision, recall, density and coverage of the row's z-points against the held-out ones."""

from __future__ import annotations

import numpy as np

from latentatlas.evaluation.instruments.base import Instrument, Reference, Row
from latentatlas.evaluation.intervals import mean_interval, stream_seed
from latentatlas.evaluation.knn import KnnItems, knn_items
from latentatlas.evaluation.score import Metric, Score


def knn_interval_scores(items: KnnItems, prefix: str, seed: int) -> dict[str, Score]:
    """precision, recall, density, coverage (keys prefixed) with bootstrap intervals over the items, each
    on the stream of its column's name."""
    values = {
        "precision": items.balls_per_fake > 0,
        "recall": items.real_in_fake_ball,
        "density": items.balls_per_fake / items.k,
        "coverage": items.real_ball_hit,
    }
    return {prefix + key: mean_interval(item, seed=stream_seed(seed, prefix + key)) for key, item in values.items()}


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
