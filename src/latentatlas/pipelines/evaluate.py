"""`latentatlas evaluate`: score a run's samplers against its held-out data and write RUN/evaluation/.

One row per sampler plus two references on the same n: "real (held-out)" (a seeded subsample of n
training z-points / images scored against the held-out set) and "reconstruction" (decode(encode(x)) of
the held-out images: the ceiling a sampler can reach with this decoder; its k-NN scores are not computed,
because its latent points are the held-out points themselves).

`evaluate_run` checks its options, builds the reference (`evaluate_rows.build_reference`: the held-out set
and every selected instrument prepared on it), scores each row (`evaluate_rows.RowScorer`) and writes the
result; the instruments themselves live in `evaluation.instruments`, one module each.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.faces import FaceDetector, FaceModelsMissing
from latentatlas.evaluation.frontier import frontier_lines
from latentatlas.evaluation.instruments import Instrument, instrument_set, needed
from latentatlas.evaluation.knn import check_k, real_ball_counts
from latentatlas.evaluation.latent import inside_radius, radius_range
from latentatlas.evaluation.table import (
    REAL_ROW,
    RECONSTRUCTION_ROW,
    EvaluationRow,
    evaluation_notes,
    row_label,
    table_frame,
    table_markdown,
)
from latentatlas.evaluation.verdicts import evaluation_findings, ranking
from latentatlas.findings import Finding
from latentatlas.io import atomic_folder, read_json, to_jsonable, write_json, write_text
from latentatlas.pipelines.evaluate_entries import merge_entries, save_entries
from latentatlas.pipelines.evaluate_figures import PREVIEW, write_figures, write_previews
from latentatlas.pipelines.evaluate_rows import (
    RowScorer,
    build_reference,
    check_zpoint_range,
    decodes,
    held_out_rows,
    real_images,
    run_classes,
)
from latentatlas.pipelines.reencode import Reencoded, check_rounds
from latentatlas.progress import Progress, epoch_progress
from latentatlas.region_model import MAX_REGIONS
from latentatlas.samplers import SAMPLERS, load_sampler, make_sampler, sampler_options
from latentatlas.stats import Mahalanobis

if TYPE_CHECKING:
    from latentatlas.store import Run

INTERVALS = (
    "95 % percentile bootstrap: over the row's items for shares, medians and k-NN scores "
    "(1000 resamples), over samples and reference for FID (20) and FD-face (50); KID: mean ± 1.96 SE"
)


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
    files : list of dict
        {"file", "caption"} of the other files under RUN/evaluation/ (previews.npz: each row's first images).
    other_n : list of int
        The n of earlier evaluations of the run (same weights) that are not in the table: scores at
        another n are not comparable, so the table, ranking and figures hold this evaluation's n only.
    frontier : list of str
        The best operating point of each sampler (its row of best quality that does not copy), one
        sentence each (`evaluation.frontier`).
    """

    rows: list[EvaluationRow]
    settings: dict[str, Any]
    figures: list[dict[str, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    ranking: list[str] = field(default_factory=list)
    other_n: list[int] = field(default_factory=list)
    files: list[dict[str, str]] = field(default_factory=list)
    frontier: list[str] = field(default_factory=list)

    @property
    def table(self) -> pd.DataFrame:
        return table_frame(self.rows)

    def row(self, name: str) -> EvaluationRow:
        return next(r for r in self.rows if r.name == name)


def _validate_samplers(samplers: list[str] | None, sampler_options: dict[str, dict] | None) -> list[str]:
    names = list(SAMPLERS) if samplers is None else list(samplers)
    if not names:
        raise LatentAtlasError("no samplers to evaluate")
    for name in names:
        make_sampler(name, **(sampler_options or {}).get(name, {}))  # unknown names / options fail here, before work
    return names


@dataclass(frozen=True)
class SamplerStep:
    """One sampler row to score: its label (`row_label`), the sampler's registry name and its options."""

    label: str
    sampler: str
    options: dict[str, Any]


# Options that change only how a fitted sampler draws, not its fit: every row of one sampler shares one fit.
DRAW_OPTIONS = ("temperature", "reencode")


def sampler_steps(
    names: list[str],
    options: dict[str, dict],
    temperatures: Sequence[float] | None = None,
    reencodes: Sequence[int] | None = None,
) -> list[SamplerStep]:
    """The sampler rows: one per sampler, or, with `temperatures`, one per temperature for every sampler that has
    a `temperature` parameter (the others keep their one row). Each temperature is checked by the sampler's
    own option check; a list that no selected sampler can use is refused. With `reencodes` (rounds of
    z <- encode(decode(z)), `pipelines.reencode`), each of those rows once per number of rounds (0: as drawn)."""
    if temperatures is not None:
        temperatures = list(dict.fromkeys(float(t) for t in temperatures))  # once each, in the order given
        tempered = [name for name in names if "temperature" in sampler_options(name)]
        if not temperatures:
            raise LatentAtlasError("temperatures: give at least one, e.g. 0.7,0.85,1.0")
        if not tempered:
            having = [name for name in SAMPLERS if "temperature" in sampler_options(name)]
            raise LatentAtlasError(
                f"--temperature applies to none of the samplers {', '.join(names)} (those with a temperature: "
                f"{', '.join(having)})"
            )
        for name in tempered:
            for temperature in temperatures:
                make_sampler(name, **{**options.get(name, {}), "temperature": temperature})
    steps = []
    for name in names:
        own = dict(options.get(name, {}))
        if temperatures is None or "temperature" not in sampler_options(name):
            steps.append(SamplerStep(row_label(name, own), name, own))
            continue
        for temperature in temperatures:
            # T = 1 is the untempered sampler (bit for bit): its row is the plain one, with its earlier entries
            tempered = {k: v for k, v in own.items() if k != "temperature"}
            if temperature != 1.0:
                tempered["temperature"] = temperature
            steps.append(SamplerStep(row_label(name, tempered), name, tempered))
    if reencodes is None:
        return steps
    rounds = list(dict.fromkeys(check_rounds(r) for r in reencodes))
    if not rounds:
        raise LatentAtlasError("--reencode: give at least one number of rounds, e.g. 0,2")
    expanded = []
    for step in steps:
        for count in rounds:
            drawn = {**step.options, "reencode": count} if count else dict(step.options)
            expanded.append(SamplerStep(row_label(step.sampler, drawn), step.sampler, drawn))
    return expanded


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


# A fit that took at least this long is kept in RUN/cache/samplers/ for the next evaluation (on celeba-10k the
# neural samplers and gmm-bic: 20-90 s each, 3-4 min of a warm 16-row evaluation); quicker fits are redone,
# so resample's copy of the training points and the Gaussians' moments do not fill the run folder.
KEEP_FIT_SECONDS = 5.0


def _saved_fits(run: Run) -> list[Path]:
    """Sampler folders that hold a fit with its info.json: `latentatlas sample` folders, then kept fits."""
    return [path.parent for pattern in ("samples/*/info.json", "cache/samplers/*/info.json")
            for path in sorted(run.path.glob(pattern))]  # fmt: skip


def fitted_sampler(
    run: Run, name: str, options: dict[str, Any], train_z: np.ndarray, progress: bool, keep: bool = False
) -> Any:
    """The sampler `name` fitted on the training z-points: reused from a `latentatlas sample` folder of the run,
    or from a fit an earlier evaluation kept (RUN/cache/samplers/), when one holds the same sampler, options
    and training z-points (the same store, encoded by the same weights); otherwise fitted here, with a message
    (some fits take minutes), and with `keep` kept for the next evaluation when it took KEEP_FIT_SECONDS or more."""
    estimator = make_sampler(name, **options)
    params = to_jsonable(estimator.get_params())  # as info.json stores them (write_json: NaN -> null)
    provenance = run.provenance()
    for folder in _saved_fits(run):
        try:
            info = read_json(folder / "info.json")
            same = (
                isinstance(info, dict)
                and info.get("sampler") == name
                and to_jsonable(info.get("options")) == params
                and info.get("subset") == "train"
                and info.get("where") is None
                and info.get("fitted_on") == len(train_z)
                and (folder / "sampler").is_dir()
                and info.get("weights_id") == provenance["weights_id"]
                and info.get("store_id") == provenance["store_id"]
            )
            if same:
                sampler = load_sampler(folder / "sampler")
                if getattr(sampler, "n_features_", None) == train_z.shape[1]:
                    if progress:
                        print(f"latentatlas: {name}: reusing the fit in {folder}", file=sys.stderr)
                    return sampler
        except LatentAtlasError:
            continue  # a damaged or foreign folder: fit instead
    if progress:
        print(f"latentatlas: fitting {name} on {len(train_z)} training z-points", file=sys.stderr)
    started = time.perf_counter()
    estimator.fit(train_z, progress=epoch_progress() if progress else None)
    if keep and time.perf_counter() - started >= KEEP_FIT_SECONDS:
        digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
        info = {**provenance, "command": "evaluate", "sampler": name, "options": params, "subset": "train",
                "where": None, "fitted_on": len(train_z)}  # fmt: skip
        try:
            with atomic_folder(run.path / "cache" / "samplers" / f"{name}-{digest}", kind="sampler-fit") as tmp:
                estimator.save(tmp / "sampler")
                write_json(tmp / "info.json", info)
        except (OSError, LatentAtlasError) as exc:  # a cache: the evaluation goes on without it
            print(f"latentatlas: {name}: the fit is not kept for the next evaluation ({exc})", file=sys.stderr)
    return estimator


def _instruments(run: Run, name: str, fid_scores: bool, faces: bool) -> list[Instrument]:
    """The set's instruments that apply to this run (the class instrument: data with classes only)."""
    chosen = instrument_set(name, fid_scores, faces)
    return [i for i in chosen if "classes" not in i.needs or run_classes(run) is not None]


def _available(tools: list[Instrument], image_size: int | None) -> list[Instrument]:
    """Each instrument's check; those whose face models are missing are left out with one line (the rest run)."""
    kept, missing = [], None
    for instrument in tools:
        try:
            instrument.check(image_size)
            kept.append(instrument)
        except FaceModelsMissing as error:
            missing = error
    if missing is not None:
        print(f"latentatlas: {missing}; evaluating without the dlib face instruments", file=sys.stderr)
    return kept


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
    temperatures: Sequence[float] | None = None,
    reencodes: Sequence[int] | None = None,
) -> Evaluation:
    """Score each sampler (fitted on the training z-points, n samples) against the run's held-out data.

    The held-out set is a seeded subsample of at most n validation rows; an n larger than the held-out
    set is capped to it (with a message) so that every row uses the same n. `instruments` is "quick",
    "standard" (the default: + FID/KID) or "full" (+ dlib faces; see `evaluation.instruments`).
    `max_regions` bounds the BIC sweep that finds the regions of the training z-points (void share).
    `temperatures` gives one row per temperature to every sampler with a `temperature` parameter (the
    quality-novelty frontier; each sampler is fitted once, the temperature only changes its draw). `reencodes`
    gives each of those rows once per number of rounds of z <- encode(decode(z)) (`pipelines.reencode`).
    Writes RUN/evaluation/evaluation.{json,csv,md}, entries/ and figures (unless write=False) and returns
    the rows, findings and ranking.
    """
    n, seed = checks.positive_int(n, "n"), checks.seed(seed)
    chunk_size = checks.positive_int(chunk_size, "chunk size")
    max_regions = checks.positive_int(max_regions, "max_regions")
    tools = _instruments(run, instruments, fid_scores, faces)
    names = _validate_samplers(samplers, sampler_options)
    steps = sampler_steps(names, sampler_options or {}, temperatures, reencodes)
    check_rounds(max(reencodes or [0]), run)  # before any work: re-encoding needs the run's encoder
    tools = _available(tools, run.image_size if decodes(run) else None)
    train_rows, val_rows = held_out_rows(run)
    check_zpoint_range(run)
    check_k(k, {"the held-out set": len(val_rows)})
    n = _n_used(n, len(val_rows))
    k = check_k(k, {"the sample": n})
    if "inception" in needed(tools) and n < 2:
        raise LatentAtlasError("FID/KID need at least 2 images per set; raise -n or use --no-fid")

    options = {"kid_subsets": kid_subsets, "kid_subset_size": kid_subset_size, "max_regions": max_regions}
    scorer = build_reference(
        run,
        tools,
        n,
        k,
        seed=seed,
        chunk_size=chunk_size,
        device=device,
        progress=progress,
        write=write,
        options=options,
        rows_count=2 + len(steps),
    )
    rows, previews = _score_rows(scorer, steps, n, seed)
    settings = {
        "n": n,
        "seed": seed,
        "k": k,
        "instruments": instruments,
        "held_out": len(scorer.reference.rows),
        "held_out_available": len(val_rows),
        "train_points": len(train_rows),
        "fid": any(instrument.switch == "fid" for instrument in tools),
        "faces": faces,
        "intervals": INTERVALS,
        "kid_subsets": kid_subsets,
        "kid_subset_size": kid_subset_size,
        "sampler_options": sampler_options or {},
        "temperatures": None if temperatures is None else sorted({float(t) for t in temperatures}),
        "reencodes": None if reencodes is None else sorted({int(r) for r in reencodes}),
    }
    for instrument in tools:
        settings.update(instrument.settings())
    settings["real_images"] = real_images(run)
    result = Evaluation(rows=rows, settings=settings)
    _judge(result)
    if write:
        with run.lock():
            merged = merge_entries(run.path / "evaluation-entries", rows, seed, run.provenance()["weights_id"])
            result.rows, result.other_n = merged.rows, merged.other_n
            _judge(result)
            write_evaluation(run, result, previews)
            save_entries(merged)  # only now: an evaluation that failed leaves no entry behind
    return result


def _judge(result: Evaluation) -> None:
    """The findings, ranking and frontier of the table as it stands (the merged entries at its n)."""
    result.findings, result.ranking = evaluation_findings(result.rows), ranking(result.rows)
    result.frontier = frontier_lines(result.rows)


def _score_rows(
    scorer: RowScorer, steps: list[SamplerStep], n: int, seed: int
) -> tuple[list[EvaluationRow], dict[str, np.ndarray]]:
    """The two reference rows, then one row per sampler step (each sampler fitted or reused once, its other
    temperatures a copy of the fitted sampler with only the temperature changed, its re-encoded rows that
    sampler's draws re-encoded), and the first images of each."""
    rows: list[EvaluationRow] = []
    previews: dict[str, np.ndarray] = {}  # the first PREVIEW images of each row, for samples.png
    labels = [REAL_ROW, RECONSTRUCTION_ROW, *(step.label for step in steps)]
    by_label = {step.label: step for step in steps}
    fitted: dict[str, Any] = {}
    ref = scorer.reference
    with Progress(len(labels), "evaluate", "rows", enabled=ref.progress, line_every=0) as bar:
        for label in labels:
            started = time.perf_counter()
            sampler, step = None, by_label.get(label)
            if step is not None:
                fit_options = {k: v for k, v in step.options.items() if k not in DRAW_OPTIONS}
                if step.sampler not in fitted:
                    fit = fitted_sampler(
                        scorer.run,
                        step.sampler,
                        fit_options,
                        ref.train_z,
                        ref.progress,
                        keep=scorer.cache.folder is not None,
                    )
                    fitted[step.sampler] = fit
                sampler = fitted[step.sampler]
                if "temperature" in step.options:  # fitting ignores the temperature: only the draw changes
                    sampler = copy.copy(sampler)
                    sampler.temperature = float(step.options["temperature"])
                if step.options.get("reencode"):
                    sampler = Reencoded(sampler, scorer.run, int(step.options["reencode"]))
            row, images = scorer.score(label, sampler, n, seed)
            row.seconds = round(time.perf_counter() - started, 2)
            row.seed = seed
            if step is not None:
                row.options, row.sampler = dict(step.options), step.sampler
            rows.append(row)
            bar.update(1, f"{label}, {row.seconds:.0f} s")
            if images is not None:
                previews[label] = np.asarray(images[:PREVIEW])
    return rows, previews


def write_evaluation(run: Run, result: Evaluation, previews: dict[str, np.ndarray]) -> None:
    """RUN/evaluation/: evaluation.json (settings, flat row records, figures), .csv, .md and the figures, as one
    artifact folder, so a kill never leaves a table and its figures from two different evaluations."""
    with atomic_folder(run.path / "evaluation", kind="evaluation") as out_dir:
        result.figures = write_figures(out_dir, result.rows, previews)
        result.files = write_previews(out_dir, result.rows, previews)
        records = [row.record() for row in result.rows]
        write_json(
            out_dir / "evaluation.json",
            {
                "run": str(run.path),
                **run.provenance(),
                "settings": result.settings,
                "rows": records,
                "figures": result.figures,
                "files": result.files,
                "findings": [finding.to_dict() for finding in result.findings],
                "ranking": result.ranking,
                "frontier": result.frontier,
                "also_evaluated_at_n": result.other_n,
            },
        )
        write_text(out_dir / "evaluation.csv", result.table.to_csv(index=False))
        write_text(out_dir / "evaluation.md", evaluation_markdown(result))


def evaluation_markdown(result: Evaluation) -> str:
    """The table, then the ranking and the seed-claim verdicts, as Markdown."""
    notes = evaluation_notes(result.settings)
    parts = [f"{note}\n\n" for note in notes] + [table_markdown(result.rows)]
    if result.other_n:
        parts.append(f"\nAlso evaluated at n = {', '.join(map(str, result.other_n))} (not comparable: not shown).\n")
    if result.ranking:
        parts.append("\nRanking (95 % intervals; a difference counts when the intervals are disjoint):\n")
        parts += [f"- {line}\n" for line in result.ranking]
    if result.frontier:
        parts.append("\nBest operating point per sampler (best quality without copying):\n")
        parts += [f"- {line}\n" for line in result.frontier]
    if result.findings:
        parts.append("\nSeed claims:\n" + "".join(f"({note})\n" for note in notes))
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
