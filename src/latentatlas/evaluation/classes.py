"""The class instrument, for runs whose data have classes (the `digits` source, `synthetic-faces` with
several classes): does a decoded sample look like one class of the real data, or like a blend?

A face rate means nothing on digits. Instead a small classifier is trained on the run's real training
images with their classes (multinomial logistic regression on the grey pixels in [0, 1], box-downsampled
to `size` x `size`; scikit-learn), and every row's images are scored by it:

* `class_confident`: share of images it assigns to one class with probability >= `threshold`
  (default CONFIDENT = 0.9): "decodes to a digit". A blend of two digits splits the probability.
* `class_coverage`: share of the classes that receive at least one confident image.
* `class_tv`: total-variation distance between the distribution of the predicted classes (argmax, every
  image) and the training images' class shares: 0 when each class comes out as often as in the data (a
  finite sample keeps it above 0: about 0.03-0.07 for 500 real digits); its bootstrap draws are re-centred
  on the estimate, since resampling alone inflates a distance between distributions.
* `class_accuracy` (reference rows, whose true classes are known): share predicted correctly. On the
  held-out images it is the instrument's own accuracy: the scale the other numbers are read against.

Pure: images and labels in, `Score`s out; each with a 95 % bootstrap interval over the images.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from PIL import Image

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.intervals import mean_interval, statistic_interval, stream_seed
from latentatlas.evaluation.score import Score
from latentatlas.stats import one_blas_thread

CLASS_COLUMN = "class"  # the metadata column that holds each image's class
CONFIDENT = 0.9


def grey_features(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 images (n, H, W, 3) -> grey pixels in [0, 1], box-downsampled to size x size, (n, size^2)."""
    images = checks.images(images, "images")
    grey = images.astype(np.float32).mean(axis=3)
    if grey.shape[1:] == (size, size):
        small = grey
    else:
        small = np.stack(
            [np.asarray(Image.fromarray(g).resize((size, size), Image.Resampling.BOX)) for g in grey]
        )  # mode "F" images: the box filter averages the float pixels exactly
    return (small.reshape(len(images), -1) / 255.0).astype(np.float64)


class ImageClassifier:
    """Multinomial logistic regression on downsampled grey pixels, trained on real images and their classes.

    Parameters
    ----------
    size : int
        Images are box-downsampled to size x size grey pixels (default 16: 256 features).
    threshold : float
        A prediction counts as confident when its largest class probability reaches it.
    C : float
        Inverse L2 regularisation strength of the logistic regression.
    max_iter : int
    random_state : int

    Attributes
    ----------
    classes_ : ndarray (K,)
        The class labels, sorted.
    prior_ : ndarray (K,)
        Share of each class among the training images.
    n_train_ : int
    model_ : sklearn LogisticRegression
        Fitted on the grey pixels in [0, 1].
    """

    def __init__(
        self,
        *,
        size: int = 16,
        threshold: float = CONFIDENT,
        C: float = 1.0,
        max_iter: int = 1000,
        random_state: int = 0,
    ) -> None:
        self.size = size
        self.threshold = threshold
        self.C = C
        self.max_iter = max_iter
        self.random_state = random_state

    @one_blas_thread  # on a busy machine BLAS threads slowed this fit from 0.5 s to 12 s
    def fit(self, images: np.ndarray, labels: np.ndarray) -> ImageClassifier:
        from sklearn.linear_model import LogisticRegression

        checks.positive_int(self.size, "classifier size", 2)
        checks.fraction(self.threshold, "confidence threshold")
        checks.positive_number(self.C, "C")
        checks.positive_int(self.max_iter, "max_iter")
        labels = np.asarray(labels)
        if labels.shape != (len(images),):
            raise LatentAtlasError(f"got {labels.shape} labels for {len(images)} images")
        self.classes_, counts = np.unique(labels, return_counts=True)
        if len(self.classes_) < 2:
            raise LatentAtlasError("the class instrument needs training images of at least two classes")
        self.prior_ = counts / counts.sum()
        # on the raw [0, 1] pixels: standardising would blow up pixels that are nearly constant in the training
        # images (the digits' empty borders), and a decoded image's faint noise there would decide the class
        self.model_ = LogisticRegression(C=float(self.C), max_iter=int(self.max_iter), random_state=self.random_state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)  # ConvergenceWarning: the fit is used as it is
            self.model_.fit(grey_features(images, int(self.size)), labels)
        self.n_train_ = len(labels)
        return self

    @one_blas_thread
    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities (n, K), columns in the order of `classes_`."""
        if not hasattr(self, "model_"):
            raise LatentAtlasError("the classifier is not fitted: call fit(images, labels) first")
        return np.asarray(self.model_.predict_proba(grey_features(images, int(self.size))))

    def settings(self) -> dict[str, Any]:
        """What the evaluation records about the instrument."""
        return {
            "model": "logistic regression (multinomial, L2) on grey pixels in [0, 1]",
            "size": int(self.size),
            "threshold": float(self.threshold),
            "C": float(self.C),
            "classes": [c.item() if hasattr(c, "item") else c for c in self.classes_],
            "training_images": int(self.n_train_),
        }

    def scores(self, images: np.ndarray, labels: np.ndarray | None = None, seed: int = 0) -> dict[str, Score]:
        """class_confident, class_coverage, class_tv of `images` and, with their true `labels`, class_accuracy;
        each interval on the stream of its column's name under `seed` (`intervals.stream_seed`)."""
        probabilities = self.predict_proba(images)
        predicted = probabilities.argmax(axis=1)
        confident = probabilities.max(axis=1) >= float(self.threshold)
        k = len(self.classes_)
        prior = self.prior_

        def coverage(values: np.ndarray) -> float:
            return len(np.unique(values[values >= 0])) / k

        def total_variation(values: np.ndarray) -> float:
            return 0.5 * float(np.abs(np.bincount(values, minlength=k) / len(values) - prior).sum())

        def stream(key: str) -> int:
            return stream_seed(seed, key)

        out = {
            "class_confident": mean_interval(confident, seed=stream("class_confident")),
            "class_coverage": statistic_interval(
                coverage, np.where(confident, predicted, -1), seed=stream("class_coverage")
            ),
            "class_tv": statistic_interval(total_variation, predicted, seed=stream("class_tv"), recentre=True),
        }
        if labels is not None:
            labels = np.asarray(labels)
            if labels.shape != (len(predicted),):
                raise LatentAtlasError(f"got {labels.shape} labels for {len(predicted)} images")
            out["class_accuracy"] = mean_interval(self.classes_[predicted] == labels, seed=stream("class_accuracy"))
        return out
