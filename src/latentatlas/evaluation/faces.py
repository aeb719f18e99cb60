"""Face instruments for decoded images.

Haar: OpenCV's bundled frontal-face cascade with fixed, documented settings (fast, coarse).
"""

from __future__ import annotations

import os
from functools import lru_cache

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
