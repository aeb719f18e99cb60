"""The self-contained report: RUN/report.html, one file that opens offline in any browser.

It opens on the run's summary (`summary_section`: every finding's verdict, the sampler ranking, the best
sampler's images, what is missing), then follows the series in its order (`common.SECTIONS`): (1) data and
training (part I), the components (II), correlations (III), the centre, the origin and slices (IV),
uniform-box samples (V), statistical samplers (V, VII, X), paths (VI), attributes, the normal core (VIII, IX,
the author's later posts), fragmentation into regions, what the bulk depends on (only for a run inside a sweep
folder), the further analysis results and an appendix with the settings and the evaluation's full table. Every
finding of the analysis has its own sub-section with one figure and its sentence (`analysis_sections`).
Headings are neutral: whether the run agrees with a claim of the seed is said only by the findings the
analysis, the attributes command and the evaluation computed (`latentatlas.findings.Finding`). Every figure is
embedded as a data URI; the page is rendered by a Jinja2 template with autoescape. A section whose inputs are
missing names the command that produces them.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import Markup

from latentatlas.errors import LatentAtlasError
from latentatlas.io import check_output_file, data_uri, load_npy, output_mark, write_text
from latentatlas.plots import figure_png, plot_training_curves
from latentatlas.report.analysis_sections import analysis_sections
from latentatlas.report.artifacts import FigureFile, Problems, as_dict
from latentatlas.report.artifacts import figures as artifact_figures
from latentatlas.report.attributes import attributes_section
from latentatlas.report.blocks import Block, Details, Figure, KeyValues, Missing, Section, Text, key_values
from latentatlas.report.common import (
    APPENDIX,
    ATTRIBUTES,
    DATA,
    OPTIONAL_SECTIONS,
    PATHS,
    SECTIONS,
    SWEEP,
    SectionSpec,
    figure,
)
from latentatlas.report.maps import umap_blocks
from latentatlas.report.samples import path_section, sampler_sections
from latentatlas.report.summary_section import summary_view
from latentatlas.report.sweep import sweep_section
from latentatlas.store import Run
from latentatlas.store.staleness import current_weights

SYNTHETIC_SOURCE = "synthetic-faces"
FOLD_ROWS = 12  # a longer table folds (<details>), so the page reads top-down


# ----------------------------------------------------------------------------- 1. data and training


def _training_curves(history: pd.DataFrame) -> bytes | None:
    """The loss curves as PNG bytes, or None when the history has no epoch or loss column."""
    if "epoch" not in history or not {"train_loss", "val_loss"} & set(history.columns) or history.empty:
        return None
    curves = {
        name: history[column]
        for column, name in (("train_loss", "training"), ("val_loss", "validation (held out)"))
        if column in history and history[column].notna().any()
    }
    return figure_png(plot_training_curves(history["epoch"], curves))


def _data_config(config: dict) -> dict:
    """The data config as shown: the synthetic generator's settings only for the synthetic source."""
    data = as_dict(config.get("data"))
    if data.get("source") == SYNTHETIC_SOURCE:
        return data
    return {k: v for k, v in data.items() if not str(k).startswith("synthetic_")}


def settings_blocks(run: Run, problems: Problems) -> list[Block]:
    """The data, model and training settings (config.json), each folded, for the appendix."""
    config = problems.read_json(run.path / "config.json") or {}
    shown = {"data": _data_config(config), "model": as_dict(config.get("model")), "train": as_dict(config.get("train"))}
    return [Details(f"{name} settings", key_values(values)) for name, values in shown.items() if values]


def data_section(run: Run, problems: Problems) -> list[Block]:
    blocks: list[Block] = []
    state = problems.read_json(run.path / "train_state.json")
    zinfo = problems.read_json(run.zpoints_file("zpoints.json"))
    facts: dict = {}
    if state:
        keys = ("epochs_done", "n_train", "n_val", "train_loss", "val_loss", "best_val_loss")
        facts.update({k: state[k] for k in keys if k in state})
    if zinfo:
        facts["z-points"] = zinfo.get("n")
        facts["latent dimension"] = zinfo.get("latent_dim")
        facts.update({f"{name} z-points": count for name, count in as_dict(zinfo.get("subsets")).items() if count})
    for which in ("best", "last"):
        weights = current_weights(run, which)
        if weights:
            facts[f"{which} weights"] = weights
    if facts:
        blocks.append(key_values(facts))
    history_path = run.path / "history.csv"
    if history_path.is_file():
        try:
            frame = pd.read_csv(history_path)
            history = pd.DataFrame({c: pd.to_numeric(frame[c], errors="coerce") for c in frame.columns})
        except (OSError, ValueError, pd.errors.ParserError):
            problems.append("history.csv could not be read; the training curves were left out")
            history = None
        png = _training_curves(history) if history is not None else None
        if history is not None and png is not None:
            speed = ""
            if "images_per_s" in history and history["images_per_s"].notna().any():
                speed = f", {history['images_per_s'].median():.0f} images/s (median)"
            blocks.append(
                Figure(data_uri(png), f"Training and validation loss per epoch ({len(history)} epochs{speed})")
            )
    else:
        blocks.append(Missing("The training history", f"latentatlas train --data SOURCE --out {run.path}"))
    recon = run.path / "reconstructions.png"
    if recon.is_file():
        summary = problems.read_json(run.path / "reconstructions.json") or {}
        caption = next((f.caption for f in artifact_figures(summary, run.path) if f.path.name == recon.name), None)
        default = "Validation images (odd rows) and their reconstructions (even rows)"
        blocks.append(figure(FigureFile(recon, caption or default)))
    else:
        blocks.append(Missing("The reconstruction grid", f"latentatlas reconstruct {run.path}"))
    if zinfo is None:
        blocks.append(Missing("The z-point store", f"latentatlas encode {run.path}"))
    return blocks


# ----------------------------------------------------------------------------- the page


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("latentatlas.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment


def story(blocks: dict[str, list[Block]]) -> list[Section]:
    """The sections in the order of the series, numbered as shown; an optional section without blocks is left out."""
    shown: list[SectionSpec] = [spec for spec in SECTIONS if spec not in OPTIONAL_SECTIONS or blocks.get(spec.anchor)]
    return [
        Section(spec.anchor, f"{number}. {spec.title}", spec.intro, blocks.get(spec.anchor, []))
        for number, spec in enumerate(shown, start=1)
    ]


def build_report(run: Run | str | os.PathLike, umap: bool = True) -> str:
    """The report's HTML text for a run folder (nothing is written).

    `umap=False` leaves out the UMAP map of the bulk (fitting it takes from seconds to minutes).
    """
    run = run if isinstance(run, Run) else Run(run)
    problems = Problems()
    blocks = {DATA.anchor: data_section(run, problems)}
    blocks.update(analysis_sections(run, problems, umap_blocks(run) if umap else None))
    blocks.update(sampler_sections(run, problems))
    blocks[APPENDIX.anchor] = [
        Text("The settings, as config.json records them (each folds open)."),
        *settings_blocks(run, problems),
        *blocks.get(APPENDIX.anchor, []),
    ]
    blocks[PATHS.anchor] = path_section(run, problems)
    blocks[ATTRIBUTES.anchor] = attributes_section(run, problems)
    blocks[SWEEP.anchor] = sweep_section(run, problems) or []
    css = resources.files("latentatlas.report").joinpath("report.css").read_text(encoding="utf-8")
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            run_name=run.path.name,
            run_path=str(run.path.resolve()),
            stamp=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            css=Markup(css),  # the package's own stylesheet, inlined as written
            summary=summary_view(run, Problems()),  # its files are read again; their problems are listed once
            sections=story(blocks),
            problems=list(problems),
            fold_rows=FOLD_ROWS,
            output_mark=output_mark("report"),  # lets a later `report --out` recognise the file as its own
        )
    )


def check_run(run: Run) -> None:
    """Refuse a run whose config.json the other commands refuse: invalid values, or a latent dimension that
    contradicts the z-point store (one clear line), rather than showing its values as the run's."""
    if run.imported:
        return
    config = run.config  # validated by type and range, as every command reads it
    if run.has_zpoints():
        z = load_npy(run.zpoints_file("zpoints.npy"))
        if z.ndim == 2 and z.shape[1] != config.model.latent_dim:
            raise LatentAtlasError(
                f"{run.path / 'config.json'} says latent dimension {config.model.latent_dim} but the z-points "
                f"have {z.shape[1]} components: the run's config.json is not the one it was trained with"
            )


def write_report(
    run: Run | str | os.PathLike, out: str | os.PathLike | None = None, umap: bool = True, force: bool = False
) -> Path:
    """Write RUN/report.html (or `out`) atomically, holding the run's lock, and return its path.

    An existing `out` that is not an earlier report is refused unless `force` (RUN/report.html is the
    run's own)."""
    run = run if isinstance(run, Run) else Run(run)
    path = Path(out) if out is not None else run.path / "report.html"
    if path.suffix.lower() not in (".html", ".htm"):
        raise LatentAtlasError(f"the report is an HTML file; give a name ending in .html, not {path.name}")
    check_output_file(path, "report", force=force or out is None)
    with run.lock():
        check_run(run)
        text = build_report(run, umap=umap)
        check_output_file(path, "report", force=force or out is None)  # again: it may have appeared meanwhile
        write_text(path, text)
    return path


__all__ = ["SECTIONS", "KeyValues", "build_report", "write_report"]
