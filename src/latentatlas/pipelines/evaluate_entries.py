"""Evaluation entries: every scored row is kept as RUN/evaluation-entries/<name>[-options]-n<n>-seed<seed>.json,
and the table is the merge of all entries computed from the same weights."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.table import EvaluationRow
from latentatlas.io import read_json, write_json


def _entry_file(row: EvaluationRow, options: dict[str, Any], seed: int) -> str:
    """One file per (sampler or reference, options, n, seed)."""
    parts = [row.name, *(f"{key}={value}" for key, value in sorted(options.items())), f"n{row.n}", f"seed{seed}"]
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", "-".join(parts)) + ".json"


def accumulate_entries(
    folder: Path,
    rows: list[EvaluationRow],
    sampler_options: dict[str, dict],
    seed: int,
    weights: str | None = None,
) -> list[EvaluationRow]:
    """Save each row as RUN/evaluation-entries/<name>[-options]-n<n>-seed<seed>.json (saying so on stderr when
    it replaces an earlier entry) and return every entry: earlier evaluations of other samplers, options,
    n or seeds stay in the table. Reference rows first, then samplers, each in the order first evaluated."""
    for position, row in enumerate(rows):
        options = sampler_options.get(row.name, {}) if row.kind == "sampler" else {}
        path = folder / _entry_file(row, options, seed)
        created = time.time()
        if path.is_file():
            print(f"latentatlas: replacing the evaluation entry {path.name}", file=sys.stderr)
            try:
                created = float(read_json(path).get("created", created))
            except (LatentAtlasError, AttributeError, TypeError, ValueError):
                pass  # a damaged entry is simply replaced
        entry = {"row": row.record(), "options": options, "seed": seed, "created": created, "position": position}
        write_json(path, {**entry, "weights": weights})
    entries, stale = [], []
    for path in sorted(folder.glob("*.json")):
        try:
            entry = read_json(path)
            if entry.get("weights") != weights:
                stale.append(path.name)  # computed from other weights: never mixed into this table
                continue
            entries.append((entry["row"]["kind"] != "reference", entry["created"], entry["position"], entry["row"]))
        except (LatentAtlasError, KeyError, TypeError, AttributeError):
            print(f"latentatlas: skipping the unreadable evaluation entry {path.name}", file=sys.stderr)
    if stale:
        print(
            f"latentatlas: left out {len(stale)} earlier evaluation entries computed from other weights "
            f"(stale: {', '.join(stale[:3])}{', ...' if len(stale) > 3 else ''})",
            file=sys.stderr,
        )
    entries.sort(key=lambda entry: entry[:3])
    return [EvaluationRow.from_record(entry[3]) for entry in entries]
