"""Evaluation entries: every scored row is kept as RUN/evaluation-entries/<name>[-options]-n<n>-seed<seed>.json,
and the table is the merge of the entries computed from the same weights at the evaluation's n.

Merging and saving are two steps: `merge_entries` reads the earlier entries and returns the table with the
new rows in place, `save_entries` writes the new rows; the evaluation saves them only after its table and
figures were written, so an evaluation that fails leaves no entry behind to break the next one.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.table import EvaluationRow
from latentatlas.io import read_json, write_json


def _entry_file(row: EvaluationRow, options: dict[str, Any], seed: int) -> str:
    """One file per (sampler or reference, options, n, seed)."""
    parts = [row.name, *(f"{key}={value}" for key, value in sorted(options.items())), f"n{row.n}", f"seed{seed}"]
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", "-".join(parts)) + ".json"


@dataclass
class MergedEntries:
    """The table at the evaluation's n, the other n of earlier entries, and the new entries still to save.

    Attributes
    ----------
    rows : list of EvaluationRow
        Every entry at n (earlier ones of other samplers, options or seeds, and the new rows): reference
        rows first, then samplers, each in the order first evaluated.
    other_n : list of int
        The n of earlier entries from the same weights that are not in `rows` (scores at another n are
        not comparable: "also evaluated at n = ...").
    pending : dict of Path to dict
        The new entries, written by `save_entries`.
    """

    rows: list[EvaluationRow]
    other_n: list[int]
    pending: dict[Path, dict[str, Any]] = field(default_factory=dict)


def merge_entries(folder: Path, rows: list[EvaluationRow], seed: int, weights: str | None = None) -> MergedEntries:
    """The new rows merged with the earlier entries of RUN/evaluation-entries/ at the rows' n (an entry of the
    same sampler, options, n and seed is replaced, and stderr says so); nothing is written. A sampler row's
    entry is keyed by its label and options (`row.options`, the temperature included), so the rows of one
    sampler at several temperatures are separate entries."""
    n = {row.n for row in rows}
    pending: dict[Path, dict[str, Any]] = {}
    for position, row in enumerate(rows):
        options = dict(row.options) if row.kind == "sampler" else {}
        path = folder / _entry_file(row, options, seed)
        created = time.time()
        if path.is_file():
            print(f"latentatlas: replacing the evaluation entry {path.name}", file=sys.stderr)
            try:
                created = float(read_json(path).get("created", created))
            except (LatentAtlasError, AttributeError, TypeError, ValueError):
                pass  # a damaged entry is simply replaced
        entry = {"row": row.record(), "options": options, "seed": seed, "created": created, "position": position}
        pending[path] = {**entry, "weights": weights}
    entries, stale, other_n = [], [], set()
    paths = sorted(set(folder.glob("*.json")) | set(pending))
    for path in paths:
        try:
            entry = pending.get(path) or read_json(path)
            if entry.get("weights") != weights:
                stale.append(path.name)  # computed from other weights: never mixed into this table
                continue
            record = entry["row"]
            if int(record["n"]) not in n:
                other_n.add(int(record["n"]))
                continue
            row = EvaluationRow.from_record(record)
            entries.append((row.kind != "reference", float(entry["created"]), int(entry["position"]), row))
        except (LatentAtlasError, KeyError, TypeError, AttributeError, ValueError):
            print(f"latentatlas: skipping the unreadable evaluation entry {path.name}", file=sys.stderr)
    if stale:
        print(
            f"latentatlas: left out {len(stale)} earlier evaluation entries computed from other weights "
            f"(stale: {', '.join(stale[:3])}{', ...' if len(stale) > 3 else ''})",
            file=sys.stderr,
        )
    entries.sort(key=lambda entry: entry[:3])
    return MergedEntries([entry[3] for entry in entries], sorted(other_n), pending)


def save_entries(merged: MergedEntries) -> None:
    """Write the new entries (each file atomically)."""
    for path, entry in merged.pending.items():
        write_json(path, entry)
