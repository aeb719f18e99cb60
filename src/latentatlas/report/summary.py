"""What a run shows, in one place: every finding's verdict, the sampler ranking in one sentence, what is missing.

`run_summary(artifacts)` is the one pure function behind the report's summary section, the terminal table
of `latentatlas report` / `latentatlas summary` and `latentatlas summary --json`: it takes the files the
other commands wrote, already read (`read_artifacts`), and returns a `Summary`.

The ranking sentence comes from `report.ranking`; the number behind each finding is read from the field of
the JSON its verdict was computed from ("—" for a finding this module has no reader for).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from latentatlas.evaluation.frontier import LABELS as FRONTIER_LABELS
from latentatlas.evaluation.frontier import ceiling_verdict
from latentatlas.evaluation.table import evaluation_notes
from latentatlas.evaluation.verdicts import CEILING_CLAIM, CEILING_KEY
from latentatlas.findings import Finding
from latentatlas.report.analysis_sections import CLAIMS
from latentatlas.report.artifacts import (
    Analysis,
    Attributes,
    Evaluation,
    Problems,
    as_dict,
    as_records,
    read_analysis,
    read_attributes,
    read_evaluation,
)
from latentatlas.report.attributes import CONDITIONAL, LINEAR
from latentatlas.report.blocks import format_number
from latentatlas.report.common import ATTRIBUTES, FURTHER, SAMPLERS, UNIFORM
from latentatlas.report.ranking import (
    Ranking,
    as_number,
    interval_text,
    ranking_sentence,
    sampler_ranking,
    score_of,
    table_rows,
)
from latentatlas.store import Run
from latentatlas.store.staleness import stale_reason

NOT_MEASURED = "not measured"
REFRESH = {"analysis": "analyze", "evaluation": "evaluate", "attributes": "attributes"}  # source -> command
SHORT_CLAIMS = {  # the claims the package decides today, in a few words (others are cut to SHORT_LENGTH)
    "origin-position": "the origin lies at the bulk's border",
    "dominant-components": "a few components dominate",
    "gaussian-marginals": "each component is Gaussian",
    "strong-correlations": "components strongly correlated",
    "uniform-shell-misses-bulk": "uniform vectors miss the bulk",
    "bulk-off-centre": "the bulk's centre is off the origin",
    "normal-core": "a multivariate normal core",
    "henze-zirkler-power": "Henze-Zirkler has power here",
    "one-compact-region": "one compact region",
    "uniform-box-misses": "uniform-box samples miss the bulk",
    "independent-components-miss": "independent components miss",
    "full-covariance-hits": "a full-covariance Gaussian hits",
    CEILING_KEY: "a sampler at the ceiling, not copying",
    "attributes-linear": "attributes linearly encoded",
    "attributes-conditional": "conditional samples keep it",
}
SHORT_LENGTH = 48


# The quality score the ranking is judged by: the first one the reconstruction row and a sampler both have.
@dataclass(frozen=True)
class SummaryRow:
    """One finding: its claim, verdict (the JSON's, or "not measured"), the number behind it, where it is shown."""

    key: str
    claim: str
    short: str  # the claim in a few words
    verdict: str
    number: str  # "53.16", "0.012 [0.004, 0.02]" or "—"
    number_label: str  # what the number is
    evidence: str
    source: str  # the file it comes from: "analysis", "evaluation" or "attributes"
    anchor: str  # the report's element id that shows it
    stale: str = ""  # why the verdict is not current and the command that refreshes it ("" when current)

    @property
    def shown_verdict(self) -> str:
        """The verdict as shown: a stale one is never presented as current."""
        return f"stale ({self.verdict})" if self.stale else self.verdict


@dataclass(frozen=True)
class MissingStep:
    what: str
    command: str


@dataclass
class Artifacts:
    """The run's files that the summary reads, already read (`read_artifacts`)."""

    run: Path
    analysis: Analysis | None = None
    evaluation: Evaluation | None = None
    attributes: Attributes | None = None
    ranking_lines: list[str] = field(default_factory=list)  # evaluation.json's own "ranking", shown as written
    trained: bool = False
    encoded: bool = False
    reconstructions: bool = False
    samples: int = 0
    # per source ("analysis", "evaluation", "attributes") computed from other z-points than the store's now:
    # why, and the command that refreshes it (`artifacts.stale_reason`, the rule the report sections use)
    stale: dict[str, str] = field(default_factory=dict)


@dataclass
class Summary:
    run: str
    rows: list[SummaryRow]
    ranking_sentence: str
    ranking: Ranking | None
    missing: list[MissingStep]
    # what the evaluation table says beside its scores (`evaluation_notes`: no real images, face scores withheld)
    evaluation_notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.ranking is not None:
            data["ranking"]["groups"] = {g: self.ranking.names(g) for g in ("ceiling", "copies", "misses", "between")}
        return data


# ----------------------------------------------------------------------------- reading


def read_artifacts(run: Run, problems: Problems | None = None) -> Artifacts:
    """The files `run_summary` needs; unreadable ones are recorded in `problems` and read as absent."""
    problems = problems if problems is not None else Problems()
    evaluation_json = problems.read_json(run.path / "evaluation" / "evaluation.json") or {}
    samples = run.path / "samples"
    read = {
        "analysis": read_analysis(run.path / "analysis", problems),
        "evaluation": read_evaluation(run.path / "evaluation", problems),
        "attributes": read_attributes(run.path / "attributes", problems),
    }
    stale = {}
    for source, found in read.items():
        reason = stale_reason(run, found.weights) if found is not None and found.weights is not None else None
        if reason is not None:
            stale[source] = f"the {source} was {reason}; refresh it with `latentatlas {REFRESH[source]} {run.path}`"
    return Artifacts(
        run=run.path,
        analysis=cast(Analysis | None, read["analysis"]),
        evaluation=cast(Evaluation | None, read["evaluation"]),
        attributes=cast(Attributes | None, read["attributes"]),
        stale=stale,
        ranking_lines=[line for line in evaluation_json.get("ranking", []) if isinstance(line, str)]
        if isinstance(evaluation_json.get("ranking"), list)
        else [],
        # a run imported with its encoder has its model as a trained run does
        trained=run.has_encoder if run.imported else (run.path / "train_state.json").is_file(),
        encoded=run.zpoints_file("zpoints.json").is_file(),
        reconstructions=(run.path / "reconstructions.png").is_file(),
        samples=sum(1 for p in samples.glob("*/info.json")) if samples.is_dir() else 0,
    )


# ----------------------------------------------------------------------------- the number behind each finding


def _analysis_number(key: str, data: dict) -> tuple[str, str] | None:
    """(label, number) of an analysis finding, read from the analysis.json field its verdict was computed from."""
    origin, core, regions = (
        as_dict(data.get("origin")),
        as_dict(data.get("core_normality")),
        as_dict(data.get("regions")),
    )
    if key in ("origin-position", "bulk-off-centre") and as_number(origin.get("mahalanobis")) is not None:
        label = "origin's Mahalanobis distance" if key == "origin-position" else "centre to origin (Mahalanobis)"
        return label, format_number(origin["mahalanobis"])
    if key == "dominant-components" and "dominant" in data and as_number(data.get("latent_dim")) is not None:
        count = len(as_records(as_dict(data["dominant"]).get("components")))
        return "dominant components", f"{count} of {int(data['latent_dim'])}"
    if key == "gaussian-marginals":
        ks = sorted(
            v for r in as_records(data.get("components")) if (v := as_number(r.get("ks_statistic"))) is not None
        )
        if ks:
            return "median KS distance", format_number(statistics.median(ks))
    if key == "strong-correlations" and as_number(as_dict(data.get("correlations")).get("max_abs_r")) is not None:
        return "strongest |r|", format_number(data["correlations"]["max_abs_r"])
    if key == "normal-core" and as_number(core.get("core_fraction")) is not None:
        return "share within 3σ of the core", format_number(core["core_fraction"])
    if key == "henze-zirkler-power" and as_number(as_dict(core.get("hz_power_check")).get("p")) is not None:
        return "Henze-Zirkler p on Student-t(3)", format_number(core["hz_power_check"]["p"])
    if key == "one-compact-region" and as_number(regions.get("n_regions")) is not None:
        return "regions (BIC)", format_number(regions["n_regions"])
    return None


EVALUATION_NUMBERS = {  # finding key -> the row whose latent precision decided it
    "uniform-box-misses": "uniform-box",
    "independent-components-miss": "diagonal-gaussian",
    "full-covariance-hits": "gaussian",
}


def _ceiling_number(records: list[dict]) -> tuple[str, str] | None:
    """The row that decided "ceiling-without-copying" (its quality score), read through the verdict's own
    computation (`evaluation.frontier.ceiling_verdict`) from the table's rows."""
    found = ceiling_verdict(table_rows(records))
    if found is None or found.deciding is None:
        return None
    label = f"{found.deciding.row} {FRONTIER_LABELS.get(found.quality, found.quality)}"
    return label, interval_text(found.deciding.quality)


def _evaluation_number(key: str, records: list[dict]) -> tuple[str, str] | None:
    if key == CEILING_KEY:
        return _ceiling_number(records)
    prefix = EVALUATION_NUMBERS.get(key)
    rows = [r for r in records if prefix is not None and str(r.get("name", "")).startswith(prefix)]
    rows.sort(key=lambda r: -(as_number(r.get("n")) or 0))
    score = score_of(rows[0], "precision") if rows else None
    return (f"{rows[0]['name']} precision", interval_text(score)) if score is not None else None


def _attributes_number(key: str, attributes: Attributes) -> tuple[str, str] | None:
    if key == LINEAR and attributes.table and as_number(attributes.table[0].get("auc")) is not None:
        return f"best probe AUC ({attributes.table[0].get('name')})", format_number(attributes.table[0]["auc"])
    shares = [s for r in attributes.conditional if (s := as_number(r.get("share"))) is not None]
    if key == CONDITIONAL and shares:
        return "lowest kept share", format_number(min(shares))
    return None


# ----------------------------------------------------------------------------- rows


def _claim_anchor(key: str) -> str:
    for claims in CLAIMS.values():
        for claim in claims:
            if key in claim.keys:
                return f"claim-{claim.keys[0]}"
    return FURTHER.anchor


def _row(
    finding: Finding, source: str, anchor: str, number: tuple[str, str] | None, stale: dict[str, str]
) -> SummaryRow:
    label, value = number if number is not None else ("", "—")
    short = SHORT_CLAIMS.get(finding.key) or _cut(finding.claim)
    return SummaryRow(
        finding.key,
        finding.claim,
        short,
        finding.verdict,
        value,
        label,
        finding.evidence,
        source,
        anchor,
        stale.get(source, ""),
    )


def _cut(text: str) -> str:
    return text if len(text) <= SHORT_LENGTH else text[: SHORT_LENGTH - 1].rstrip() + "…"


def finding_rows(artifacts: Artifacts) -> list[SummaryRow]:
    """One row per finding in analysis.json, evaluation.json and attributes.json (in that order), then a
    "not measured" row for each claim of the report's story that a present analysis did not decide."""
    rows: list[SummaryRow] = []
    analysis, evaluation, attributes = artifacts.analysis, artifacts.evaluation, artifacts.attributes
    if analysis is not None:
        rows += [
            _row(f, "analysis", _claim_anchor(f.key), _analysis_number(f.key, analysis.data), artifacts.stale)
            for f in analysis.findings
        ]
        decided = {f.key for f in analysis.findings}
        for claims in CLAIMS.values():
            for claim in claims:
                for key in claim.keys:
                    if key in decided:
                        continue
                    reason = as_dict(analysis.data.get(claim.skipped)).get("skipped") if claim.skipped else None
                    why = f"skipped: {reason}" if isinstance(reason, str) else "not in analysis/analysis.json"
                    rows.append(
                        SummaryRow(
                            key,
                            claim.title,
                            SHORT_CLAIMS.get(key) or _cut(claim.title),
                            NOT_MEASURED,
                            "—",
                            "",
                            why,
                            "analysis",
                            f"claim-{claim.keys[0]}",
                            artifacts.stale.get("analysis", ""),
                        )
                    )
    if evaluation is not None:
        records = [row.record for row in evaluation.rows]
        for f in evaluation.findings:
            anchor = UNIFORM.anchor if "uniform" in f.key else SAMPLERS.anchor
            rows.append(_row(f, "evaluation", anchor, _evaluation_number(f.key, records), artifacts.stale))
        if CEILING_KEY not in {f.key for f in evaluation.findings}:
            why = (
                "no sampler row with a quality score (FID, FD-face or latent precision) and a ceiling row in "
                "evaluation/evaluation.json; copies are judged by C_T and the authenticity share"
            )
            rows.append(
                SummaryRow(
                    CEILING_KEY,
                    CEILING_CLAIM,
                    SHORT_CLAIMS[CEILING_KEY],
                    NOT_MEASURED,
                    "—",
                    "",
                    why,
                    "evaluation",
                    SAMPLERS.anchor,
                    artifacts.stale.get("evaluation", ""),
                )
            )
    if attributes is not None:
        for f in attributes.findings:
            anchor = f"claim-{f.key}" if f.key in (LINEAR, CONDITIONAL) else ATTRIBUTES.anchor
            rows.append(_row(f, "attributes", anchor, _attributes_number(f.key, attributes), artifacts.stale))
    return rows


# ----------------------------------------------------------------------------- what is missing


def missing_steps(artifacts: Artifacts) -> list[MissingStep]:
    run = artifacts.run
    steps = [
        (artifacts.trained, "the trained model", f"latentatlas train --data SOURCE --out {run}"),
        (artifacts.encoded, "the z-point store", f"latentatlas encode {run}"),
        (artifacts.reconstructions, "the reconstructions", f"latentatlas reconstruct {run}"),
        (artifacts.analysis is not None, "the analysis of the bulk", f"latentatlas analyze {run}"),
        (artifacts.samples > 0, "sampler grids", f"latentatlas sample {run} --sampler gaussian"),
        (artifacts.evaluation is not None, "the evaluation of the samplers", f"latentatlas evaluate {run}"),
        (artifacts.attributes is not None, "the attribute probes", f"latentatlas attributes {run}"),
    ]
    return [MissingStep(what, command) for present, what, command in steps if not present]


def run_summary(artifacts: Artifacts) -> Summary:
    """The summary of a run from its read artifacts (no file is touched)."""
    records = [row.record for row in artifacts.evaluation.rows] if artifacts.evaluation is not None else []
    ranking = sampler_ranking(records)
    sentence = ranking_sentence(ranking, artifacts.run)
    if records and "evaluation" in artifacts.stale:
        sentence = f"Stale: {artifacts.stale['evaluation']}. It said: {sentence}"
    return Summary(
        run=str(artifacts.run),
        rows=finding_rows(artifacts),
        ranking_sentence=sentence,
        ranking=ranking,
        missing=missing_steps(artifacts),
        evaluation_notes=evaluation_notes(artifacts.evaluation.settings) if artifacts.evaluation is not None else [],
    )


def summary_text(summary: Summary, width: int = 100) -> str:
    """The summary as plain text for a terminal: the verdict table, the ranking sentence with the evaluation's
    notes, the missing steps."""
    lines = [f"Summary of {summary.run}", ""]
    if summary.rows:
        verdict_width = max(13, *(len(row.shown_verdict) + 1 for row in summary.rows))
        claim_width = max(20, width - 35 - verdict_width)
        lines.append(f"{'verdict':<{verdict_width}} {'number':<26} claim")
        for row in summary.rows:
            claim = row.short if len(row.short) <= claim_width else row.short[: claim_width - 1] + "…"
            lines.append(f"{row.shown_verdict:<{verdict_width}} {row.number:<26} {claim}")
        notes = list(dict.fromkeys(row.stale for row in summary.rows if row.stale))
        if notes:
            lines += ["", "Stale (verdicts not about the run's z-points now):"]
            lines += [f"  {note}" for note in notes]
    else:
        lines.append("No finding has been computed yet.")
    lines += ["", "Samplers: " + summary.ranking_sentence]
    lines += [f"  Note: {note}" for note in summary.evaluation_notes]
    if summary.missing:
        lines += ["", "Missing:"]
        lines += [f"  {step.what}: {step.command}" for step in summary.missing]
    return "\n".join(lines) + "\n"


__all__ = [
    "Artifacts",
    "MissingStep",
    "Ranking",
    "Summary",
    "SummaryRow",
    "read_artifacts",
    "run_summary",
    "sampler_ranking",
    "summary_text",
]
