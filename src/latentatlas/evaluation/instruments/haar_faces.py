"""Haar face rate: the share of decoded images in which OpenCV's frontal-face cascade finds a face."""

from __future__ import annotations

from typing import Any

from latentatlas.evaluation.faces import FaceDetector
from latentatlas.evaluation.instruments.base import Instrument, Reference, Row
from latentatlas.evaluation.intervals import mean_interval, stream_seed
from latentatlas.evaluation.score import Metric, Score


class HaarFaceRate(Instrument):
    name = "haar_faces"
    columns = (Metric("face_rate", True, "share of decoded images in which the Haar cascade finds a face"),)
    needs = frozenset({"images"})
    switch = "faces"

    def prepare(self, reference: Reference) -> None:
        self.seed = reference.seed

    def score(self, row: Row) -> dict[str, Score]:
        if row.images is None:
            return {}
        found = FaceDetector().detect(row.images, processes=True)
        return {"face_rate": mean_interval(found, seed=stream_seed(self.seed, "face_rate"))}

    def settings(self) -> dict[str, Any]:
        return {"face_detector": FaceDetector().settings()}
