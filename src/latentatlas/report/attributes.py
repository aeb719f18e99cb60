"""The report's attributes section, from RUN/attributes/ (`latentatlas attributes`).

The attribute table sorted by the probes' held-out AUC (with the mean shift in Mahalanobis units and the
variance shares), one decoded strip per top attribute, and the conditional round trips (samples fitted on
a condition, decoded and re-encoded: the share the probes still find the condition in), each under the
finding the attributes command computed from those numbers.
"""

from __future__ import annotations

from latentatlas.report.artifacts import Problems, as_dict, as_str, read_attributes
from latentatlas.report.blocks import Block, Details, Group, Missing, Text, key_values, records
from latentatlas.report.common import figure, stale_note, verdicts
from latentatlas.store import Run

TABLE_COLUMNS = {  # attributes.json field -> column heading, in the order shown
    "name": "attribute",
    "kind": "kind",
    "auc": "probe AUC (held out)",
    "shift_mahalanobis": "mean shift (Mahalanobis units)",
    "variance_share_direction": "variance share along the direction",
    "variance_share_total": "variance share of the bulk",
    "prevalence": "prevalence",
    "n_with": "n with",
    "n_without": "n without",
    "cosine_probe_direction": "cosine probe normal / direction",
}
CONDITION_COLUMNS = {
    "condition": "condition",
    "sampler": "sampler",
    "n_rows": "training rows fitted",
    "n_samples": "samples",
    "share": "share probe-positive after decode and re-encode",
    "reference_share": "share of the real held-out rows",
    "share_per_attribute": "per attribute",
}
LINEAR, CONDITIONAL = "attributes-linear", "attributes-conditional"


def _renamed(rows: list[dict], columns: dict[str, str]) -> list[dict]:
    return [{heading: row.get(field) for field, heading in columns.items()} for row in rows]


def attributes_section(run: Run, problems: Problems) -> list[Block]:
    command = f"latentatlas attributes {run.path}"
    found = read_attributes(run.path / "attributes", problems)
    if found is None:
        return [Missing("The attribute probes (attributes/attributes.json)", command)]
    blocks: list[Block] = []
    note = stale_note("the attribute analysis", found.weights, run, command)
    stale = note is not None
    badges = ["stale"] if stale else []
    if note is not None:
        blocks.append(note)
    blocks += verdicts([f for f in found.findings if f.key not in (LINEAR, CONDITIONAL)], stale)

    linear = verdicts([f for f in found.findings if f.key == LINEAR], stale)
    n_train, n_held = found.data.get("n_train"), found.data.get("n_held_out")
    counts = f" ({n_train} training, {n_held} held-out z-points)" if n_train is not None else ""
    table: list[Block] = [records(_renamed(found.table, TABLE_COLUMNS))] if found.table else []
    if not table:
        table = [Text("attributes.json lists no attribute.")]
    title = f"Linear probes and mean shifts, sorted by held-out AUC{counts}"
    blocks.append(Group(title, LINEAR, [*linear, *table], badges, f"claim-{LINEAR}"))

    for attribute, file in found.strips:
        blocks.append(Group(f"Decoded along the {attribute} direction", "", [figure(file)], badges))
    if not found.strips:
        blocks.append(Missing("Strips along the top attribute directions", f"{command} --strips 3"))

    conditional = verdicts([f for f in found.findings if f.key == CONDITIONAL], stale)
    if found.conditional:
        rows = records(_renamed(found.conditional, CONDITION_COLUMNS))
        title = "Conditional samples, decoded and re-encoded"
        blocks.append(Group(title, CONDITIONAL, [*conditional, rows], badges, f"claim-{CONDITIONAL}"))
    else:
        top = as_str(found.table[0].get("name")) if found.table else None
        where = f" --where {top}=1" if top else " --where NAME=1"
        blocks.append(Missing("The conditional round trip", command + where, state="was not asked for"))
    options = as_dict(found.data.get("options"))
    if options:
        blocks.append(Details("attributes options", key_values(options)))
    return blocks
