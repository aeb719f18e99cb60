"""Scores for generated latent vectors and the images they decode to (pure: arrays in, numbers out).

* `knn`: precision / recall / density / coverage with exact k-NN balls (latent or feature space);
* `latent`: the held-out radius shell; Mahalanobis percentiles come from `stats.Mahalanobis`;
* `inception`: InceptionV3 features, FID and KID;
* `faces`: face detection in decoded images;
* `table`: the typed rows (`EvaluationRow`, `Score`) and their Markdown/CSV form.

The run-level command lives in `latentatlas.pipelines.evaluate`; `evaluate_run` and `evaluate_points`
are still importable from here (loaded on first use, so this package never imports the run store).
"""

from __future__ import annotations

from typing import Any

from latentatlas.evaluation.faces import FaceDetector, face_rate
from latentatlas.evaluation.inception import fid, inception_features, inception_path, kid
from latentatlas.evaluation.knn import KNN_SCORES, knn_scores, kth_neighbour_distances, real_ball_counts
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

_PIPELINE_NAMES = ("evaluate_run", "evaluate_points")


def __getattr__(name: str) -> Any:
    if name in _PIPELINE_NAMES:  # backwards-compatible names for the pipeline functions
        from latentatlas.pipelines import evaluate

        return getattr(evaluate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "KNN_SCORES",
    "METRICS",
    "RADIUS_PERCENTILES",
    "REAL_ROW",
    "RECONSTRUCTION_ROW",
    "EvaluationRow",
    "FaceDetector",
    "Score",
    "face_rate",
    "fid",
    "inception_features",
    "inception_path",
    "inside_radius",
    "kid",
    "knn_scores",
    "kth_neighbour_distances",
    "radius_range",
    "real_ball_counts",
    "table_frame",
    "table_markdown",
]
