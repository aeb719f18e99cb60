"""The evaluation's reference builder and row scorer: the run-level side of `evaluation.instruments`.

`build_reference` draws the held-out set and the training reference rows, loads what the selected instruments
need (images, Inception features and face embeddings of the real sets, through the feature cache) and
prepares every instrument on it. `RowScorer.score` makes one row (the "real (held-out)" and "reconstruction"
references, or a sampler's draw), computes its shared inputs once and asks every instrument for its scores.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.classes import CLASS_COLUMN
from latentatlas.evaluation.faces import FaceEmbedder
from latentatlas.evaluation.inception import inception_features
from latentatlas.evaluation.instruments import Instrument, Need, Reference, Row, needed
from latentatlas.evaluation.table import NO_REAL_IMAGES, REAL_ROW, RECONSTRUCTION_ROW, EvaluationRow
from latentatlas.pipelines.evaluate_plan import plan_line
from latentatlas.pipelines.feature_cache import FeatureCache

if TYPE_CHECKING:
    from latentatlas.store import Run


def held_out_rows(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows) of the run's source, checked against the z-point store."""
    subset = run.metadata()["subset"].to_numpy()
    train_rows, val_rows = np.flatnonzero(subset == "train"), np.flatnonzero(subset == "val")
    if len(val_rows) == 0:
        raise LatentAtlasError(
            f"run {run.path} has no held-out (validation) z-points to score against: "
            "train it with a validation fraction > 0 and encode it with its own data"
        )
    if len(train_rows) == 0:
        raise LatentAtlasError(f"run {run.path} has no training z-points to fit samplers on")
    return train_rows, val_rows


# z-points are float32 and the k-NN distances, covariances and mixture fits square them in float32 (torch)
# or accumulate those squares: a component beyond this bound overflows to inf and the statistics fail deep
# inside a fit, so it is refused up front with the row that holds it.
Z_LIMIT = float(np.sqrt(np.finfo(np.float32).max / 4096))


def check_zpoint_range(run: Run) -> None:
    """Refuse z-points with NaN, infinite or overflowing (|z| > Z_LIMIT, about 2.9e17) components, in one
    line that names the first bad row."""
    seen = 0
    for chunk in checks.row_chunks(run.zpoints()):
        bad = ~(np.isfinite(chunk) & (np.abs(chunk) <= Z_LIMIT))
        if bad.any():
            first = int(np.flatnonzero(bad.any(axis=1))[0])
            row, value = seen + first, chunk[first][bad[first]][0]
            raise LatentAtlasError(
                f"the z-points of run {run.path} hold {value:g} in row {row}: beyond +-{Z_LIMIT:.2g} their "
                f"squares overflow and no score means anything; run `latentatlas encode {run.path}` again"
            )
        seen += len(chunk)


def run_classes(run: Run) -> np.ndarray | None:
    """The class of every row of the store, when the run's data have classes (runs imported without images: none)."""
    meta = run.metadata()
    return meta[CLASS_COLUMN].to_numpy() if CLASS_COLUMN in meta and run.has_images else None


def decodes(run: Run) -> bool:
    """Whether the run can make images (an imported run needs its decoder)."""
    return not run.imported or (run.path / "decoder.pt").is_file()


REAL_IMAGES = "source images"


def real_images(run: Run) -> str:
    """What the evaluation's "real" images are: the source images, or, for a run imported from z-points alone,
    its decoder's images of its z-points (`NO_REAL_IMAGES`)."""
    return REAL_IMAGES if run.has_images else NO_REAL_IMAGES


def _source_images(run: Run) -> Callable[[np.ndarray], np.ndarray]:
    """rows -> the run's real images; a run imported without images has only its decoder's images of its z-points."""
    if run.has_images:
        images = run.images().images
        return lambda rows: np.asarray(images[rows])
    if not decodes(run):
        raise LatentAtlasError(
            f"run {run.path} was imported without a decoder: FID/KID and face rates need images; "
            "use --no-fid --no-faces for the latent-space scores, or import it again with --decoder"
        )
    return lambda rows: run.decode(np.asarray(run.zpoints()[rows]))


def pick(rows: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A sorted seeded subsample of n rows (all of them when there are no more than n)."""
    return np.sort(rng.choice(rows, size=n, replace=False)) if len(rows) > n else rows


@dataclass
class RowScorer:
    """Makes and scores the rows of one evaluation against its prepared `reference`."""

    run: Run
    reference: Reference
    instruments: list[Instrument]
    reference_rows: np.ndarray  # the training rows of the "real (held-out)" row
    train_images: np.ndarray | None
    cache: FeatureCache
    needs: set[Need]

    def score(
        self, step: str, sampler: Any = None, n: int = 0, seed: int = 0
    ) -> tuple[EvaluationRow, np.ndarray | None]:
        """Row `step` (REAL_ROW, RECONSTRUCTION_ROW or a sampler's name, with its fitted `sampler` drawing n
        vectors with `seed`) and its images (None when nothing is decoded)."""
        row = self._row(step, sampler, n, seed)
        if row.images is not None and row.features is None and "inception" in self.needs:
            row.features = inception_features(
                row.images, device=self.reference.device, progress=self.reference.progress
            )
        if row.images is not None and row.embeddings is None and "face_embeddings" in self.needs:
            row.embeddings = FaceEmbedder().embed(row.images, progress=self.reference.progress)
        scores = {}
        for instrument in self.instruments:
            scores.update(instrument.score(row))
        return EvaluationRow(name=step, kind=row.kind, n=len(row.z), scores=scores), row.images

    def _row(self, step: str, sampler: Any, n: int, seed: int) -> Row:
        ref, decode = self.reference, self.reference.decode
        if step == REAL_ROW:
            row = Row(step, "reference", "training", np.asarray(self.run.zpoints()[self.reference_rows]))
            row.images = self.train_images
            if row.images is not None and "inception" in self.needs:
                row.features = self.cache.features("train_features", self.reference_rows, row.images)
            if row.images is not None and "face_embeddings" in self.needs:
                row.embeddings = self.cache.embeddings("train_embeddings", self.reference_rows, row.images)
            return row
        if step == RECONSTRUCTION_ROW:
            row = Row(step, "reference", "held-out", ref.z)
            if ref.reconstructions is not None:
                row.images, row.embeddings = ref.reconstructions, ref.reconstruction_embeddings
            elif decode is not None:
                row.images = decode(ref.z)
            if row.images is not None and "inception" in self.needs and ref.weights is not None:
                # the decoder's images of the held-out points: cached under the weights id, like the copy reference
                row.features = self.cache.features("reconstruction_features", ref.rows, row.images, ref.weights)
            return row
        z = np.asarray(sampler.sample(n, seed=seed), dtype=np.float32)
        return Row(step, "sampler", "sample", z, images=decode(z) if decode is not None else None, sampler=sampler)


def build_reference(
    run: Run,
    instruments: list[Instrument],
    n: int,
    k: int,
    *,
    seed: int,
    chunk_size: int,
    device: torch.device | str | None,
    progress: bool,
    write: bool,
    options: dict[str, int],
    rows_count: int = 0,
) -> RowScorer:
    """Draw the held-out set (n validation rows) and the training reference rows, load what the instruments
    need, prepare each instrument on it, and return the row scorer. `options`: kid_subsets, kid_subset_size,
    max_regions. write=False leaves the run untouched (no feature cache). With `progress`, the plan (what the
    `rows_count` rows cost, `plan_line`) is printed before the first image is processed."""
    needs = needed(instruments)
    train_rows, val_rows = held_out_rows(run)
    all_z = run.zpoints()
    rng = np.random.default_rng(seed)
    held_rows = pick(val_rows, n, rng)
    reference_rows = pick(train_rows, n, rng)
    reference = Reference(
        z=np.asarray(all_z[held_rows]),
        rows=held_rows,
        train_z=np.asarray(all_z[train_rows]),
        train_rows=train_rows,
        validation_z=np.asarray(all_z[val_rows]),
        k=k,
        chunk_size=chunk_size,
        device=device,
        seed=seed,
        progress=progress,
        classes=run_classes(run) if "classes" in needs else None,
        weights=run.provenance()["weights_id"],
        kid_subsets=options["kid_subsets"],
        kid_subset_size=options["kid_subset_size"],
        max_regions=options["max_regions"],
    )
    cache = FeatureCache(run.path / "cache" / "features" if write else None, seed, device, progress)
    reference.cache = cache
    train_images = None
    if "images" in needs:
        reference.source_images = _source_images(run)
        reference.decode = run.decode
        size = run.image_size
        reference.images = checks.images(reference.source_images(held_rows), "held-out images")
        if reference.images.shape[1:] != (size, size, 3):
            raise LatentAtlasError(
                f"held-out images are {reference.images.shape[1:3]}, the run's model works at {size}x{size}"
            )
        train_images = reference.source_images(reference_rows)
        if progress and rows_count:  # the plan of an evaluation's rows (a script scoring its own rows has none)
            plan = plan_line(
                cache,
                instruments,
                rows_count,
                held_rows,
                reference_rows,
                reference.images,
                len(train_rows),
                reference.weights,
            )
            print(plan, file=sys.stderr, flush=True)
        if "inception" in needs:
            reference.features = cache.features("real_features", held_rows, reference.images)
        if "face_embeddings" in needs:
            reference.embeddings = cache.embeddings("real_embeddings", held_rows, reference.images)
            reference.reconstructions = run.decode(reference.z)
            if reference.weights is None:
                reference.reconstruction_embeddings = FaceEmbedder().embed(reference.reconstructions, progress=progress)
            else:
                reference.reconstruction_embeddings = cache.embeddings(
                    "reconstruction_embeddings", held_rows, reference.reconstructions, reference.weights
                )
    for instrument in instruments:
        instrument.prepare(reference)
    return RowScorer(run, reference, instruments, reference_rows, train_images, cache, needs)
