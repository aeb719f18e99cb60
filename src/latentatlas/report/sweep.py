"""The report's "what the bulk depends on" section, for a run that belongs to a sweep.

`latentatlas sweep --out OUT` trains every model as a run folder OUT/<source>-z<dim>-<bn|nobn>/ and writes
OUT/sweep.json (one row per model, "run" naming its folder) and OUT/sweep.png. That is the only link from a
run to a sweep: the section appears when the run's parent folder holds a sweep.json that lists the run,
and is left out otherwise. Its summary sentence is computed from the table (the spread of each number
across the models); the sweep records no weights, so its numbers are those of the sweep's own analyses.
"""

from __future__ import annotations

from pathlib import Path

from latentatlas.report.artifacts import FigureFile, Problems, as_records
from latentatlas.report.blocks import Block, Table, Text, format_number, records
from latentatlas.report.common import figure
from latentatlas.store import Run

SPREAD = {  # sweep.json column -> how the summary names it
    "origin_percentile": "the origin's Mahalanobis percentile",
    "n_dominant": "dominant components",
    "participation_ratio": "the participation ratio",
    "b_match": "b_match",
    "core_fraction": "the normal core's share",
    "n_regions": "regions",
}


def sweep_rows(run: Run, problems: Problems) -> tuple[Path, list[dict]] | None:
    """(the sweep folder, its rows) when the run's parent folder is a sweep that lists this run, else None."""
    folder = run.path.resolve().parent
    data = problems.read_json(folder / "sweep.json")
    rows = as_records(data.get("rows")) if data else []
    if not any(row.get("run") == run.path.resolve().name for row in rows):
        return None
    return folder, rows


def _spread(rows: list[dict], column: str) -> str | None:
    values = [r[column] for r in rows if isinstance(r.get(column), (int, float)) and not isinstance(r[column], bool)]
    if not values:
        return None
    low, high = min(values), max(values)
    return format_number(low) if low == high else f"{format_number(low)} to {format_number(high)}"


def summary(rows: list[dict], name: str) -> str:
    """One sentence from the table: this run's settings and each number's range across the models."""
    this = next(r for r in rows if r.get("run") == name)
    norm = "with" if this.get("batch_norm") else "without"
    sources = sorted({str(r.get("source")) for r in rows})
    dims = sorted({r["latent_dim"] for r in rows if isinstance(r.get("latent_dim"), int)})
    spreads = [f"{label} {text}" for column, label in SPREAD.items() if (text := _spread(rows, column)) is not None]
    return (
        f"This run ({this.get('source')}, latent dimension {this.get('latent_dim')}, {norm} batch norm) is one of "
        f"{len(rows)} models (sources {', '.join(sources)}; latent dimensions {', '.join(map(str, dims))}); across "
        f"them {'; '.join(spreads) if spreads else 'no number was recorded'}."
    )


def sweep_section(run: Run, problems: Problems) -> list[Block] | None:
    """The section's blocks, or None when the run belongs to no sweep (the section is then left out)."""
    found = sweep_rows(run, problems)
    if found is None:
        return None
    folder, rows = found
    name = run.path.resolve().name
    blocks: list[Block] = [Text(summary(rows, name))]
    png = folder / "sweep.png"
    if png.is_file():
        caption = (
            f"The bulk's key numbers against the latent dimension, per source and batch-norm setting "
            f"({folder.name}/sweep.png)"
        )
        blocks.append(figure(FigureFile(png, caption)))
    table = records(rows)
    blocks.append(Table(table.columns, table.rows, [row.get("run") == name for row in rows]))
    return blocks
