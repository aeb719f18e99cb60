"""Radius shell: the share of the row's z-points whose norm lies in the held-out 1st-99th percentile range."""

from __future__ import annotations

from typing import Any

from latentatlas.evaluation.instruments.base import Instrument, Reference, Row
from latentatlas.evaluation.intervals import mean_interval, stream_seed
from latentatlas.evaluation.latent import RADIUS_PERCENTILES, inside_radius, radius_range
from latentatlas.evaluation.score import Metric, Score


class RadiusShell(Instrument):
    name = "radius"
    columns = (
        Metric("inside_radius", True, "share of samples whose norm lies in the held-out 1st-99th percentile range"),
    )

    def prepare(self, reference: Reference) -> None:
        self.seed = reference.seed
        self.radius = radius_range(reference.z)

    def score(self, row: Row) -> dict[str, Score]:
        return {
            "inside_radius": mean_interval(
                inside_radius(row.z, *self.radius), seed=stream_seed(self.seed, "inside_radius")
            )
        }

    def settings(self) -> dict[str, Any]:
        return {"radius_range": list(self.radius), "radius_percentiles": list(RADIUS_PERCENTILES)}
