"""Face-embedding scores: FD-face and k-NN precision/recall/density/coverage on dlib face embeddings."""

from __future__ import annotations

from typing import Any

from latentatlas.evaluation.faces import FaceEmbedder
from latentatlas.evaluation.inception import fid
from latentatlas.evaluation.instruments.base import FaceEmbeddingInstrument, Reference, Row
from latentatlas.evaluation.instruments.cnn_faces import FACES_WITHHELD, faces_withheld, reconstruction_faces
from latentatlas.evaluation.instruments.latent_knn import knn_interval_scores
from latentatlas.evaluation.intervals import paired_interval, stream_seed
from latentatlas.evaluation.knn import knn_items
from latentatlas.evaluation.score import Metric, Score


class FaceEmbeddingScores(FaceEmbeddingInstrument):
    name = "face_embeddings"
    columns = (
        Metric("fd_face", False, "Fréchet distance between dlib face embeddings of samples and held-out images"),
        Metric("face_precision", True, "precision on face embeddings against the held-out images"),
        Metric("face_recall", True, "recall on face embeddings against the held-out images"),
        Metric("face_density", None, "density on face embeddings against the held-out images"),
        Metric("face_coverage", True, "coverage on face embeddings against the held-out images"),
    )

    def prepare(self, reference: Reference) -> None:
        self.reference = reference
        self.withheld = faces_withheld(reconstruction_faces(reference))

    def score(self, row: Row) -> dict[str, Score]:
        ref, embeddings = self.reference, row.embeddings
        if embeddings is None or ref.embeddings is None or self.withheld is not None:
            return {}
        seed = stream_seed(ref.seed, "fd_face")
        scores = {"fd_face": paired_interval(fid, embeddings, ref.embeddings, resamples=50, seed=seed)}
        if len(embeddings) > ref.k and len(ref.embeddings) > ref.k:
            items = knn_items(ref.embeddings, embeddings, k=ref.k, chunk_size=ref.chunk_size, device=ref.device)
            scores.update(knn_interval_scores(items, "face_", ref.seed))
        return scores

    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {"face_embedder": FaceEmbedder().settings()}
        if self.withheld is not None:
            out[FACES_WITHHELD] = self.withheld
        return out
