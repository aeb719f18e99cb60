"""The self-contained report: RUN/report.html, one file that opens offline in any browser.

It follows the seed's story in seven sections: (1) data and training, (2) the bulk of the z-points,
(3) correlations and ellipses, (4) radii against uniform vectors, the origin's position and slices,
(5) uniform-box samples, (6) statistical samplers, (7) paths through the centre. Headings are neutral:
whether the run agrees with a claim of the seed is said only by the findings the analysis and the
evaluation computed (`latentatlas.findings.Finding`), printed beneath the heading they concern.
Every figure is embedded as a data URI; the page is rendered by a Jinja2 template with autoescape.
A section whose inputs are missing names the command that produces them.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import Markup

from latentatlas.errors import LatentAtlasError
from latentatlas.findings import Finding
from latentatlas.io import data_uri, write_text
from latentatlas.report import artifacts
from latentatlas.report.artifacts import Analysis, FigureFile, Problems, as_dict, as_records
from latentatlas.report.blocks import (
    Block,
    Details,
    Figure,
    Heading,
    KeyValues,
    Missing,
    Section,
    Text,
    Verdict,
    format_number,
    key_values,
    records,
)
from latentatlas.store import Run

MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml", ".gif": "image/gif"}
SYNTHETIC_SOURCE = "synthetic-faces"


@dataclass(frozen=True)
class SectionSpec:
    anchor: str
    title: str
    intro: str
    # words that place an analysis figure or a finding (by file name / caption / finding key) here
    keywords: tuple[str, ...] = ()


DATA = SectionSpec(
    "data", "1. Data and training", "The autoencoder, its training data and how well it reconstructs held-out images."
)
BULK = SectionSpec(
    "bulk",
    "2. The bulk: per-component distributions and dominant components",
    "How each latent component of the real z-points is distributed, and which components dominate the radius.",
    ("distribution", "histogram", "dominant", "component", "mean", "std", "width", "bulk", "spread", "gauss"),
)
CORRELATIONS = SectionSpec(
    "correlations",
    "3. Correlations and confidence ellipses",
    "Linear correlations between components and the confidence ellipses of the bulk in coordinate planes.",
    ("correlat", "ellips", "covarian", "contour", "tilt", "plane", "pca", "princip", "eigen", "mcd", "robust"),
)
RADII = SectionSpec(
    "radii",
    "4. Radii against uniform vectors, the origin's position, slices",
    "Lengths of the real z-points against vectors uniform in [-b, b]^N, where the origin lies relative to "
    "the bulk, and how many z-points thin slices hold.",
    ("radi", "radius", "norm", "uniform", "origin", "slice", "border", "shell", "mahalanobis", "normal", "chi"),
)
UNIFORM = SectionSpec(
    "uniform-box",
    "5. Uniform-box samples",
    "Latent vectors drawn from a common box [-b, b]^N (the seed's naive construction), decoded and scored.",
)
SAMPLERS = SectionSpec(
    "samplers",
    "6. Statistical samplers",
    "Latent vectors drawn from samplers fitted to the measured bulk, decoded and scored.",
)
PATHS = SectionSpec(
    "paths",
    "7. Paths through the centre",
    "Straight paths from the origin to the centre and through the centre inside coordinate planes, decoded.",
)
SECTIONS = (DATA, BULK, CORRELATIONS, RADII, UNIFORM, SAMPLERS, PATHS)
ANALYSIS_SECTIONS = (RADII, CORRELATIONS, BULK)  # most specific first: "radii of uniform vectors" is 4, not 2
ANALYSIS_FIGURES = {
    "histograms.png": BULK,
    "components.png": BULK,
    "correlation.png": CORRELATIONS,
    "projections.png": CORRELATIONS,
    "pca_spectrum.png": CORRELATIONS,
    "radii.png": RADII,
    "mahalanobis.png": RADII,
    "slices.png": RADII,
}
ANALYSIS_FIELDS = {
    BULK.anchor: ("n_points", "latent_dim", "subset", "bulk", "dominant", "components"),
    CORRELATIONS.anchor: ("correlations", "planes", "pca", "robust_core"),
    RADII.anchor: ("radii", "origin", "normality", "slices"),
}
ANALYSIS_BOOKKEEPING = ("schema", "run", "options", "arrays", "figures", "findings", "weights")


# ----------------------------------------------------------------------------- shared pieces


def figure(file: FigureFile) -> Figure:
    mime = MIME.get(file.path.suffix.lower(), "application/octet-stream")
    return Figure(data_uri(file.path.read_bytes(), mime), file.caption)


def current_weights(run: Run) -> str | None:
    """The id of the weights the run holds now (`Run.weights_id`); None when the run records none."""
    value = getattr(run, "weights_id", None)
    return value if isinstance(value, str) and value else None


def is_stale(weights: str | None, run_weights: str | None) -> bool:
    """An artifact is stale when it records weights and they are not the run's current ones."""
    return weights is not None and run_weights is not None and weights != run_weights


def stale_note(what: str, weights: str | None, run_weights: str | None, command: str) -> Text:
    return Text(
        style="stale",
        text=f"stale: {what} was computed from weights {weights}, the run now holds {run_weights}; "
        f"run `{command}` again.",
    )


def verdicts(found: list[Finding], stale: bool = False) -> list[Block]:
    return [Verdict(f.verdict, f.sentence(), stale) for f in found]


def place(text: str, specs: tuple[SectionSpec, ...], default: SectionSpec) -> SectionSpec:
    text = text.lower()
    return next((spec for spec in specs if any(word in text for word in spec.keywords)), default)


# ----------------------------------------------------------------------------- 1. data and training


def _training_curves(history: pd.DataFrame) -> bytes | None:
    from latentatlas.plots import plt  # the package's headless matplotlib

    if "epoch" not in history or not {"train_loss", "val_loss"} & set(history.columns) or history.empty:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for column, name in (("train_loss", "training"), ("val_loss", "validation (held out)")):
        if column in history and history[column].notna().any():
            ax.plot(history["epoch"], history[column], "-o", ms=3, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("reconstruction loss (MSE)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _data_config(config: dict) -> dict:
    """The data config as shown: the synthetic generator's settings only for the synthetic source."""
    data = as_dict(config.get("data"))
    if data.get("source") == SYNTHETIC_SOURCE:
        return data
    return {k: v for k, v in data.items() if not str(k).startswith("synthetic_")}


def data_section(run: Run, problems: Problems) -> list[Block]:
    blocks: list[Block] = []
    config = problems.read_json(run.path / "config.json") or {}
    shown = {"data": _data_config(config), "model": as_dict(config.get("model")), "train": as_dict(config.get("train"))}
    for name, values in shown.items():
        if values:
            blocks += [Heading(f"{name} settings"), key_values(values)]
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
    weights = current_weights(run)
    if weights:
        facts["weights"] = weights
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
        caption = next((f.caption for f in artifacts.figures(summary, run.path) if f.path.name == recon.name), None)
        default = "Validation images (odd rows) and their reconstructions (even rows)"
        blocks.append(figure(FigureFile(recon, caption or default)))
    else:
        blocks.append(Missing("The reconstruction grid", f"latentatlas reconstruct {run.path}"))
    if zinfo is None:
        blocks.append(Missing("The z-point store", f"latentatlas encode {run.path}"))
    return blocks


# ----------------------------------------------------------------------------- 2-4. the analysis


def _bulk_numbers(analysis: dict) -> list[Block]:
    blocks: list[Block] = []
    facts = {k: analysis[k] for k in ("n_points", "latent_dim", "subset") if k in analysis}
    facts.update(as_dict(analysis.get("bulk")))
    if facts:
        blocks.append(key_values(facts))
    dominant = as_dict(analysis.get("dominant"))
    ranked = as_records(dominant.get("components"))
    if ranked:
        rule = ", ".join(f"{k.replace('_', ' ')} {format_number(v)}" for k, v in as_dict(dominant.get("rule")).items())
        blocks.append(Heading(f"Dominant components ({len(ranked)}), ranked by their share of the squared radius"))
        if rule:
            blocks.append(Text(f"Rule: {rule}."))
        blocks.append(records(ranked[:16]))
    components = as_records(analysis.get("components"))
    if components:
        table = pd.DataFrame(components)
        summary = {}
        for column, name in (
            ("hwhm_ratio", "measured / Gaussian half width"),
            ("ks_statistic", "KS distance to a Gaussian"),
            ("skewness", "skewness"),
            ("excess_kurtosis", "excess kurtosis"),
            ("std", "std"),
        ):
            if column in table and pd.api.types.is_numeric_dtype(table[column]):
                values = table[column].dropna()
                if len(values):
                    low, mid, high = (format_number(v) for v in (values.min(), values.median(), values.max()))
                    summary[f"{name}: median [min, max]"] = f"{mid} [{low}, {high}]"
        if summary:
            blocks += [Heading(f"All {len(components)} components: how Gaussian their distributions are")]
            blocks.append(key_values(summary))
    return blocks


def _correlation_numbers(analysis: dict) -> list[Block]:
    blocks: list[Block] = []
    correlations = as_dict(analysis.get("correlations"))
    if correlations:
        blocks.append(key_values({k: v for k, v in correlations.items() if k != "strongest"}))
        strongest = as_records(correlations.get("strongest"))
        if strongest:
            blocks += [Heading("Strongest correlations"), records(strongest[:12])]
    planes = as_records(analysis.get("planes"))
    if planes:
        rows = []
        for plane in planes:
            row = {k: v for k, v in plane.items() if k != "ellipses"}
            for ellipse in as_records(plane.get("ellipses")):
                confidence = ellipse.get("confidence")
                if isinstance(confidence, (int, float)) and isinstance(ellipse.get("half_axes"), list):
                    row[f"{confidence:.0%} half axes"] = ellipse["half_axes"]
                    row[f"{confidence:.0%} tilt (deg)"] = ellipse.get("angle_deg")
            rows.append(row)
        blocks += [Heading("Confidence ellipses in selected planes"), records(rows)]
    for key, title in (("pca", "Principal axes"), ("robust_core", "Robust (MCD) core against the plain covariance")):
        if as_dict(analysis.get(key)):
            blocks += [Heading(title), key_values(analysis[key])]
    return blocks


def _radius_numbers(analysis: dict) -> list[Block]:
    blocks: list[Block] = []
    radii = as_dict(analysis.get("radii"))
    if radii:
        blocks.append(Heading("Radii |z| of the real z-points and of uniform vectors in [-b, b]^N"))
        blocks.append(key_values({k: v for k, v in radii.items() if k not in ("uniform", "data")}))
        if as_dict(radii.get("data")):
            blocks.append(records([{"vectors": "real z-points", **radii["data"]}]))
        uniform = [{k: v for k, v in r.items() if k != "simulated_radii"} for r in as_records(radii.get("uniform"))]
        if uniform:
            blocks.append(records(uniform))
    origin = as_dict(analysis.get("origin"))
    if origin:
        blocks += [Heading("The origin's position relative to the bulk"), key_values(origin)]
    if as_dict(analysis.get("normality")):
        blocks += [Heading("Squared Mahalanobis distances against chi-square"), key_values(analysis["normality"])]
    slices = as_records(analysis.get("slices"))
    if slices:
        blocks += [Heading("Slices: real z-points with |z_j| ≤ b for every component outside the plane")]
        blocks.append(records(slices))
    return blocks


NUMBERS: dict[str, Callable[[dict], list[Block]]] = {
    BULK.anchor: _bulk_numbers,
    CORRELATIONS.anchor: _correlation_numbers,
    RADII.anchor: _radius_numbers,
}


def analysis_sections(run: Run, problems: Problems) -> dict[str, list[Block]]:
    """Blocks of sections 2-4 by anchor: the findings first, then the numbers, then the figures."""
    analysis: Analysis | None = artifacts.read_analysis(run.path / "analysis", problems)
    command = f"latentatlas analyze {run.path}"
    if analysis is None:
        return {spec.anchor: [Missing("The analysis (analysis/analysis.json)", command)] for spec in ANALYSIS_SECTIONS}
    run_weights = current_weights(run)
    stale = is_stale(analysis.weights, run_weights)
    out: dict[str, list[Block]] = {spec.anchor: [] for spec in ANALYSIS_SECTIONS}
    if stale:
        out[BULK.anchor].append(stale_note("the analysis", analysis.weights, run_weights, command))
    for finding in analysis.findings:
        out[place(finding.key, ANALYSIS_SECTIONS, RADII).anchor] += verdicts([finding], stale)
    for spec in (BULK, CORRELATIONS, RADII):
        out[spec.anchor] += NUMBERS[spec.anchor](analysis.data)
    for file in analysis.figures:
        spec = ANALYSIS_FIGURES.get(file.path.name) or place(
            f"{file.path.stem} {file.caption}", ANALYSIS_SECTIONS, BULK
        )
        out[spec.anchor].append(figure(file))
    # Fields this report does not know yet still appear, and the settings stay one click away.
    known = {k for keys in ANALYSIS_FIELDS.values() for k in keys} | set(ANALYSIS_BOOKKEEPING)
    extra = {k: v for k, v in analysis.data.items() if k not in known}
    if extra:
        out[RADII.anchor] += [Heading("Further analysis results"), key_values(extra)]
    settings = as_dict(analysis.data.get("options"))
    if settings:
        out[RADII.anchor].append(Details("analysis options", key_values(settings)))
    for spec in ANALYSIS_SECTIONS:
        if not out[spec.anchor]:
            out[spec.anchor].append(Text("The analysis recorded nothing for this part."))
    return out


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


def build_report(run: Run | str | os.PathLike) -> str:
    """The report's HTML text for a run folder (nothing is written)."""
    from latentatlas.report.samples import path_section, sampler_sections

    run = run if isinstance(run, Run) else Run(run)
    problems = Problems()
    blocks = {DATA.anchor: data_section(run, problems)}
    blocks.update(analysis_sections(run, problems))
    blocks.update(sampler_sections(run, problems))
    blocks[PATHS.anchor] = path_section(run, problems)
    sections = [Section(spec.anchor, spec.title, spec.intro, blocks[spec.anchor]) for spec in SECTIONS]
    css = resources.files("latentatlas.report").joinpath("report.css").read_text(encoding="utf-8")
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            run_name=run.path.name,
            run_path=str(run.path.resolve()),
            stamp=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            css=Markup(css),  # the package's own stylesheet, inlined as written
            sections=sections,
            problems=list(problems),
        )
    )


def write_report(run: Run | str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write RUN/report.html (or `out`) atomically and return its path."""
    run = run if isinstance(run, Run) else Run(run)
    path = Path(out) if out is not None else run.path / "report.html"
    if path.suffix.lower() not in (".html", ".htm"):
        raise LatentAtlasError(f"the report is an HTML file; give a name ending in .html, not {path.name}")
    write_text(path, build_report(run))
    return path


__all__ = ["SECTIONS", "KeyValues", "build_report", "write_report"]
