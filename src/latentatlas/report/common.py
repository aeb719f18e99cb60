"""What every part of the report shares: the story's sections in the order of the series, embedded
figures, stale notes and the verdict blocks of computed findings."""

from __future__ import annotations

from dataclasses import dataclass

from latentatlas.findings import Finding
from latentatlas.io import data_uri
from latentatlas.report.artifacts import FigureFile
from latentatlas.report.blocks import Block, Figure, Text, Verdict
from latentatlas.store import Run
from latentatlas.store.staleness import Provenance, stale_reason

MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml", ".gif": "image/gif"}


@dataclass(frozen=True)
class SectionSpec:
    """One section of the page; its number is its place in the rendered story (optional sections drop out)."""

    anchor: str
    title: str
    intro: str


DATA = SectionSpec(
    "data",
    "Data and training (part I)",
    "The autoencoder, its training data and how well it reconstructs held-out images.",
)
COMPONENTS = SectionSpec(
    "components",
    "The components: distributions, dominant components, uniform vectors (part II)",
    "How each latent component of the real z-points is distributed, which components dominate the radius, and "
    "where vectors with components uniform in [-b, b] lie.",
)
CORRELATIONS = SectionSpec(
    "correlations",
    "Correlations and confidence ellipses (part III)",
    "Linear correlations between components and the tilted confidence ellipses of the bulk in coordinate planes.",
)
ORIGIN = SectionSpec(
    "origin",
    "The bulk's centre, the origin and slices (part IV)",
    "Where the bulk lies relative to the origin of the latent space, and how many z-points thin slices hold.",
)
UNIFORM = SectionSpec(
    "uniform-box",
    "Uniform-box samples (part V)",
    "Latent vectors drawn from a common box [-b, b]^N (the seed's naive construction), decoded and scored.",
)
SAMPLERS = SectionSpec(
    "samplers",
    "Statistical samplers (parts V, VII and X)",
    "Latent vectors drawn from samplers fitted to the measured bulk (part X's planar-ellipse generator among "
    "them), decoded and scored.",
)
PATHS = SectionSpec(
    "paths",
    "Paths through the centre (part VI)",
    "Straight paths from the origin to the centre, through the centre inside coordinate planes and along "
    "attribute directions, decoded.",
)
ATTRIBUTES = SectionSpec(
    "attributes",
    "Attributes: what a direction in the latent space means",
    "Per attribute of the source: a linear probe on z, the shift of the sub-bulk with it, images decoded along "
    "its direction, and whether samples fitted on a condition keep it.",
)
NORMAL = SectionSpec(
    "normal-core",
    "A multivariate normal core (parts VIII and IX, the author's later posts)",
    "Whether the bulk, once its outliers beyond 3σ of a robust core are removed, passes the tests of "
    "multivariate normality, as a function of the sample size; and its principal axes.",
)
REGIONS = SectionSpec(
    "regions",
    "One region or several: fragmentation",
    "The series' title question: does the encoder fill one compact region of the latent space, or several "
    "regions with voids between them?",
)
SWEEP = SectionSpec(
    "sweep",
    "What the bulk depends on",
    "The bulk's key numbers for the models of the sweep this run belongs to (latent dimension, batch norm, data).",
)
FURTHER = SectionSpec(
    "further",
    "Further analysis results",
    "Analysis results that no claim of the series concerns, and the analysis settings.",
)
APPENDIX = SectionSpec(
    "appendix",
    "Appendix: settings and raw tables",
    "The settings the run was trained and evaluated with, and the evaluation's full table, for reference.",
)
# The story, in the order of the series; SWEEP appears only for a run inside a sweep folder.
SECTIONS = (
    DATA,
    COMPONENTS,
    CORRELATIONS,
    ORIGIN,
    UNIFORM,
    SAMPLERS,
    PATHS,
    ATTRIBUTES,
    NORMAL,
    REGIONS,
    SWEEP,
    FURTHER,
    APPENDIX,
)
OPTIONAL_SECTIONS = (SWEEP,)


def figure(file: FigureFile) -> Figure:
    mime = MIME.get(file.path.suffix.lower(), "application/octet-stream")
    return Figure(data_uri(file.path.read_bytes(), mime), file.caption)


def stale_note(what: str, recorded: Provenance | None, run: Run, command: str) -> Text | None:
    """A "stale" note naming `command` when `artifacts.stale_reason` finds `recorded` stale; None when current."""
    reason = stale_reason(run, recorded) if recorded is not None else None
    if reason is None:
        return None
    return Text(style="stale", text=f"stale: {what} was {reason}; run `{command}` again.")


def verdicts(found: list[Finding], stale: bool = False) -> list[Block]:
    return [Verdict(f.verdict, f.sentence(), stale) for f in found]
