"""Copy detection: is a generated sample closer to some training item than held-out real data is?

For every generated item and every held-out item, the distance to the nearest *training* item
(`knn.nearest_distances`, exact): in latent space to the training z-points; in face-embedding space among
decoded images (samples and held-out reconstructions against the decoder's images of the training
z-points, since against the photographs every decoded image is far). A sampler that copies training data
(e.g. `resample` with little jitter) has much smaller distances than held-out data, which the training
never saw.

* share: fraction of samples closer than `threshold` to some training item; in latent space the
  threshold is half the held-out median, in face-embedding space the stricter of that and dlib's
  same-identity distance 0.6 (documented in docs/evaluation.md), so held-out data itself has a small share;
* ratio: median nearest-training distance of the samples / that of the held-out items (1: like
  unseen real data; near 0: copies).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latentatlas import checks
from latentatlas.errors import LatentAtlasError

SAME_IDENTITY_DISTANCE = 0.6  # dlib's face-recognition threshold: pairs closer than this are one person
LATENT_THRESHOLD_FRACTION = 0.5  # latent copies: closer than this share of the held-out median distance


@dataclass(frozen=True)
class CopyScores:
    """Nearest-training distances of samples against held-out data.

    Attributes
    ----------
    closer : ndarray of bool
        Per sample: its nearest training item is closer than `threshold`.
    held_out_share : float
        The same share for the held-out items (what unseen real data scores).
    ratio : float
        Median sample distance / median held-out distance.
    threshold : float
    """

    closer: np.ndarray
    held_out_share: float
    ratio: float
    threshold: float

    @property
    def share(self) -> float:
        return float(self.closer.mean())


def copy_scores(sample_distances: np.ndarray, held_out_distances: np.ndarray, threshold: float) -> CopyScores:
    """Compare nearest-training distances of samples with those of held-out items."""
    threshold = checks.positive_number(threshold, "copy threshold")
    samples = np.asarray(sample_distances, dtype=np.float64)
    held = np.asarray(held_out_distances, dtype=np.float64)
    if len(samples) == 0 or len(held) == 0:
        raise LatentAtlasError("copy scores need at least one sample and one held-out distance")
    held_median = float(np.median(held))
    ratio = float(np.median(samples) / held_median) if held_median > 0 else float("nan")
    return CopyScores(samples < threshold, float((held < threshold).mean()), ratio, threshold)


def face_threshold(held_out_distances: np.ndarray) -> float:
    """The face copy threshold among decoded images: dlib's same-identity 0.6, or the relative rule of the
    latent space when that is stricter. Decoded 64 px faces are blurred alike, so on celeba-10k every
    decoded sample (even uniform-box's grey images) lay within 0.6 of some decoded training image."""
    return min(SAME_IDENTITY_DISTANCE, latent_threshold(held_out_distances))


def latent_threshold(held_out_distances: np.ndarray) -> float:
    """The latent copy threshold: LATENT_THRESHOLD_FRACTION of the held-out median nearest-training distance."""
    median = float(np.median(np.asarray(held_out_distances, dtype=np.float64)))
    if median <= 0:
        raise LatentAtlasError("held-out z-points coincide with training z-points; the copy threshold is undefined")
    return LATENT_THRESHOLD_FRACTION * median
