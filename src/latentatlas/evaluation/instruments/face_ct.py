"""The data-copying test C_T (Meehan et al. 2020) in face-embedding space, among decoded images: the row's face
embeddings and the held-out reconstructions' against the decoder's images of the training z-points (the
training side of `face_copies`). The test is `evaluation.copies.CopyingTest`, as in latent space."""

from __future__ import annotations

from typing import Any

from latentatlas.evaluation.copies import CopyingTest
from latentatlas.evaluation.instruments.base import FaceEmbeddingInstrument, Reference, Row
from latentatlas.evaluation.instruments.face_copies import decoded_training_embeddings
from latentatlas.evaluation.intervals import stream_seed
from latentatlas.evaluation.score import Metric, Score


class FaceCt(FaceEmbeddingInstrument):
    name = "face_ct"
    columns = (
        Metric(
            "face_ct",
            None,
            "data-copying test C_T among decoded images' face embeddings (Meehan et al. 2020): << 0 copies",
        ),
    )

    def prepare(self, reference: Reference) -> None:
        self.test: CopyingTest | None = None
        _, train = decoded_training_embeddings(reference)
        if train is not None and reference.reconstruction_embeddings is not None:
            seed = stream_seed(reference.seed, self.name)
            self.test = CopyingTest(seed=seed).fit(train, reference.reconstruction_embeddings)

    def score(self, row: Row) -> dict[str, Score]:
        # the held-out reconstructions are the test's own reference (0 by definition); training images copy
        if row.role != "sample" or row.embeddings is None or self.test is None:
            return {}
        found = self.test.score(row.embeddings)
        return {} if found is None else {"face_ct": found}

    def settings(self) -> dict[str, Any]:
        return {"face_ct": self.test.settings()} if self.test is not None else {}
