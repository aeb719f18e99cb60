"""Scores for generated latent vectors and the images they decode to (pure: arrays in, numbers out).

* `knn`: precision / recall / density / coverage with exact k-NN balls (latent or feature space);
* `latent`: the held-out radius shell; Mahalanobis percentiles come from `stats.Mahalanobis`;
* `inception`: InceptionV3 features, FID and KID;
* `faces`: face detection (Haar, dlib CNN) and dlib face embeddings;
* `classes`: the class instrument for data with classes (confident share, coverage, class distribution);
* `copies`: copy shares from nearest-training distances (`knn.nearest_distances`) of samples and held-out data;
* `intervals`: bootstrap intervals, FID∞, significance;
* `instruments`: the instruments, one module each, their protocol (`Instrument`, `Reference`, `Row`) and
  registry (`INSTRUMENTS`, `register`, `instrument_set`: quick / standard / full);
* `score`: `Score` (a value with its 95 % interval) and `Metric` (a column);
* `verdicts`: the seed's sampler claims as `Finding`s, and the ranking;
* `table`: the typed rows (`EvaluationRow`, `Score`) and their Markdown/CSV form.

The run-level command lives in `latentatlas.pipelines.evaluate` (`evaluate_run`, `evaluate_points`):
this package never imports the run store or the pipelines.
"""

from __future__ import annotations

from latentatlas.evaluation.classes import ImageClassifier
from latentatlas.evaluation.copies import copy_scores
from latentatlas.evaluation.faces import CnnFaceDetector, FaceDetector, FaceEmbedder, face_rate
from latentatlas.evaluation.inception import fid, inception_features, inception_path, kid
from latentatlas.evaluation.intervals import extrapolated_fid, mean_interval, paired_interval
from latentatlas.evaluation.knn import (
    KNN_SCORES,
    knn_items,
    knn_scores,
    kth_neighbour_distances,
    nearest_distances,
    real_ball_counts,
)
from latentatlas.evaluation.latent import RADIUS_PERCENTILES, inside_radius, radius_range
from latentatlas.evaluation.table import (
    METRICS,
    REAL_ROW,
    RECONSTRUCTION_ROW,
    EvaluationRow,
    Score,
    table_frame,
    table_markdown,
)

__all__ = [
    "KNN_SCORES",
    "METRICS",
    "RADIUS_PERCENTILES",
    "REAL_ROW",
    "RECONSTRUCTION_ROW",
    "CnnFaceDetector",
    "EvaluationRow",
    "FaceDetector",
    "FaceEmbedder",
    "ImageClassifier",
    "Score",
    "copy_scores",
    "extrapolated_fid",
    "face_rate",
    "fid",
    "inception_features",
    "inception_path",
    "inside_radius",
    "kid",
    "knn_items",
    "knn_scores",
    "mean_interval",
    "nearest_distances",
    "paired_interval",
    "kth_neighbour_distances",
    "radius_range",
    "real_ball_counts",
    "table_frame",
    "table_markdown",
]
