"""The class instrument (data with classes): does a decoded image look like one class of the real data?"""

from __future__ import annotations

from typing import Any

import numpy as np

from latentatlas import checks
from latentatlas.evaluation.classes import ImageClassifier
from latentatlas.evaluation.instruments.base import Instrument, Reference, Row
from latentatlas.evaluation.intervals import stream_seed
from latentatlas.evaluation.score import Metric, Score

MAX_CLASSIFIER_IMAGES = 5000  # training images the class instrument learns from (a seeded subsample beyond)


class ClassInstrument(Instrument):
    name = "classes"
    columns = (
        Metric("class_accuracy", True, "reference rows: share of images the class instrument assigns their true class"),
        Metric(
            "class_confident",
            True,
            "share of images assigned one class with probability >= 0.9 by the class instrument",
        ),
        Metric("class_coverage", True, "share of the classes that receive at least one confident image"),
        Metric("class_tv", False, "total-variation distance of the predicted classes from the training class shares"),
    )
    needs = frozenset({"images", "classes"})

    def prepare(self, reference: Reference) -> None:
        self.reference = reference
        self.classifier: ImageClassifier | None = None
        if reference.classes is None or reference.source_images is None:
            return
        rows = reference.train_rows
        if len(rows) > MAX_CLASSIFIER_IMAGES:
            rng = np.random.default_rng(stream_seed(reference.seed, self.name))
            rows = np.sort(rng.choice(rows, size=MAX_CLASSIFIER_IMAGES, replace=False))
        images = checks.images(np.asarray(reference.source_images(rows)), "training images")
        self.classifier = ImageClassifier(random_state=reference.seed).fit(images, reference.classes[rows])

    def score(self, row: Row) -> dict[str, Score]:
        ref = self.reference
        # the classifier learnt from training images: the training reference row is judged on held-out ones
        images = ref.images if row.role == "training" else row.images
        if self.classifier is None or images is None:
            return {}
        labels = ref.classes[ref.rows] if row.kind == "reference" and ref.classes is not None else None
        return self.classifier.scores(images, labels, seed=ref.seed)

    def settings(self) -> dict[str, Any]:
        return {} if self.classifier is None else {"class_instrument": self.classifier.settings()}
