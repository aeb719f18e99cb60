"""Face copies among decoded images: samples whose face embedding lies closer to a decoded training image's than
held-out reconstructions do (the threshold: the stricter of dlib's 0.6 and half the held-out median)."""

from __future__ import annotations

from typing import Any

import numpy as np

from latentatlas.evaluation.copies import copy_scores, face_threshold
from latentatlas.evaluation.instruments.base import FaceEmbeddingInstrument, Reference, Row
from latentatlas.evaluation.instruments.cnn_faces import FACES_WITHHELD, faces_withheld, reconstruction_faces
from latentatlas.evaluation.intervals import mean_interval, stream_seed
from latentatlas.evaluation.knn import nearest_distances
from latentatlas.evaluation.score import Metric, Score
from latentatlas.progress import Progress

FACE_COPY_REFERENCE = 20_000  # training images embedded for face copies (a seeded subset beyond this)
DECODE_BLOCK = 1024


class FaceCopies(FaceEmbeddingInstrument):
    name = "face_copies"
    columns = (
        Metric(
            "face_copy_share",
            None,
            "share of samples closer to a decoded training image's face than the stricter of dlib's 0.6 and half "
            "the held-out reconstructions' median",
        ),
        Metric(
            "face_copy_ratio", None, "median face distance to the nearest decoded training image, samples / held-out"
        ),
    )

    def prepare(self, reference: Reference) -> None:
        self.seed = reference.seed
        self.withheld = faces_withheld(reconstruction_faces(reference))
        self.copy_rows, self.train_embeddings = decoded_training_embeddings(reference)
        self.held_nearest = None
        if self.train_embeddings is not None and reference.reconstruction_embeddings is not None:
            self.held_nearest = nearest_distances(reference.reconstruction_embeddings, self.train_embeddings)

    def score(self, row: Row) -> dict[str, Score]:
        if row.role == "training" or row.embeddings is None or self.held_nearest is None:
            return {}  # training images do not copy themselves
        assert self.train_embeddings is not None
        nearest = nearest_distances(row.embeddings, self.train_embeddings)
        found = copy_scores(nearest, self.held_nearest, face_threshold(self.held_nearest))
        return {
            "face_copy_share": mean_interval(found.closer, seed=stream_seed(self.seed, "face_copy_share")),
            "face_copy_ratio": Score(found.ratio),
        }

    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {"face_copy_reference": len(self.copy_rows)}
        if self.withheld is not None:
            out[FACES_WITHHELD] = self.withheld
        if self.held_nearest is not None:
            out["face_copy_threshold"] = face_threshold(self.held_nearest)
        return out


def decoded_training_embeddings(reference: Reference) -> tuple[np.ndarray, np.ndarray | None]:
    """(rows, face embeddings of the decoder's images of their z-points): the training side of every face copy
    test, a seeded subset of at most FACE_COPY_REFERENCE training rows, cached (the face instruments that
    need it share one computation through the cache). Embeddings None when the run makes no images."""
    rng = np.random.default_rng(reference.seed)
    rows = reference.train_rows
    if len(rows) > FACE_COPY_REFERENCE:  # sorted, like the training rows
        rows = np.sort(rng.choice(rows, size=FACE_COPY_REFERENCE, replace=False))
    decode, cache = reference.decode, reference.cache
    if decode is None or cache is None or reference.reconstruction_embeddings is None:
        return rows, None
    if faces_withheld(reconstruction_faces(reference)) is not None:
        return rows, None  # the decoder makes no faces: there is nothing to copy among face embeddings
    train_z = reference.train_z[np.searchsorted(reference.train_rows, rows)]
    # Copies are judged among decoded images: a sampler can at most reproduce the decoder's image of a
    # training point, and against the real photographs every decoded image is far (blur), copy or not.
    progress = reference.progress

    def decoded() -> np.ndarray:  # only when the cache does not hold the embeddings
        with Progress(
            len(train_z), "decoding training z-points (face-copy reference)", "images", enabled=progress
        ) as bar:
            parts = []
            for start in range(0, len(train_z), DECODE_BLOCK):
                parts.append(decode(train_z[start : start + DECODE_BLOCK]))
                bar.update(len(parts[-1]))
            return np.concatenate(parts)

    return rows, cache.embeddings("train_decoded_embeddings", rows, decoded, reference.weights)
