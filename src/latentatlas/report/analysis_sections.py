"""The analysis in the report: one sub-section per finding of `latentatlas analyze`, in the order of the series.

Each claim of the series that the analysis decides (`latentatlas.findings.Finding`, computed from the run's
numbers) gets its own sub-section: the heading, the finding's sentence (its verdict), the ONE analysis
figure that shows it, and the numbers it rests on. Figures and fields that no claim concerns, findings this
report does not know yet, and the analysis settings go to "Further analysis results".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from latentatlas.report.artifacts import Analysis, Problems, as_dict, as_records, read_analysis
from latentatlas.report.blocks import (
    Block,
    Details,
    Group,
    Heading,
    Missing,
    Text,
    format_number,
    key_values,
    records,
)
from latentatlas.report.common import (
    COMPONENTS,
    CORRELATIONS,
    FURTHER,
    NORMAL,
    ORIGIN,
    REGIONS,
    SectionSpec,
    figure,
    stale_note,
    verdicts,
)
from latentatlas.store import Run


@dataclass(frozen=True)
class Claim:
    """A sub-section: the findings it shows (`keys`, the first is its claim; none for a view without a
    verdict), the one analysis figure that shows them, and the numbers behind them."""

    title: str
    keys: tuple[str, ...]
    figure: str
    numbers: Callable[[dict], list[Block]]
    skipped: str | None = None  # the analysis.json section whose {"skipped": reason} explains a missing verdict


# ----------------------------------------------------------------------------- the numbers of each claim


def _general_numbers(analysis: dict) -> list[Block]:
    facts = {k: analysis[k] for k in ("n_points", "latent_dim", "subset") if k in analysis}
    facts.update(as_dict(analysis.get("bulk")))
    return [key_values(facts)] if facts else []


def _marginal_numbers(analysis: dict) -> list[Block]:
    components = as_records(analysis.get("components"))
    if not components:
        return []
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
    if not summary:
        return []
    return [Heading(f"All {len(components)} components: how Gaussian their distributions are"), key_values(summary)]


def _dominant_numbers(analysis: dict) -> list[Block]:
    dominant = as_dict(analysis.get("dominant"))
    ranked = as_records(dominant.get("components"))
    if not ranked:
        return []
    rule = ", ".join(f"{k.replace('_', ' ')} {format_number(v)}" for k, v in as_dict(dominant.get("rule")).items())
    blocks: list[Block] = [Heading(f"Dominant components ({len(ranked)}), ranked by their share of the squared radius")]
    if rule:
        blocks.append(Text(f"Rule: {rule}."))
    return [*blocks, records(ranked[:16])]


def _radius_numbers(analysis: dict) -> list[Block]:
    radii = as_dict(analysis.get("radii"))
    if not radii:
        return []
    blocks: list[Block] = [Heading("Radii |z| of the real z-points and of uniform vectors in [-b, b]^N")]
    blocks.append(key_values({k: v for k, v in radii.items() if k not in ("uniform", "data")}))
    if as_dict(radii.get("data")):
        blocks.append(records([{"vectors": "real z-points", **radii["data"]}]))
    uniform = [{k: v for k, v in r.items() if k != "simulated_radii"} for r in as_records(radii.get("uniform"))]
    if uniform:
        blocks.append(records(uniform))
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
    return blocks


def _centre_numbers(analysis: dict) -> list[Block]:
    bulk, origin = as_dict(analysis.get("bulk")), as_dict(analysis.get("origin"))
    facts = {"centre norm": bulk.get("centre_norm"), "centre's Mahalanobis distance": origin.get("mahalanobis")}
    facts = {k: v for k, v in facts.items() if v is not None}
    return [key_values(facts)] if facts else []


def _origin_numbers(analysis: dict) -> list[Block]:
    origin = as_dict(analysis.get("origin"))
    return [Heading("The origin's position relative to the bulk"), key_values(origin)] if origin else []


def _slice_numbers(analysis: dict) -> list[Block]:
    slices = as_records(analysis.get("slices"))
    if not slices:
        return []
    return [Heading("Slices: real z-points with |z_j| ≤ b for every component outside the plane"), records(slices)]


def _core_numbers(analysis: dict) -> list[Block]:
    blocks: list[Block] = []
    core = as_dict(analysis.get("core_normality"))
    if core:
        blocks.append(key_values({k: v for k, v in core.items() if k not in ("core", "all")}))
        for part, title in (("core", "Tests on the core"), ("all", "The same tests on all points (untrimmed)")):
            if as_records(core.get(part)):
                blocks += [Heading(title), records(as_records(core[part]))]
    if as_dict(analysis.get("normality")):
        blocks += [
            Heading("Squared Mahalanobis distances of all points against chi-square"),
            key_values(analysis["normality"]),
        ]
    if as_dict(analysis.get("robust_core")):
        blocks += [Heading("Robust (MCD) core against the plain covariance"), key_values(analysis["robust_core"])]
    return blocks


def _pca_numbers(analysis: dict) -> list[Block]:
    pca = as_dict(analysis.get("pca"))
    return [key_values(pca)] if pca else []


def _region_numbers(analysis: dict) -> list[Block]:
    regions = as_dict(analysis.get("regions"))
    if not regions or "skipped" in regions:
        return []
    shown = ("regions", "separation_mahalanobis", "bic")
    blocks: list[Block] = [key_values({k: v for k, v in regions.items() if k not in shown})]
    described = [{"region": k, **r} for k, r in enumerate(as_records(regions.get("regions")))]
    if described:
        blocks += [Heading("Each region"), records(described)]
    separation = regions.get("separation_mahalanobis")
    if isinstance(separation, list) and len(separation) > 1 and all(isinstance(r, list) for r in separation):
        table = [{"region": k, **{f"to {j}": d for j, d in enumerate(row)}} for k, row in enumerate(separation)]
        blocks += [Heading("Distance between region centres (Mahalanobis units)"), records(table)]
    return blocks


CLAIMS: dict[str, tuple[Claim, ...]] = {
    COMPONENTS.anchor: (
        Claim(
            "Each component's distribution against a Gaussian",
            ("gaussian-marginals",),
            "histograms.png",
            _marginal_numbers,
        ),
        Claim("Dominant components", ("dominant-components",), "components.png", _dominant_numbers),
        Claim(
            "Radii against vectors uniform in [-b, b]^N", ("uniform-shell-misses-bulk",), "radii.png", _radius_numbers
        ),
    ),
    CORRELATIONS.anchor: (
        Claim(
            "Linear correlations between components", ("strong-correlations",), "correlation.png", _correlation_numbers
        ),
    ),
    ORIGIN.anchor: (
        Claim("The bulk's centre and the origin", ("bulk-off-centre",), "projections.png", _centre_numbers),
        Claim("The origin's position among the z-points", ("origin-position",), "mahalanobis.png", _origin_numbers),
        Claim("Slices through the bulk", (), "slices.png", _slice_numbers),
    ),
    NORMAL.anchor: (
        Claim(
            "The normal core after the outliers",
            ("normal-core", "henze-zirkler-power"),
            "core_normality.png",
            _core_numbers,
            skipped="core_normality",
        ),
        Claim("Principal axes (part IX)", (), "pca_spectrum.png", _pca_numbers),
    ),
    REGIONS.anchor: (
        Claim("Regions and the voids between them", ("one-compact-region",), "regions.png", _region_numbers, "regions"),
    ),
}
ANALYSIS_SECTIONS: tuple[SectionSpec, ...] = (COMPONENTS, CORRELATIONS, ORIGIN, NORMAL, REGIONS, FURTHER)
SHOWN_FIELDS = (
    "n_points", "latent_dim", "subset", "bulk", "components", "dominant", "radii", "correlations", "planes", "origin",
    "slices", "core_normality", "normality", "robust_core", "pca", "regions",
)  # fmt: skip
BOOKKEEPING = ("schema", "run", "options", "arrays", "figures", "findings", "weights", "weights_id")


def claim_group(claim: Claim, analysis: Analysis, run: Run, stale: bool) -> Group:
    """The claim's sub-section: its verdicts, its one figure, its numbers."""
    command = f"latentatlas analyze {run.path}"
    found = [f for key in claim.keys for f in analysis.findings if f.key == key]
    blocks: list[Block] = verdicts(found, stale)
    if claim.keys and not found:
        reason = as_dict(analysis.data.get(claim.skipped)).get("skipped") if claim.skipped else None
        if isinstance(reason, str):
            blocks.append(Text(f"No verdict: the analysis skipped this part ({reason})."))
        else:
            blocks.append(Missing("The verdict on this claim", command, state="is not in analysis/analysis.json"))
    shown = next((file for file in analysis.figures if file.path.name == claim.figure), None)
    if shown is not None:
        blocks.append(figure(shown))
    elif not (claim.skipped and "skipped" in as_dict(analysis.data.get(claim.skipped))):
        blocks.append(Missing(f"The figure {claim.figure}", command, state="was not drawn"))
    blocks += claim.numbers(analysis.data)
    anchor = f"claim-{claim.keys[0]}" if claim.keys else ""
    return Group(claim.title, ", ".join(claim.keys), blocks, ["stale"] if stale else [], anchor)


def _further(analysis: Analysis, known: set[str], stale: bool) -> list[Block]:
    """Findings, figures and fields that no claim of the story concerns, and the analysis options."""
    blocks: list[Block] = verdicts([f for f in analysis.findings if f.key not in known], stale)
    drawn = {claim.figure for claims in CLAIMS.values() for claim in claims}
    blocks += [figure(file) for file in analysis.figures if file.path.name not in drawn]
    extra = {k: v for k, v in analysis.data.items() if k not in SHOWN_FIELDS and k not in BOOKKEEPING}
    if extra:
        blocks += [Heading("Further analysis results"), key_values(extra)]
    settings = as_dict(analysis.data.get("options"))
    if settings:
        blocks.append(Details("analysis options", key_values(settings)))
    return blocks or [Text("The analysis recorded nothing beyond the sections above.")]


def analysis_sections(run: Run, problems: Problems, umap: list[Block] | None = None) -> dict[str, list[Block]]:
    """Blocks of the analysis sections by anchor; `umap` (the nonlinear map's blocks) joins the regions."""
    analysis = read_analysis(run.path / "analysis", problems)
    command = f"latentatlas analyze {run.path}"
    if analysis is None:
        out = {spec.anchor: [Missing("The analysis (analysis/analysis.json)", command)] for spec in ANALYSIS_SECTIONS}
        out[REGIONS.anchor] += map_group(umap)
        return out
    note = stale_note("the analysis", analysis.weights, run, command)
    stale = note is not None
    out: dict[str, list[Block]] = {spec.anchor: [] for spec in ANALYSIS_SECTIONS}
    if note is not None:  # once, at the top; every sub-section and verdict carries a "stale" badge
        out[COMPONENTS.anchor].append(note)
    out[COMPONENTS.anchor] += _general_numbers(analysis.data)
    for anchor, claims in CLAIMS.items():
        out[anchor] += [claim_group(claim, analysis, run, stale) for claim in claims]
    out[REGIONS.anchor] += map_group(umap)
    known = {key for claims in CLAIMS.values() for claim in claims for key in claim.keys}
    out[FURTHER.anchor] = _further(analysis, known, stale)
    return out


def map_group(umap: list[Block] | None) -> list[Block]:
    """The UMAP map's heading and figure (`report.maps.umap_blocks`) as a sub-section without a verdict."""
    if not umap:
        return []
    title = umap[0].text if isinstance(umap[0], Heading) else "A nonlinear map of the bulk"
    return [Group(title, "", [b for b in umap if not isinstance(b, Heading)])]


def finding_keys() -> list[str]:
    """The keys of the findings that have a sub-section, in the order of the story."""
    return [key for claims in CLAIMS.values() for claim in claims for key in claim.keys]


__all__ = ["CLAIMS", "Claim", "analysis_sections", "claim_group", "finding_keys"]
