"""`latentatlas sweep`: what the bulk depends on. Train small models over a grid of latent dimension,
batch norm on/off and data source, analyse each, and tabulate the bulk's key numbers side by side.

Every model is an ordinary run folder OUT/<source>-z<dim>-<bn|nobn>/ (a finished one is reused, so an
interrupted sweep continues); the table goes to OUT/sweep.{csv,md,json} and the figure to OUT/sweep.png.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import pandas as pd

from latentatlas import checks
from latentatlas.checkpoint import latest_checkpoint
from latentatlas.config import SYNTHETIC_SOURCE, DataConfig, TrainConfig
from latentatlas.errors import LatentAtlasError
from latentatlas.io import write_json, write_text
from latentatlas.model import ModelConfig
from latentatlas.pipelines.analyze import analyze_run
from latentatlas.plots import plot_sweep, save_figure
from latentatlas.store import Run, encode_run
from latentatlas.train import train

PLOTTED = ("centre_distance", "origin_percentile", "n_dominant", "participation_ratio", "b_match", "n_regions")


@dataclass
class SweepRow:
    """One model of the sweep and the bulk numbers of its training z-points (from analysis.json).

    Attributes
    ----------
    centre_distance : float
        Euclidean norm of the bulk's centre.
    origin_percentile : float
        Percentile of the origin's Mahalanobis distance among the z-points'.
    n_dominant : int
        Dominant components (offset or width rule).
    participation_ratio : float
        (Σλ)² / Σλ² of the covariance eigenvalues.
    b_match : float
        Half-width of the uniform box whose radii match the z-points'.
    n_regions, core_fraction, core_hz_p : number or None
        Regions found, share of points in the 3σ core and the core's Henze-Zirkler p-value (None when
        the analysis has no such section).
    """

    source: str
    latent_dim: int
    batch_norm: bool
    run: str
    val_loss: float
    centre_distance: float
    origin_percentile: float
    n_dominant: int
    participation_ratio: float
    b_match: float
    n_regions: int | None
    core_fraction: float | None
    core_hz_p: float | None


def _row(run: Run, source: str, latent_dim: int, batch_norm: bool, analysis: dict) -> SweepRow:
    core = analysis.get("core_normality") or {}
    core_tests = core.get("core") or [{}]
    return SweepRow(
        source=source,
        latent_dim=latent_dim,
        batch_norm=batch_norm,
        run=run.path.name,
        val_loss=float(run.train_state()["val_loss"]),
        centre_distance=float(analysis["bulk"]["centre_norm"]),
        origin_percentile=float(analysis["origin"]["percentile"]),
        n_dominant=len(analysis["dominant"]["components"]),
        participation_ratio=float(analysis["pca"]["participation_ratio"]),
        b_match=float(analysis["radii"]["b_match"]),
        n_regions=(analysis.get("regions") or {}).get("n_regions"),
        core_fraction=core.get("core_fraction"),
        core_hz_p=core_tests[-1].get("henze_zirkler_p"),
    )


def sweep(
    out: str | os.PathLike,
    sources: Sequence[str] = (SYNTHETIC_SOURCE,),
    latent_dims: Sequence[int] = (16, 64, 256),
    batch_norm: Sequence[bool] = (True, False),
    image_size: int = 32,
    channels: Sequence[int] = (16, 32, 64),
    epochs: int = 5,
    synthetic_count: int = 2000,
    limit: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> list[SweepRow]:
    """Train, encode and analyse one model per (source, latent dim, batch norm); write the table and figure."""
    out = Path(out)
    if not sources or not latent_dims or not batch_norm:
        raise LatentAtlasError("a sweep needs at least one source, latent dimension and batch-norm setting")
    models = [
        ModelConfig(image_size=image_size, channels=tuple(channels), latent_dim=checks.positive_int(d, "latent dim"),
                    batch_norm=bool(bn))
        for d in latent_dims for bn in batch_norm
    ]  # fmt: skip
    config = TrainConfig(epochs=epochs, seed=seed)
    datas = [DataConfig(source=s, image_size=image_size, synthetic_count=synthetic_count, limit=limit) for s in sources]
    rows = []
    for data in datas:
        name = "synthetic" if data.source == SYNTHETIC_SOURCE else Path(data.source).name
        for model in models:
            run_dir = out / f"{name}-z{model.latent_dim}-{'bn' if model.batch_norm else 'nobn'}"
            if latest_checkpoint(run_dir) is None:
                train(run_dir, data, model, config, progress=progress)
            run = Run(run_dir)
            if not run.has_zpoints():
                encode_run(run, progress=progress)
            analysis = analyze_run(run, figures=False, seed=seed)
            rows.append(_row(run, name, model.latent_dim, model.batch_norm, analysis))
    write_sweep(out, rows)
    return rows


def sweep_frame(rows: Sequence[SweepRow]) -> pd.DataFrame:
    return pd.DataFrame([asdict(r) for r in rows], columns=[f.name for f in fields(SweepRow)])


def sweep_markdown(frame: pd.DataFrame) -> str:
    def cell(value: object) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in record) + " |" for record in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_sweep(out: Path, rows: Sequence[SweepRow]) -> None:
    frame = sweep_frame(rows)
    write_text(out / "sweep.csv", frame.to_csv(index=False))
    write_text(out / "sweep.md", sweep_markdown(frame))
    write_json(out / "sweep.json", {"rows": [asdict(r) for r in rows]})
    save_figure(plot_sweep(frame, PLOTTED), out / "sweep.png", dpi=90, tight=False)


__all__ = ["SweepRow", "sweep", "sweep_frame", "sweep_markdown", "write_sweep"]
