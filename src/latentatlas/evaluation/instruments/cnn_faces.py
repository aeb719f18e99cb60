"""dlib CNN face rate and confidence, at one detector side calibrated on the run's own reconstructions, on a
seeded subsample of at most DETECTOR_IMAGES images per row (the intervals are those of the subsample)."""

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
        _calibrations[key] = calibrated_side(images, progress=reference.progress)
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


# Images per row the detector looks at: a share's 95 % interval is at most +-6 points at 250 (p = 0.5), the
# detector's ~0.1 s per image on a core made it the largest cost of a row at n = 1,000 (docs/evaluation.md).
DETECTOR_IMAGES = 250


def detector_rows(count: int, seed: int, limit: int = DETECTOR_IMAGES) -> np.ndarray:
    """The rows of a `count`-image row the detector looks at: all, or a sorted seeded subsample of `limit`."""
    if count <= limit:
        return np.arange(count)
    rng = np.random.default_rng(stream_seed(seed, "cnn_faces_subsample"))
    return np.sort(rng.choice(count, size=limit, replace=False))


class CnnFaceRate(Instrument):
    name = "cnn_faces"
    columns = (
        Metric(
            "cnn_face_rate",
            True,
            f"share of decoded images in which dlib's CNN detector finds a face (a seeded {DETECTOR_IMAGES} of the "
            "row's images when it has more; the interval is the subsample's)",
        ),
        Metric("cnn_confidence", True, "median confidence of dlib's CNN detector where it finds a face (same images)"),
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
        images = row.images[detector_rows(len(row.images), self.seed)]
        found = CnnFaceDetector(side=self.side).detect(images, progress=self.progress)
        confident = found.confidence[found.found]
        return {
            "cnn_face_rate": mean_interval(found.found, seed=stream_seed(self.seed, "cnn_face_rate")),
            "cnn_confidence": median_interval(confident, seed=stream_seed(self.seed, "cnn_confidence"))
            if len(confident)
            else Score(np.nan),
        }

    def settings(self) -> dict[str, Any]:
        calibration = None if self.calibration is None else self.calibration.to_dict()
        detector = {**CnnFaceDetector(side=self.side).settings(), "images_per_row": DETECTOR_IMAGES}
        return {"cnn_face_detector": {**detector, "calibration": calibration}}
