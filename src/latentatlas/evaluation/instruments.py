"""Score one row (a sampler's vectors and images, or a reference) against the held-out data: pure arrays in,
an `EvaluationRow` with a 95 % interval on every score out.

Instrument sets: "quick" (latent k-NN scores, radius shell, Mahalanobis, latent copies, held-out
log-likelihood, void share, Haar face rate and, where the data have classes, the class instrument: seconds
on a CPU), "standard" (quick + Inception FID / FID∞ / KID: the
instruments of earlier versions) and "full" (standard + dlib's CNN face rate and confidence,
face-embedding FD-face, precision/recall/density/coverage on embeddings and face copies). Interval
methods: see `intervals`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.classes import ImageClassifier
from latentatlas.evaluation.copies import copy_scores, face_threshold, latent_threshold, nearest_distances
from latentatlas.evaluation.faces import DLIB_SIDE, CnnFaceDetector, FaceDetector
from latentatlas.evaluation.inception import fid, kid
from latentatlas.evaluation.intervals import extrapolated_fid, mean_interval, median_interval, paired_interval
from latentatlas.evaluation.knn import KnnItems, knn_items
from latentatlas.evaluation.latent import inside_radius
from latentatlas.evaluation.table import EvaluationRow, RowKind, Score
from latentatlas.region_model import CORE_LEVEL, RegionModel
from latentatlas.stats import Mahalanobis

INSTRUMENT_SETS = ("quick", "standard", "full")


@dataclass(frozen=True)
class InstrumentSet:
    """Which instruments run: one of INSTRUMENT_SETS, with `fid_scores` / `faces` switching parts off."""

    haar: bool = True
    inception: bool = True
    cnn_faces: bool = True
    face_embeddings: bool = True

    @classmethod
    def named(cls, name: str, fid_scores: bool = True, faces: bool = True) -> InstrumentSet:
        if name not in INSTRUMENT_SETS:
            raise LatentAtlasError(f"instrument set must be one of {', '.join(INSTRUMENT_SETS)}, got {name!r}")
        full, inception = name == "full", name != "quick" and fid_scores
        return cls(haar=faces, inception=inception, cnn_faces=full and faces, face_embeddings=full and faces)

    @property
    def images(self) -> bool:
        return self.haar or self.inception or self.cnn_faces or self.face_embeddings


@dataclass
class HeldOut:
    """The held-out data and the fitted references every row is scored against.

    Attributes
    ----------
    z : ndarray (m, N)
        Held-out z-points.
    train_z : ndarray
        Training z-points: nearest-neighbour reference for latent copies.
    radius : (float, float)
        The held-out norm shell.
    mahalanobis : stats.Mahalanobis
        Fitted on the training z-points.
    latent_nearest : ndarray
        Nearest-training distance of each held-out z-point.
    features, embeddings, train_embeddings : ndarray or None
        Inception features and face embeddings of the held-out images; face embeddings of the decoder's
        images of the training z-points (all of them, up to a seeded FACE_COPY_REFERENCE), the copy reference.
    face_nearest : ndarray or None
        Nearest copy-reference distance of each held-out reconstruction's embedding (the copy baseline).
    detector_side : int
        The CNN face detector's side for every row (`faces.calibrated_side` on the run's reconstructions).
    regions : RegionModel or None
        The regions of the training z-points: `void_share` counts a row's points in none of their cores.
    classifier : evaluation.classes.ImageClassifier or None
        The class instrument, trained on the training images and their classes (data with classes only).
    """

    z: np.ndarray
    train_z: np.ndarray
    radius: tuple[float, float]
    mahalanobis: Mahalanobis
    latent_nearest: np.ndarray
    k: int
    chunk_size: int
    device: torch.device | str | None
    seed: int
    features: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    train_embeddings: np.ndarray | None = None
    face_nearest: np.ndarray | None = None
    detector_side: int = DLIB_SIDE
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    regions: RegionModel | None = None
    classifier: ImageClassifier | None = None


def _knn_scores(items: KnnItems, prefix: str, seed: int) -> dict[str, Score]:
    return {
        f"{prefix}precision": mean_interval(items.balls_per_fake > 0, seed=seed),
        f"{prefix}recall": mean_interval(items.real_in_fake_ball, seed=seed + 1),
        f"{prefix}density": mean_interval(items.balls_per_fake / items.k, seed=seed + 2),
        f"{prefix}coverage": mean_interval(items.real_ball_hit, seed=seed + 3),
    }


def _latent(held: HeldOut, z: np.ndarray, knn: bool, copies: bool) -> dict[str, Score]:
    seed = held.seed
    scores: dict[str, Score] = {}
    if knn:
        items = knn_items(held.z, z, k=held.k, chunk_size=held.chunk_size, device=held.device)
        scores.update(_knn_scores(items, "", seed))
    else:
        scores.update({key: Score(float("nan")) for key in ("precision", "recall", "density", "coverage")})
    if copies:
        nearest = nearest_distances(z, held.train_z, chunk_size=held.chunk_size)
        found = copy_scores(nearest, held.latent_nearest, latent_threshold(held.latent_nearest))
        scores["latent_copy_share"] = mean_interval(found.closer, seed=seed + 4)
        scores["latent_copy_ratio"] = Score(found.ratio)
    scores["mahalanobis_median_pct"] = median_interval(held.mahalanobis.percentile(z), seed=seed + 5)
    scores["inside_radius"] = mean_interval(inside_radius(z, *held.radius), seed=seed + 6)
    if held.regions is not None:
        scores["void_share"] = mean_interval(~held.regions.in_core(z, CORE_LEVEL), seed=seed + 16)
    return scores


def _inception(held: HeldOut, features: np.ndarray) -> dict[str, Score]:
    assert held.features is not None
    kid_mean, kid_se = kid(features, held.features, held.kid_subsets, held.kid_subset_size, held.seed)
    fid_infinity, _ = extrapolated_fid(fid, features, held.features, seed=held.seed)
    return {
        "fid": paired_interval(fid, features, held.features, resamples=20, seed=held.seed),
        "fid_infinity": Score(fid_infinity),
        "kid": Score(kid_mean, kid_mean - 1.96 * kid_se, kid_mean + 1.96 * kid_se),
        "kid_se": Score(kid_se),
    }


def _faces(
    held: HeldOut, instruments: InstrumentSet, images: np.ndarray, embeddings: np.ndarray | None, copies: bool
) -> dict:
    seed, scores = held.seed, {}
    if instruments.haar:
        scores["face_rate"] = mean_interval(FaceDetector().detect(images), seed=seed + 7)
    if instruments.cnn_faces:
        found = CnnFaceDetector(side=held.detector_side).detect(images)
        scores["cnn_face_rate"] = mean_interval(found.found, seed=seed + 8)
        confident = found.confidence[found.found]
        scores["cnn_confidence"] = median_interval(confident, seed=seed + 9) if len(confident) else Score(np.nan)
    if embeddings is not None and held.embeddings is not None:
        scores["fd_face"] = paired_interval(fid, embeddings, held.embeddings, resamples=50, seed=seed)
        if len(embeddings) > held.k and len(held.embeddings) > held.k:
            items = knn_items(held.embeddings, embeddings, k=held.k, chunk_size=held.chunk_size, device=held.device)
            scores.update(_knn_scores(items, "face_", seed + 10))
        if copies and held.train_embeddings is not None and held.face_nearest is not None:
            nearest = nearest_distances(embeddings, held.train_embeddings)
            found = copy_scores(nearest, held.face_nearest, face_threshold(held.face_nearest))
            scores["face_copy_share"] = mean_interval(found.closer, seed=seed + 14)
            scores["face_copy_ratio"] = Score(found.ratio)
    return scores


def score_row(
    held: HeldOut,
    instruments: InstrumentSet,
    name: str,
    kind: RowKind,
    z: np.ndarray,
    images: np.ndarray | None = None,
    *,
    knn: bool = True,
    copies: bool = True,
    features: np.ndarray | None = None,
    embeddings: np.ndarray | None = None,
    log_likelihood: np.ndarray | None = None,
    class_images: np.ndarray | None = None,
    class_labels: np.ndarray | None = None,
) -> EvaluationRow:
    """Every instrument of `instruments` on one row. `features` / `embeddings` of `images` when already
    computed (cached real sets); knn=False for the reconstruction row, whose z-points are the held-out ones;
    copies=False for the training reference row, whose items are training items themselves. With a class
    instrument (`held.classifier`), `class_images` (default: `images`) are classified and, where their
    true classes `class_labels` are known, scored for accuracy."""
    scores: dict[str, Any] = _latent(held, z, knn, copies and knn)
    if log_likelihood is not None:
        scores["log_likelihood"] = mean_interval(log_likelihood / z.shape[1], seed=held.seed + 15)
    if images is not None:
        if features is not None and held.features is not None:
            scores.update(_inception(held, features))
        scores.update(_faces(held, instruments, images, embeddings, copies))
    class_images = images if class_images is None else class_images
    if held.classifier is not None and class_images is not None:
        scores.update(held.classifier.scores(class_images, class_labels, seed=held.seed + 17))
    return EvaluationRow(name=name, kind=kind, n=len(z), scores=scores)


def held_out_log_likelihood(sampler: Any, z: np.ndarray) -> np.ndarray:
    """Per held-out z-point: the sampler's log-density (nats). Refused for samplers that define none."""
    method = getattr(sampler, "score_samples", None)
    if method is None:
        name = getattr(sampler, "name", type(sampler).__name__)
        raise LatentAtlasError(f"sampler {name} defines no density; a held-out log-likelihood needs one")
    values = np.asarray(method(z), dtype=np.float64)
    if values.shape != (len(z),) or not np.isfinite(values).all():
        raise LatentAtlasError("the sampler's log-likelihood is not one finite number per z-point")
    return values
