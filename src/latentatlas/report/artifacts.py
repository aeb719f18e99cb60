"""Typed views of the files the other commands write into a run, read defensively.

Each reader names exactly the fields it uses (no guessing between alternative names). A file that
cannot be read is recorded in `Problems` and left out; a field of the wrong type reads as absent.

What is read:
- ``analysis/analysis.json``: any fields (shown by section), ``figures`` [{file, caption}],
  ``findings`` [Finding.to_dict()], and the provenance `Run.provenance()` writes: ``weights`` ("best" or
  "last") and ``weights_id`` (the id of those weights when the artifact was computed).
- ``samples/<name>/info.json``: ``sampler``, ``options`` (the sampler's parameters), ``n``, ``seed``,
  ``subset``, ``fitted_on``, ``mean_radius``, ``figures``, ``weights``, ``weights_id``.
- ``evaluation/evaluation.json``: ``settings``, ``figures``, ``findings``, ``weights``, ``weights_id``, ``rows``; a row
  has ``name``, ``kind`` ("reference" | "sampler"), and for a sampler row ``sampler``, ``options``, ``n``,
  ``seed`` (what identifies the sample it scored), then its scores.
- ``paths/<name>/info.json``: any fields, ``figures``, ``points`` (per-step scores), ``weights``, ``weights_id``.
- ``attributes/attributes.json``: ``attributes`` (one record per attribute: ``name``, ``auc``,
  ``shift_mahalanobis``, ``variance_share_direction``, ...), ``strips`` [{attribute, file, caption}],
  ``conditional`` (one record per condition), ``findings``, ``options``, ``weights``, ``weights_id``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latentatlas.errors import LatentAtlasError
from latentatlas.findings import Finding
from latentatlas.samplers import make_sampler
from latentatlas.store.staleness import Provenance, provenance

IDENTITY_FIELDS = ("name", "kind", "sampler", "options", "seed", "weights", "weights_id")
PROVENANCE_FIELDS = ("weights", "weights_id")


class Problems(list):
    """Files that were left out of the report, one sentence each."""

    def read_json(self, path: Path) -> dict | None:
        """The JSON object in `path`; None (and a recorded problem) if it is unreadable or not an object."""
        if not path.is_file():
            return None
        where = f"{path.parent.name}/{path.name}"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.append(f"{where} could not be read ({exc.__class__.__name__}); it was left out")
            return None
        if not isinstance(data, dict):
            self.append(f"{where} is not a JSON object; it was left out")
            return None
        return data


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def as_records(value: Any) -> list[dict]:
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class FigureFile:
    path: Path
    caption: str


def inside(folder: Path, name: str) -> Path | None:
    """`folder / name` if it is a file that stays inside `folder` (a figure list must not point elsewhere)."""
    try:
        path = (folder / name).resolve()
        path.relative_to(folder.resolve())
    except (ValueError, OSError, TypeError):
        return None
    return path if path.is_file() else None


def figures(data: dict, folder: Path) -> list[FigureFile]:
    """The existing files of a JSON's "figures" list, with their captions."""
    out = []
    for entry in as_records(data.get("figures")):
        path = inside(folder, entry["file"]) if isinstance(entry.get("file"), str) else None
        if path is not None:
            caption = as_str(entry.get("caption")) or path.stem.replace("_", " ")
            out.append(FigureFile(path, caption))
    return out


def findings(data: dict, where: str, problems: Problems) -> list[Finding]:
    out = []
    for entry in as_records(data.get("findings")):
        try:
            finding = Finding.from_dict(entry)
        except (KeyError, TypeError, ValueError):
            problems.append(f"a finding in {where} lacks key, claim, verdict or evidence; it was left out")
            continue
        if finding.verdict not in ("agrees", "disagrees", "mixed", "undecided"):
            problems.append(f"finding {finding.key} in {where} has an unknown verdict; it was left out")
            continue
        out.append(finding)
    return out


def canonical(value: Any) -> str:
    """A comparable text of JSON-like data (tuples and lists alike, keys sorted)."""
    return json.dumps(value, sort_keys=True, default=str)


def sampler_options(sampler: str, options: dict) -> str:
    """The sampler's full parameters as comparable text, defaults filled in by the sampler registry.

    A sample folder records every parameter, an evaluation row may record only the given ones: both
    normalise to the same text. Options the registry refuses compare as written.
    """
    try:
        return canonical(make_sampler(sampler, **options).get_params())
    except (LatentAtlasError, TypeError, ValueError):
        return canonical(options)


@dataclass
class Sample:
    """One samples/<name>/ folder."""

    folder: Path
    sampler: str | None
    options: dict
    n: int | None
    seed: int | None
    info: dict
    figures: list[FigureFile]
    weights: Provenance | None

    def key(self) -> tuple[str, str, int, int] | None:
        if self.sampler is None or self.n is None or self.seed is None:
            return None
        return (self.sampler, sampler_options(self.sampler, self.options), self.n, self.seed)


@dataclass
class EvaluationRow:
    name: str
    kind: str
    sampler: str | None
    options: dict
    n: int | None
    seed: int | None
    record: dict  # the row as written, for the tables

    def key(self) -> tuple[str, str, int, int] | None:
        if self.kind != "sampler" or self.sampler is None or self.n is None or self.seed is None:
            return None
        return (self.sampler, sampler_options(self.sampler, self.options), self.n, self.seed)

    def scores(self) -> dict:
        return {k: v for k, v in self.record.items() if k not in IDENTITY_FIELDS}


@dataclass
class Evaluation:
    rows: list[EvaluationRow]
    settings: dict
    figures: list[FigureFile]
    findings: list[Finding]
    weights: Provenance | None
    other_n: list[int] = field(default_factory=list)  # entries of these n kept, not shown (not comparable)
    previews: Path | None = None  # previews.npz: the first decoded images of each row, keyed by row name


@dataclass
class Analysis:
    data: dict
    figures: list[FigureFile]
    findings: list[Finding]
    weights: Provenance | None


@dataclass
class PathFolder:
    folder: Path
    info: dict
    figures: list[FigureFile] = field(default_factory=list)
    weights: Provenance | None = None  # None: no info.json


def read_analysis(folder: Path, problems: Problems) -> Analysis | None:
    data = problems.read_json(folder / "analysis.json")
    if data is None:
        return None
    found = findings(data, "analysis/analysis.json", problems)
    return Analysis(data, figures(data, folder), found, provenance(data, folder / "analysis.json"))


def read_samples(root: Path, problems: Problems) -> list[Sample]:
    out = []
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
    for folder in folders:
        info = problems.read_json(folder / "info.json")
        if info is None:
            continue
        out.append(
            Sample(
                folder=folder,
                sampler=as_str(info.get("sampler")),
                options=as_dict(info.get("options")),
                n=as_int(info.get("n")),
                seed=as_int(info.get("seed")),
                info=info,
                figures=figures(info, folder),
                weights=provenance(info, folder / "info.json"),
            )
        )
    return out


def read_evaluation(folder: Path, problems: Problems) -> Evaluation | None:
    data = problems.read_json(folder / "evaluation.json")
    if data is None:
        return None
    listed = {f.get("file") for f in as_records(data.get("files"))}
    rows = [
        EvaluationRow(
            name=str(record.get("name", "")),
            kind=str(record.get("kind", "")),
            sampler=as_str(record.get("sampler")),
            options=as_dict(record.get("options")),
            n=as_int(record.get("n")),
            seed=as_int(record.get("seed")),
            record=record,
        )
        for record in as_records(data.get("rows"))
    ]
    return Evaluation(
        rows=rows,
        settings=as_dict(data.get("settings")),
        figures=figures(data, folder),
        findings=findings(data, "evaluation/evaluation.json", problems),
        weights=provenance(data, folder / "evaluation.json"),
        other_n=sorted({n for n in map(as_int, as_list(data.get("also_evaluated_at_n"))) if n is not None}),
        previews=inside(folder, "previews.npz") if "previews.npz" in listed else None,
    )


def read_paths(root: Path, problems: Problems) -> list[PathFolder]:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
    folders.sort(key=lambda p: not p.name.startswith("origin"))  # the story starts at the origin
    out = []
    for folder in folders:
        info = problems.read_json(folder / "info.json") or {}
        out.append(PathFolder(folder, info, figures(info, folder), provenance(info, folder / "info.json")))
    return out


@dataclass
class Attributes:
    """attributes/attributes.json: the probe table sorted by held-out AUC, the strips that exist, the checks."""

    data: dict
    table: list[dict]
    strips: list[tuple[str, FigureFile]]  # (attribute, its strip)
    conditional: list[dict]
    findings: list[Finding]
    weights: Provenance | None


def _auc(record: dict) -> float:
    value = record.get("auc")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("-inf")


def read_attributes(folder: Path, problems: Problems) -> Attributes | None:
    data = problems.read_json(folder / "attributes.json")
    if data is None:
        return None
    strips = []
    for entry in as_records(data.get("strips")):
        name = as_str(entry.get("file"))
        path = inside(folder, name) if name is not None else None
        if path is None:
            problems.append(
                f"the strip {name or '(unnamed)'} of attributes/attributes.json is missing; it was left out"
            )
            continue
        attribute = str(entry.get("attribute", path.stem))
        strips.append((attribute, FigureFile(path, as_str(entry.get("caption")) or f"decoded along {attribute}")))
    return Attributes(
        data=data,
        table=sorted(as_records(data.get("attributes")), key=_auc, reverse=True),
        strips=strips,
        conditional=as_records(data.get("conditional")),
        findings=findings(data, "attributes/attributes.json", problems),
        weights=provenance(data, folder / "attributes.json"),
    )
