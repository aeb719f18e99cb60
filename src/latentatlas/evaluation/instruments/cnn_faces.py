"""dlib CNN face rate and confidence, at one detector side calibrated on the run's own reconstructions."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from latentatlas.evaluation.faces import DLIB_SIDE, CnnFaceDetector, SideCalibration, calibrated_side, check_face_images
from latentatlas.evaluation.instruments.base import Instrument, Reference, Row
from latentatlas.evaluation.intervals import mean_interval, median_interval, stream_seed
from latentatlas.evaluation.score import Metric, Score

CALIBRATION_IMAGES = 64  # reconstructions the CNN detector's side is calibrated on


class CnnFaceRate(Instrument):
    name = "cnn_faces"
    columns = (
        Metric("cnn_face_rate", True, "share of decoded images in which dlib's CNN detector finds a face"),
        Metric("cnn_confidence", True, "median confidence of dlib's CNN detector where it finds a face"),
    )
    needs = frozenset({"images"})
    level = "full"
    switch = "faces"

    def check(self, image_size: int | None) -> None:
        check_face_images(image_size)

    def prepare(self, reference: Reference) -> None:
        self.seed, self.side, self.progress = reference.seed, DLIB_SIDE, reference.progress
        self.calibration: SideCalibration | None = None
        if reference.decode is None:
            return
        # One detector side for every row, the smallest that finds the faces in this decoder's own images.
        self.calibration = calibrated_side(reference.decode(reference.validation_z[:CALIBRATION_IMAGES]))
        self.side = self.calibration.side
        if reference.progress:
            print(
                f"latentatlas: dlib CNN face detector at side {self.side} (found faces in "
                f"{self.calibration.found[self.side]:.0%} of {self.calibration.images} reconstructions)",
                file=sys.stderr,
            )

    def score(self, row: Row) -> dict[str, Score]:
        if row.images is None:
            return {}
        found = CnnFaceDetector(side=self.side).detect(row.images, progress=self.progress)
        confident = found.confidence[found.found]
        return {
            "cnn_face_rate": mean_interval(found.found, seed=stream_seed(self.seed, "cnn_face_rate")),
            "cnn_confidence": median_interval(confident, seed=stream_seed(self.seed, "cnn_confidence"))
            if len(confident)
            else Score(np.nan),
        }

    def settings(self) -> dict[str, Any]:
        calibration = None if self.calibration is None else self.calibration.to_dict()
        return {"cnn_face_detector": {**CnnFaceDetector(side=self.side).settings(), "calibration": calibration}}
