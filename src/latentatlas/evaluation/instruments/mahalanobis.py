"""Mahalanobis percentile: where the row's z-points lie among the training z-points, from the centre out."""

from __future__ import annotations

from latentatlas.evaluation.instruments.base import Instrument, Reference, Row
from latentatlas.evaluation.intervals import median_interval, stream_seed
from latentatlas.evaluation.score import Metric, Score
from latentatlas.stats import Mahalanobis


class MahalanobisPercentile(Instrument):
    name = "mahalanobis"
    columns = (
        Metric("mahalanobis_median_pct", None, "median Mahalanobis percentile among the training z-points (real: 50)"),
    )

    def prepare(self, reference: Reference) -> None:
        self.seed = reference.seed
        self.mahalanobis = Mahalanobis().fit(reference.train_z)

    def score(self, row: Row) -> dict[str, Score]:
        return {
            "mahalanobis_median_pct": median_interval(
                self.mahalanobis.percentile(row.z), seed=stream_seed(self.seed, "mahalanobis_median_pct")
            )
        }
