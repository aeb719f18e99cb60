"""The authenticity share in latent space (Alaa et al. 2022): the share of a row's z-points whose nearest
training z-point lies closer to another training z-point than to them (`evaluation.copies.Authenticity`).
The reconstruction row's points are the held-out z-points: its share is the level unseen data reaches."""

from __future__ import annotations

from latentatlas.evaluation.copies import Authenticity
from latentatlas.evaluation.instruments.base import Instrument, Reference, Row
from latentatlas.evaluation.intervals import stream_seed
from latentatlas.evaluation.score import Metric, Score


class LatentAuthenticity(Instrument):
    name = "latent_authenticity"
    columns = (
        Metric(
            "latent_authenticity",
            None,
            "share of points farther from their nearest training z-point than it lies from its own nearest "
            "(Alaa et al. 2022; the reconstruction row: the held-out level)",
        ),
    )

    def prepare(self, reference: Reference) -> None:
        self.test = Authenticity(seed=stream_seed(reference.seed, self.name)).fit(reference.train_z)

    def score(self, row: Row) -> dict[str, Score]:
        if row.role == "training":  # training points are their own nearest training points
            return {}
        return {"latent_authenticity": self.test.score(row.z, "latent_authenticity")}
