"""The evaluation's plan, printed before the first image is processed: rows × n, the images each slow
instrument will process, what the feature cache already holds, and an estimate of the time from a short
timing probe of those instruments on a few held-out images (their models load during the probe, which
the evaluation needs anyway)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.faces import CALIBRATION_SIDES, CnnFaceDetector, FaceEmbedder
from latentatlas.evaluation.inception import inception_backend, inception_features
from latentatlas.evaluation.instruments import Instrument, needed
from latentatlas.evaluation.instruments.cnn_faces import CALIBRATION_IMAGES, DETECTOR_IMAGES
from latentatlas.evaluation.instruments.face_copies import FACE_COPY_REFERENCE
from latentatlas.evaluation.workers import like_a_worker
from latentatlas.io import read_json, usable_cores
from latentatlas.pipelines.feature_cache import FeatureCache

PROBE_IMAGES = 8  # images each slow instrument is timed on (after a warm-up on the same images)


def _seconds_per_image(work: Callable[[np.ndarray], object], images: np.ndarray) -> float:
    # the warm-up loads the model and lets ONNX Runtime plan this batch shape: after one image only, the timed
    # Inception batch ran ~1.3x slower than the evaluation's batches
    work(images[:PROBE_IMAGES])
    started = time.perf_counter()
    work(images[:PROBE_IMAGES])
    return (time.perf_counter() - started) / len(images[:PROBE_IMAGES])


def _holds_decoded(cache: FeatureCache, n: int, weights: str | None) -> bool:
    """Whether the cache holds the face-copy reference (decoded training images' embeddings) of these weights;
    its rows are drawn by the instrument, so the key is matched on its size and decoder."""
    if cache.folder is None or not (cache.folder / "train_decoded_embeddings.npy").is_file():
        return False
    try:
        key = read_json(cache.folder / "train_decoded_embeddings.json")
    except LatentAtlasError:
        return False
    return isinstance(key, dict) and key.get("n") == n and key.get("decoder") == weights


def _clock(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def plan_line(
    cache: FeatureCache,
    instruments: list[Instrument],
    rows: int,
    held_rows: np.ndarray,
    reference_rows: np.ndarray,
    images: np.ndarray,
    train_count: int,
    weights: str | None,
) -> str:
    """One line: `rows` rows × n; per slow instrument, the images it will process (the cached sets left
    out) and the estimated seconds from a timing probe; what the cache holds. The detector is timed at the
    smallest calibration side (its cost grows with side², the side is calibrated after this line)."""
    n, needs = len(held_rows), needed(instruments)
    names = {instrument.name for instrument in instruments}
    cached: list[str] = []
    steps: list[tuple[str, int, Callable[[np.ndarray], object]]] = []
    if "inception" in needs:
        count = rows * n + n  # every row, and the held-out set
        for name, what, keyed in (
            ("real_features", "held-out", held_rows),
            ("train_features", "training", reference_rows),
        ):
            if cache.holds(name, cache.feature_key(keyed)):
                cached.append(f"{what} Inception features")
                count -= n
        if weights is not None and cache.holds("reconstruction_features", cache.feature_key(held_rows, weights)):
            cached.append("reconstruction Inception features")
            count -= n
        steps.append(("Inception", count, lambda batch: inception_features(batch, device=cache.device)))
    if "face_embeddings" in needs:
        count = rows * n + n  # every row (the reconstructions' once), and the held-out set
        for name, what, keyed in (
            ("real_embeddings", "held-out", held_rows),
            ("train_embeddings", "training", reference_rows),
        ):
            if cache.holds(name, cache.embedding_key(keyed)):
                cached.append(f"{what} dlib embeddings")
                count -= n
        if weights is not None and cache.holds("reconstruction_embeddings", cache.embedding_key(held_rows, weights)):
            cached.append("reconstruction dlib embeddings")
            count -= n
        if "face_copies" in names:
            copies = min(FACE_COPY_REFERENCE, train_count)
            if _holds_decoded(cache, copies, weights):
                cached.append("decoded training dlib embeddings")
            else:
                count += copies
        steps.append(("dlib embeddings", count, lambda batch: FaceEmbedder().embed(batch)))
    if "cnn_faces" in names:
        steps.append(
            (
                f"dlib detection (side {CALIBRATION_SIDES[0]}+)",
                rows * min(n, DETECTOR_IMAGES) + CALIBRATION_IMAGES * len(CALIBRATION_SIDES) // 2,
                lambda batch: CnnFaceDetector(side=CALIBRATION_SIDES[0]).detect(batch),
            )
        )
    parts, total = [], 0.0
    for label, count, work in steps:
        # every step but Inception on the GPU or through TorchScript runs on one one-thread worker per core
        if label != "Inception" or inception_backend(cache.device) == "onnx":
            with like_a_worker():
                seconds = count * _seconds_per_image(work, images) / usable_cores()
        else:
            seconds = count * _seconds_per_image(work, images)
        total += seconds
        parts.append(f"{label} {count} images (~{_clock(seconds)})")
    line = f"latentatlas: plan: {rows} rows × n = {n}"
    if parts:
        line += "; " + ", ".join(parts)
        line += f"; cached: {', '.join(cached)}" if cached else "; nothing cached yet"
        line += f"; estimate ~{_clock(total)} for the image instruments (timed on {PROBE_IMAGES} images)"
    return line
