"""The report's typed content: what a section holds, built in Python and rendered by the Jinja2 template.

Nothing here produces HTML: every text is a plain string that the template escapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

MAX_LIST_ITEMS = 12  # longer lists of numbers are summarised, not printed in full


# ----------------------------------------------------------------------------- blocks


@dataclass(frozen=True)
class KeyValues:
    """A two-column table: label, value."""

    rows: list[tuple[str, Cell]]
    kind: ClassVar[str] = "kv"


@dataclass(frozen=True)
class Table:
    """A table of records; `highlight[i]` emphasises row i (the reference row)."""

    columns: list[str]
    rows: list[list[Cell]]
    highlight: list[bool]
    kind: ClassVar[str] = "table"


Cell = str | KeyValues | Table


@dataclass(frozen=True)
class Figure:
    uri: str  # a data: URI, so the page stays one file
    caption: str
    kind: ClassVar[str] = "figure"


@dataclass(frozen=True)
class Heading:
    text: str
    kind: ClassVar[str] = "heading"


@dataclass(frozen=True)
class Text:
    text: str
    style: str = ""  # "stale" marks a note about outdated inputs
    kind: ClassVar[str] = "text"


@dataclass(frozen=True)
class Missing:
    kind: ClassVar[str] = "missing"
    what: str  # rendered "<what> <state>: run <command>"
    command: str
    state: str = "is missing"


@dataclass(frozen=True)
class Verdict:
    """A seed claim checked against the run's numbers (`latentatlas.findings.Finding.sentence()`)."""

    verdict: str  # agrees | disagrees | mixed | undecided
    sentence: str
    stale: bool = False
    kind: ClassVar[str] = "verdict"


@dataclass(frozen=True)
class Details:
    kind: ClassVar[str] = "details"
    summary: str  # settings kept one click away
    body: KeyValues


@dataclass(frozen=True)
class Group:
    """One artifact (a sample folder, a path): its title, badges such as "stale", and its blocks."""

    title: str
    subtitle: str
    blocks: list[Block]
    badges: list[str] = field(default_factory=list)
    anchor: str = ""  # the element id the summary links to ("claim-<finding key>"); none when empty
    kind: ClassVar[str] = "group"


Block = KeyValues | Table | Figure | Heading | Text | Missing | Verdict | Details | Group


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    intro: str
    blocks: list[Block]


# ----------------------------------------------------------------------------- values


def format_number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}".replace(",", " ")
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            return "—"
        if value == 0:
            return "0"
        if abs(value) >= 1e5 or abs(value) < 1e-3:
            return f"{value:.3g}"
        return f"{value:.4g}"
    return str(value)


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, np.generic))


def label(key: Any) -> str:
    return str(key).replace("_", " ")


def short_list(values: list) -> str:
    if all(is_scalar(v) for v in values):
        shown = ", ".join(format_number(v) for v in values[:MAX_LIST_ITEMS])
        more = f", … ({len(values)} values)" if len(values) > MAX_LIST_ITEMS else ""
        return f"[{shown}{more}]"
    return f"{len(values)} entries"


def cell(value: Any, depth: int = 0) -> Cell:
    """Any JSON value as a table cell: scalars formatted, lists shortened, dicts as nested tables (2 levels)."""
    if is_scalar(value):
        return format_number(value)
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value) and depth < 2:
            return records(value)
        return short_list(value)
    if isinstance(value, dict):
        if not value:
            return "—"
        if depth >= 2:
            return f"{len(value)} fields"
        return key_values(value, depth + 1)
    return type(value).__name__


def key_values(data: dict, depth: int = 0, skip: tuple[str, ...] = ("figures", "findings")) -> KeyValues:
    return KeyValues([(label(key), cell(value, depth)) for key, value in data.items() if key not in skip])


def records(rows: list[dict], columns: list[str] | None = None, highlight: str | None = None) -> Table:
    """A list of flat dicts as one table; `highlight` names the first column's value to emphasise."""
    if columns is None:
        columns = []
        for row in rows:
            columns += [c for c in row if c not in columns and c not in ("figures", "findings")]
    first = columns[0] if columns else ""
    return Table(
        columns=[label(c) for c in columns],
        rows=[[cell(row.get(c), 2) for c in columns] for row in rows],
        highlight=[highlight is not None and str(row.get(first, "")) == highlight for row in rows],
    )
