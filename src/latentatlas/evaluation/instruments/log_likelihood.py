"""Held-out log-likelihood: the mean log-density a sampler gives the held-out z-points (samplers with a density)."""

from __future__ import annotations

from typing import Any

import numpy as np

from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.instruments.base import Instrument, Reference, Row
from latentatlas.evaluation.intervals import mean_interval, stream_seed
from latentatlas.evaluation.score import Metric, Score


def held_out_log_likelihood(sampler: Any, z: np.ndarray) -> np.ndarray:
    """Per held-out z-point: the sampler's log-density (nats). Refused for samplers that define none."""
    method = getattr(sampler, "score_samples", None)
    if method is None:
        name = getattr(sampler, "name", type(sampler).__name__)
        raise LatentAtlasError(f"sampler {name} defines no density; a held-out log-likelihood needs one")
    values = np.asarray(method(z), dtype=np.float64)
    if values.shape != (len(z),) or not np.isfinite(values).all():
        raise LatentAtlasError("the sampler's log-likelihood is not one finite number per z-point")
    return values


class HeldOutLogLikelihood(Instrument):
    name = "log_likelihood"
    columns = (Metric("log_likelihood", True, "mean log-density of the held-out z-points, nats per dimension"),)

    def prepare(self, reference: Reference) -> None:
        self.reference = reference

    def score(self, row: Row) -> dict[str, Score]:
        if row.sampler is None or not getattr(row.sampler, "defines_density", False):
            return {}  # samplers without a density: no column value, not an error
        held = self.reference.z
        values = held_out_log_likelihood(row.sampler, held)
        return {
            "log_likelihood": mean_interval(
                values / held.shape[1], seed=stream_seed(self.reference.seed, "log_likelihood")
            )
        }
