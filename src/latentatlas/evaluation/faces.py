"""Face instruments for decoded images.

* Haar (`FaceDetector`): OpenCV's bundled frontal-face cascade with fixed settings (fast, coarse: it
  fires on some noise and on broken faces);
* dlib (`CnnFaceDetector`, `FaceEmbedder`): the CNN face detector with a confidence, and 128-d face
  embeddings, from the three model files of face-recognition-models (the 68-point model is not used:
  its training data excludes commercial use); the embeddings' ResNet runs through ONNX Runtime
  (`dlib_resnet`: the same network read from dlib's file, about 13x faster), dlib's own without it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.workers import in_processes
from latentatlas.progress import Progress


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
            raise LatentAtlasError(f"OpenCV could not load its Haar cascade {path}; reinstall opencv-python")
        return cascade

    def detect(self, images: np.ndarray, processes: bool = False) -> np.ndarray:
        """bool per image: a face was found. `processes`: spread many images over the worker processes
        (`workers.in_processes`; 1.5x on 2 cores), as an evaluation does; a server answering small requests
        keeps them here."""
        images = checks.images(images)
        if processes:
            return in_processes(self._detect_here, images)
        return self._detect_here(images)

    def _detect_here(self, images: np.ndarray) -> np.ndarray:
        import cv2

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

FACE_MODELS_HINT = "pip install 'latentatlas[faces]'"
FACE_MODEL_FILES = {
    "detector": "mmod_human_face_detector.dat",
    "landmarks": "shape_predictor_5_face_landmarks.dat",
    "embedding": "dlib_face_recognition_resnet_model_v1.dat",
}
MIN_FACE_IMAGE_SIDE = 32  # below this a face has too few pixels for the detector, whatever the upscaling
DLIB_SIDE = 256  # images are upscaled to this side (INTER_CUBIC) before the CNN detector and the embedding
CALIBRATION_SIDES = (128, 160, 192, 256)  # detector sides tried by calibrated_side, cheapest first
CALIBRATION_TARGET = 0.95


class FaceModelsMissing(LatentAtlasError):
    """dlib or face-recognition-models is not installed: the dlib instruments are left out, the others run."""


def face_model_path(kind: str) -> Path:
    """One of the three dlib model files shipped by face-recognition-models (found without importing it:
    its __init__ needs setuptools' pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if importlib.util.find_spec("dlib") is None or spec is None or not spec.submodule_search_locations:
        raise FaceModelsMissing(f"the face instruments need dlib and its models: {FACE_MODELS_HINT}")
    path = Path(spec.submodule_search_locations[0]) / "models" / FACE_MODEL_FILES[kind]
    if not path.is_file():
        raise FaceModelsMissing(f"face model {path.name} is missing from face-recognition-models: {FACE_MODELS_HINT}")
    return path


def check_face_images(image_size: int | None) -> None:
    """Refuse the dlib instruments before any work: images below MIN_FACE_IMAGE_SIDE (None: the run makes no
    images, which the caller refuses on its own) or the models missing."""
    side = MIN_FACE_IMAGE_SIDE
    if image_size is not None and image_size < side:
        raise LatentAtlasError(
            f"the dlib face instruments need images of at least {side}x{side} pixels, this run's are "
            f"{image_size}x{image_size}: use --instruments standard (Haar faces) or --no-faces"
        )
    face_model_path("detector")


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


def _detect_block(images: np.ndarray, side: int) -> np.ndarray:
    """Best detection confidence per image (NaN: no detection)."""
    detector = _dlib_models()[0]
    confidence = np.full(len(images), np.nan)
    for i, image in enumerate(images):
        scores = [d.confidence for d in detector(_upscaled(image, side), 0)]
        if scores:
            confidence[i] = max(scores)
    return confidence


def _embed_block(images: np.ndarray, side: int, onnx: str | None = None) -> np.ndarray:
    """128-d descriptor per image: 5-point landmarks on the full frame, the aligned 150 x 150 chip (what
    dlib's compute_face_descriptor cuts), then the ResNet on the chip: through ONNX Runtime from the file
    `onnx` (one thread in a worker process, one per usable core otherwise), or dlib's own network when
    `onnx` is ""; None: `_descriptor_model()`."""
    _, landmarks, network = _dlib_models()
    dlib = _dlib()
    onnx = _descriptor_model() if onnx is None else onnx
    frame = dlib.rectangle(0, 0, side - 1, side - 1)
    if not onnx:
        out = np.empty((len(images), 128))
        for i, image in enumerate(images):
            big = _upscaled(image, side)
            out[i] = np.asarray(network.compute_face_descriptor(big, landmarks(big, frame)))
        return out
    from latentatlas.evaluation.dlib_resnet import CHIP_PADDING, CHIP_SIDE, describe_chips

    chips = np.empty((len(images), CHIP_SIDE, CHIP_SIDE, 3), np.uint8)
    for i, image in enumerate(images):
        big = _upscaled(image, side)
        chips[i] = dlib.get_face_chip(big, landmarks(big, frame), CHIP_SIDE, CHIP_PADDING)
    threads = torch.get_num_threads()  # one in a worker process (`workers._one_thread`)
    return describe_chips(Path(onnx), chips, threads)


@lru_cache(maxsize=1)
def _descriptor_model() -> str:
    """The ONNX export of dlib's face ResNet (exported once, cached), or "" with one line saying why dlib's
    own network is used instead: onnxruntime missing, or a model file this reader does not understand."""
    from latentatlas.evaluation.dlib_resnet import onnx_model_path
    from latentatlas.evaluation.onnx_export import ONNX_HINT, missing_onnxruntime

    path = face_model_path("embedding")  # missing models: FaceModelsMissing, the caller's to report
    slower = "dlib face descriptors run through dlib's own network (over 10x slower)"
    missing = missing_onnxruntime()
    if missing is not None:
        print(f"latentatlas: {missing} is not installed: {slower}; {ONNX_HINT}", file=sys.stderr)
        return ""
    try:
        return str(onnx_model_path(path))
    except LatentAtlasError as exc:
        print(f"latentatlas: {exc}: {slower}", file=sys.stderr)
        return ""


def descriptor_backend() -> str:
    """ "onnxruntime" when the face descriptor runs through ONNX Runtime, "dlib" when through dlib's network."""
    try:
        return "onnxruntime" if _descriptor_model() else "dlib"
    except FaceModelsMissing:
        return "dlib"


@dataclass(frozen=True)
class FaceDetections:
    """Per image: whether the CNN detector found a face, and its best detection's confidence (NaN: none)."""

    found: np.ndarray
    confidence: np.ndarray


class CnnFaceDetector:
    """dlib's CNN (MMOD) face detector with settings that work on 32-128 px decoded images.

    Each image is upscaled to `side` x `side` (INTER_CUBIC) and searched without further pyramid
    upsampling; a face counts when a detection's confidence exceeds `threshold` (dlib's own default 0).
    The detector's window is about 80 px, so a face must fill most of a 128 px frame: 64 px CelebA crops
    are all found at side 128, the smaller faces of `synthetic-faces` need 192 (docs/evaluation.md);
    `calibrated_side` picks the smallest side that works on a run's own decoded images. The cost grows
    with side^2 (side 256 is about 5x slower than 128).
    """

    def __init__(self, *, side: int = DLIB_SIDE, threshold: float = 0.0) -> None:
        self.side = side
        self.threshold = threshold

    def detect(self, images: np.ndarray, progress: bool | str = False, bar: Progress | None = None) -> FaceDetections:
        """`progress`: show a bar (a string: its label); `bar`: count the images on the caller's bar instead."""
        images = _face_images(images)
        side = checks.positive_int(self.side, "detector side", minimum=MIN_FACE_IMAGE_SIDE)
        _dlib_models()  # missing models fail here, in this process, with the install hint
        label = progress if isinstance(progress, str) else "dlib face detection" if progress else None
        confidence = in_processes(partial(_detect_block, side=side), images, label, bar)
        found = np.nan_to_num(confidence, nan=-np.inf) > self.threshold
        return FaceDetections(found, confidence)

    def settings(self) -> dict[str, Any]:
        return {"model": FACE_MODEL_FILES["detector"], "side": self.side, "threshold": self.threshold}


@dataclass(frozen=True)
class SideCalibration:
    """The detector side chosen for a set of images, and the share of them found at each side tried."""

    side: int
    found: dict[int, float]
    images: int
    target: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "found": {str(side): share for side, share in self.found.items()},
            "images": self.images,
            "target": self.target,
        }


def calibrated_side(
    images: np.ndarray,
    sides: tuple[int, ...] = CALIBRATION_SIDES,
    target: float = CALIBRATION_TARGET,
    progress: bool = False,
) -> SideCalibration:
    """The smallest of `sides` at which the CNN detector finds a face in at least `target` of `images`
    (e.g. a run's reconstructions, faces by construction); the largest side when none reaches it."""
    images = _face_images(images)
    target = checks.fraction(target, "calibration target")
    found: dict[int, float] = {}
    for side in sorted(sides):
        label = f"dlib detector calibration, side {side}" if progress else False
        found[side] = float(CnnFaceDetector(side=side).detect(images, progress=label).found.mean())
        if found[side] >= target:
            return SideCalibration(side, found, len(images), target)
    return SideCalibration(max(sides), found, len(images), target)


class FaceEmbedder:
    """128-d dlib face-recognition embeddings of whole images (the run's crops are centred faces).

    Each image is upscaled to `side` x `side`; the 5-point landmark model is run on the full frame and
    the ResNet embeds the aligned 150 x 150 chip, through ONNX Runtime where it is installed (`dlib_resnet`;
    descriptors within ~5e-7 of dlib's own). Distances below 0.6 mean "same person" to dlib.
    """

    def __init__(self, *, side: int = DLIB_SIDE) -> None:
        self.side = side

    def embed(self, images: np.ndarray, progress: bool | str = False, bar: Progress | None = None) -> np.ndarray:
        """`progress`: show a bar (a string: its label); `bar`: count the images on the caller's bar instead."""
        images = _face_images(images)
        side = checks.positive_int(self.side, "embedding side", minimum=MIN_FACE_IMAGE_SIDE)
        _dlib_models()
        # exported (once) and chosen here, so the workers neither race to export nor each say why not
        work = partial(_embed_block, side=side, onnx=_descriptor_model())
        label = progress if isinstance(progress, str) else "dlib face embeddings" if progress else None
        return in_processes(work, images, label, bar)

    def settings(self) -> dict[str, Any]:
        # the descriptor's route too: ONNX Runtime's descriptors differ from dlib's in the far digits (~1e-7)
        return {
            "landmarks": FACE_MODEL_FILES["landmarks"],
            "model": FACE_MODEL_FILES["embedding"],
            "side": self.side,
            "descriptor": descriptor_backend(),
        }
