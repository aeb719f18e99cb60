"""The authenticity share (Alaa et al. 2022) in face-embedding space, among decoded images: the share of a
row's faces whose nearest decoded training face lies closer to another decoded training face than to them.
The reconstruction row (held-out images, decoded) scores the level unseen data reaches."""

from __future__ import annotations

from latentatlas.evaluation.copies import Authenticity
from latentatlas.evaluation.instruments.base import FaceEmbeddingInstrument, Reference, Row
from latentatlas.evaluation.instruments.face_copies import decoded_training_embeddings
from latentatlas.evaluation.intervals import stream_seed
from latentatlas.evaluation.score import Metric, Score


class FaceAuthenticity(FaceEmbeddingInstrument):
    name = "face_authenticity"
    columns = (
        Metric(
            "face_authenticity",
            None,
            "share of faces farther from their nearest decoded training face than it lies from its own nearest "
            "(Alaa et al. 2022; the reconstruction row: the held-out level)",
        ),
    )

    def prepare(self, reference: Reference) -> None:
        self.test: Authenticity | None = None
        _, train = decoded_training_embeddings(reference)
        if train is not None:
            self.test = Authenticity(seed=stream_seed(reference.seed, self.name)).fit(train)

    def score(self, row: Row) -> dict[str, Score]:
        if row.role == "training" or row.embeddings is None or self.test is None:
            return {}
        return {"face_authenticity": self.test.score(row.embeddings, "face_authenticity")}
