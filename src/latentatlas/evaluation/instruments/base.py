"""The instrument protocol: what one evaluation instrument declares, what it is prepared on, what it scores.

An instrument is one class in one module of this package, registered by one line in `__init__.py`:

* `name`: its registry key (also the name its random streams derive from);
* `columns`: the table columns it writes (`Metric`: key, which way is better, description);
* `needs`: the shared inputs it reads (`NEEDS`): the row scorer decodes images, computes Inception
  features and face embeddings, and loads the classes only when some selected instrument needs them;
* `level`: the smallest instrument set it belongs to ("quick" < "standard" < "full");
* `switch`: "fid" or "faces" when `--no-fid` / `--no-faces` turn it off;
* `check(image_size)`: refuse before any work (a missing model, images too small);
* `prepare(reference)`: fit or cache what it compares against, once per evaluation;
* `score(row) -> {column: Score}`: the row's scores with their 95 % intervals (columns it cannot
  compute on this row are left out);
* `settings()`: what `evaluation.json` records about it (merged into the settings).

Pure: `Reference` and `Row` carry arrays and a few callables (decode, cached embeddings, source images);
this package never imports the run store or the pipelines.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import torch

from latentatlas.evaluation.score import Metric, Score

Need = Literal["images", "inception", "face_embeddings", "classes"]
NEEDS: tuple[Need, ...] = ("images", "inception", "face_embeddings", "classes")
Level = Literal["quick", "standard", "full"]
LEVELS: tuple[Level, ...] = ("quick", "standard", "full")
RowRole = Literal["training", "held-out", "sample"]


class EmbeddingCache(Protocol):
    """Face embeddings of an image set, cached by the rows they were made from (`pipelines.feature_cache`)."""

    def embeddings(
        self, name: str, rows: np.ndarray, images: np.ndarray | Callable[[], np.ndarray], decoder: str | None = None
    ) -> np.ndarray: ...


@dataclass
class Reference:
    """The held-out data every row is compared with, and access to the run for what instruments fit on.

    Attributes
    ----------
    z : ndarray (m, N)
        Held-out z-points (a seeded subsample of at most n validation rows).
    rows : ndarray
        Their rows in the run's store.
    train_z, train_rows : ndarray
        Every training z-point and its row in the store.
    validation_z : ndarray
        Every validation z-point, in store order.
    k, chunk_size, device, seed, progress
        The evaluation's options.
    kid_subsets, kid_subset_size, max_regions
        Options of single instruments (KID, void share), as `evaluate_run` takes them.
    images, features, embeddings : ndarray or None
        Held-out images, their Inception features and face embeddings (when a selected instrument needs them).
    reconstructions, reconstruction_embeddings : ndarray or None
        decode(held-out z) and its face embeddings (computed once, when face embeddings are needed).
    classes : ndarray or None
        The class of every row of the store (data with classes only).
    decode : callable or None
        z-points -> the decoder's images (None when the run makes no images).
    source_images : callable or None
        store rows -> the run's real images of those rows.
    cache : EmbeddingCache or None
        Cached face embeddings of image sets.
    weights : str or None
        The weights id (cache keys of decoded images).
    """

    z: np.ndarray
    rows: np.ndarray
    train_z: np.ndarray
    train_rows: np.ndarray
    validation_z: np.ndarray
    k: int
    chunk_size: int
    device: torch.device | str | None
    seed: int
    progress: bool = False
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    max_regions: int = 12
    images: np.ndarray | None = None
    features: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    reconstructions: np.ndarray | None = None
    reconstruction_embeddings: np.ndarray | None = None
    classes: np.ndarray | None = None
    decode: Callable[[np.ndarray], np.ndarray] | None = None
    source_images: Callable[[np.ndarray], np.ndarray] | None = None
    cache: EmbeddingCache | None = None
    weights: str | None = None


@dataclass
class Row:
    """One row to score: a sampler's draw or a reference set, with the shared inputs computed for it.

    `role`: "training" for the "real (held-out)" reference (its items are training items: no copies),
    "held-out" for the reconstruction row (its z-points are the held-out ones: no latent k-NN scores),
    "sample" for a sampler. `sampler` is the fitted sampler of a sampler row (a density, if it has one).
    """

    name: str
    kind: Literal["reference", "sampler"]
    role: RowRole
    z: np.ndarray
    images: np.ndarray | None = None
    features: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    sampler: Any = None


class Instrument(ABC):
    """Base of every instrument: override the class attributes, `score` and, where needed, the rest."""

    name: ClassVar[str]
    columns: ClassVar[tuple[Metric, ...]]
    needs: ClassVar[frozenset[Need]] = frozenset()
    level: ClassVar[Level] = "quick"
    switch: ClassVar[Literal["fid", "faces"] | None] = None

    def check(self, image_size: int | None) -> None:  # noqa: B027  (optional hook: most need no check)
        """Refuse before any work (missing models, images too small); `image_size` None: the run makes no images."""

    def prepare(self, reference: Reference) -> None:  # noqa: B027  (optional hook)
        """Fit or cache what the rows are compared against (once per evaluation)."""

    @abstractmethod
    def score(self, row: Row) -> dict[str, Score]:
        """The row's scores, keyed by column; columns it cannot compute on this row are left out."""

    def settings(self) -> dict[str, Any]:
        """Entries of evaluation.json's settings (top-level keys)."""
        return {}


class FaceEmbeddingInstrument(Instrument):
    """An instrument on the dlib face embeddings of the decoded images: the full set, off with `--no-faces`, and
    refused up front when the face models are missing or the images are too small for them."""

    needs: ClassVar[frozenset[Need]] = frozenset({"images", "face_embeddings"})
    level: ClassVar[Level] = "full"
    switch: ClassVar[Literal["fid", "faces"] | None] = "faces"

    def check(self, image_size: int | None) -> None:
        from latentatlas.evaluation.faces import check_face_images

        check_face_images(image_size)
