"""dlib CNN face rate and confidence, at one detector side calibrated on the run's own reconstructions."""

from __future__ import annotations

import hashlib
import sys
from typing import Any

import numpy as np

from latentatlas.evaluation.faces import DLIB_SIDE, CnnFaceDetector, SideCalibration, calibrated_side, check_face_images
from latentatlas.evaluation.instruments.base import Instrument, Reference, Row
from latentatlas.evaluation.intervals import mean_interval, median_interval, stream_seed
from latentatlas.evaluation.score import Metric, Score

FACES_WITHHELD = "faces_withheld"  # the settings key that records why the face scores are withheld

CALIBRATION_IMAGES = 64  # reconstructions the CNN detector's side is calibrated on
# Below this share of reconstructions with a face (at the best detector side) the decoder does not make face
# images: face embeddings and face copies would compare whatever it makes as if it were faces, and are withheld
# with the reason. The face rate itself stays: it is the measurement that says so.
MIN_FACE_SHARE = 0.1
_calibrations: dict[str, SideCalibration] = {}  # by the reconstructions' content: one calibration per evaluation


def reconstruction_faces(reference: Reference) -> SideCalibration | None:
    """The CNN detector calibrated on the decoder's images of the first held-out z-points (None when the run
    makes no images); computed once for all face instruments of an evaluation."""
    if reference.decode is None:
        return None
    images = reference.decode(reference.validation_z[:CALIBRATION_IMAGES])
    key = hashlib.sha256(images.tobytes()).hexdigest()
    if key not in _calibrations:
        _calibrations.clear()
        _calibrations[key] = calibrated_side(images)
    return _calibrations[key]


def faces_withheld(calibration: SideCalibration | None) -> str | None:
    """Why the face scores are withheld (the detector finds faces in almost none of the reconstructions), or None."""
    if calibration is None:
        return None
    best = max(calibration.found.values(), default=0.0)
    if best >= MIN_FACE_SHARE:
        return None
    return (
        f"dlib's CNN face detector finds a face in {best:.0%} of {calibration.images} reconstructions at its best "
        f"side (below {MIN_FACE_SHARE:.0%}): the decoder does not make face images, so the face-embedding scores "
        "(FD-face, face precision, recall, density, coverage) and face copies would measure nothing"
    )


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
        # One detector side for every row, the smallest that finds the faces in this decoder's own images.
        self.calibration = reconstruction_faces(reference)
        if self.calibration is None:
            return
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
