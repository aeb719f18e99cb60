"""Face instruments for decoded images.

* Haar (`FaceDetector`): OpenCV's bundled frontal-face cascade with fixed settings (fast, coarse: it
  fires on some noise and on broken faces);
* dlib (`CnnFaceDetector`, `FaceEmbedder`): the CNN face detector with a confidence, and 128-d face
  embeddings, from the three model files of face-recognition-models (the 68-point model is not used:
  its training data excludes commercial use).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from latentatlas import checks
from latentatlas.errors import LatentAtlasError


class FaceDetector:
    """OpenCV's bundled Haar frontal-face cascade with fixed, documented settings.

    Each image is upscaled to `upscale` x `upscale` (INTER_CUBIC: the cascade's smallest window is 24 px,
    and small faces detect poorly), turned grey and histogram-equalised; a face must span at least
    `min_size_fraction` of the side.
    """

    def __init__(
        self, scale_factor: float = 1.1, min_neighbors: int = 4, min_size_fraction: float = 0.3, upscale: int = 256
    ) -> None:
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size_fraction = min_size_fraction
        self.upscale = upscale

    @staticmethod
    @lru_cache(maxsize=1)
    def _cascade():
        import cv2

        path = os.path.join(
            cv2.data.haarcascades,  # pyright: ignore[reportAttributeAccessIssue]  (cv2's stubs lack .data)
            "haarcascade_frontalface_default.xml",
        )
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise LatentAtlasError(f"OpenCV could not load its Haar cascade {path}; reinstall opencv-python-headless")
        return cascade

    def detect(self, images: np.ndarray) -> np.ndarray:
        """bool per image: a face was found."""
        import cv2

        images = checks.images(images)
        cascade = self._cascade()
        side = int(self.upscale)
        min_size = max(1, round(self.min_size_fraction * side))
        found = np.zeros(len(images), dtype=bool)
        for i, image in enumerate(images):
            grey = cv2.cvtColor(
                cv2.resize(np.ascontiguousarray(image), (side, side), interpolation=cv2.INTER_CUBIC), cv2.COLOR_RGB2GRAY
            )
            grey = cv2.equalizeHist(grey)
            faces = cascade.detectMultiScale(
                grey, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(min_size, min_size)
            )
            found[i] = len(faces) > 0
        return found

    def settings(self) -> dict:
        return {
            "cascade": "haarcascade_frontalface_default.xml",
            "scale_factor": self.scale_factor,
            "min_neighbors": self.min_neighbors,
            "min_size_fraction": self.min_size_fraction,
            "upscale": self.upscale,
        }


def face_rate(images: np.ndarray, detector: FaceDetector | None = None) -> float:
    """Fraction of images in which the Haar frontal-face cascade finds a face."""
    return float((detector or FaceDetector()).detect(images).mean())


# ----------------------------------------------------------------------------- dlib: CNN detector, embeddings

FACE_MODELS_HINT = "pip install dlib-bin==20.0.1.post1 face-recognition-models==0.3.0"
FACE_MODEL_FILES = {
    "detector": "mmod_human_face_detector.dat",
    "landmarks": "shape_predictor_5_face_landmarks.dat",
    "embedding": "dlib_face_recognition_resnet_model_v1.dat",
}
MIN_FACE_IMAGE_SIDE = 32  # below this a face has too few pixels for the detector, whatever the upscaling
DLIB_SIDE = 256  # images are upscaled to this side (INTER_CUBIC) before the CNN detector and the embedding


def face_model_path(kind: str) -> Path:
    """One of the three dlib model files shipped by face-recognition-models (found without importing it:
    its __init__ needs setuptools' pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if importlib.util.find_spec("dlib") is None or spec is None or not spec.submodule_search_locations:
        raise LatentAtlasError(f"the face instruments need dlib and its models: {FACE_MODELS_HINT}")
    path = Path(spec.submodule_search_locations[0]) / "models" / FACE_MODEL_FILES[kind]
    if not path.is_file():
        raise LatentAtlasError(f"face model {path.name} is missing from face-recognition-models: {FACE_MODELS_HINT}")
    return path


def _dlib() -> Any:
    """The dlib module (imported by name: its compiled module ships no type information)."""
    return importlib.import_module("dlib")


@lru_cache(maxsize=1)
def _dlib_models() -> tuple[Any, Any, Any]:
    dlib = _dlib()

    return (
        dlib.cnn_face_detection_model_v1(str(face_model_path("detector"))),
        dlib.shape_predictor(str(face_model_path("landmarks"))),
        dlib.face_recognition_model_v1(str(face_model_path("embedding"))),
    )


def _upscaled(image: np.ndarray, side: int) -> np.ndarray:
    import cv2

    return np.ascontiguousarray(cv2.resize(np.ascontiguousarray(image), (side, side), interpolation=cv2.INTER_CUBIC))


def _face_images(images: Any) -> np.ndarray:
    images = checks.images(images, min_size=MIN_FACE_IMAGE_SIDE)
    if len(images) == 0:
        raise LatentAtlasError("no images to look for faces in")
    return images


@dataclass(frozen=True)
class FaceDetections:
    """Per image: whether the CNN detector found a face, and its best detection's confidence (NaN: none)."""

    found: np.ndarray
    confidence: np.ndarray


class CnnFaceDetector:
    """dlib's CNN (MMOD) face detector with settings that work on 32-128 px decoded images.

    Each image is upscaled to `side` x `side` (INTER_CUBIC) and searched without further pyramid
    upsampling; a face counts when a detection's confidence exceeds `threshold` (dlib's own default 0).
    A 64 px image at side 256 is what dlib's `upsample_num_times=2` would search; at upsample 1 the
    detector finds a quarter of the synthetic 64 px faces, at 2 nearly all (docs/evaluation.md).
    """

    def __init__(self, *, side: int = DLIB_SIDE, threshold: float = 0.0) -> None:
        self.side = side
        self.threshold = threshold

    def detect(self, images: np.ndarray) -> FaceDetections:
        images = _face_images(images)
        side = checks.positive_int(self.side, "detector side", minimum=MIN_FACE_IMAGE_SIDE)
        detector = _dlib_models()[0]
        confidence = np.full(len(images), np.nan)
        for i, image in enumerate(images):
            scores = [d.confidence for d in detector(_upscaled(image, side), 0)]
            if scores:
                confidence[i] = max(scores)
        found = np.nan_to_num(confidence, nan=-np.inf) > self.threshold
        return FaceDetections(found, confidence)

    def settings(self) -> dict[str, Any]:
        return {"model": FACE_MODEL_FILES["detector"], "side": self.side, "threshold": self.threshold}


class FaceEmbedder:
    """128-d dlib face-recognition embeddings of whole images (the run's crops are centred faces).

    Each image is upscaled to `side` x `side`; the 5-point landmark model is run on the full frame and
    the ResNet embeds the aligned 150 x 150 chip. Distances below 0.6 mean "same person" to dlib.
    """

    def __init__(self, *, side: int = DLIB_SIDE) -> None:
        self.side = side

    def embed(self, images: np.ndarray) -> np.ndarray:
        dlib = _dlib()
        images = _face_images(images)
        side = checks.positive_int(self.side, "embedding side", minimum=MIN_FACE_IMAGE_SIDE)
        _, landmarks, network = _dlib_models()
        frame = dlib.rectangle(0, 0, side - 1, side - 1)
        out = np.empty((len(images), 128))
        for i, image in enumerate(images):
            big = _upscaled(image, side)
            out[i] = np.asarray(network.compute_face_descriptor(big, landmarks(big, frame)))
        return out

    def settings(self) -> dict[str, Any]:
        return {"landmarks": FACE_MODEL_FILES["landmarks"], "model": FACE_MODEL_FILES["embedding"], "side": self.side}
