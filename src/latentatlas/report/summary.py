"""What a run shows, in one place: every finding's verdict, the sampler ranking in one sentence, what is missing.

`run_summary(artifacts)` is the one pure function behind the report's summary section, the terminal table
of `latentatlas report` / `latentatlas summary` and `latentatlas summary --json`: it takes the files the
other commands wrote, already read (`read_artifacts`), and returns a `Summary`.

The ranking is computed from the evaluation's rows at one n (the largest): a sampler is at the ceiling when
its 95 % interval on the quality score overlaps the reconstruction row's (the best a decoder can do), it
copies when its copy share lies above the held-out row's, and it misses when its coverage or face rate lies
below half of the held-out row's.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from latentatlas.evaluation.table import METRICS, REAL_ROW, RECONSTRUCTION_ROW
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
from latentatlas.store import Run

NOT_MEASURED = "not measured"
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
    "attributes-linear": "attributes linearly encoded",
    "attributes-conditional": "conditional samples keep it",
}
SHORT_LENGTH = 48
# The quality score the ranking is judged by: the first one the reconstruction row and a sampler both have.
QUALITY = ("fd_face", "fid_infinity", "fid", "kid", "precision")
COPY_SCORES = ("face_copy_share", "latent_copy_share")
# Without a held-out copy share, a copy ratio (nearest-training distance, samples / held-out; 1 by
# construction for held-out points) whose whole interval lies below this counts as copying.
COPY_RATIOS = ("face_copy_ratio", "latent_copy_ratio")
COPY_RATIO = 0.5
MISS_SCORES = ("coverage", "cnn_face_rate", "face_rate")
MISS_FRACTION = 0.5  # "misses": the whole interval below half of the held-out row's value
HIGHER_IS_BETTER = {m.key: m.higher_is_better for m in METRICS}
LABELS = {
    "fd_face": "FD-face",
    "fid_infinity": "FID∞",
    "fid": "FID",
    "kid": "KID",
    "precision": "latent precision",
    "coverage": "latent coverage",
    "cnn_face_rate": "CNN face rate",
    "face_rate": "face rate",
    "face_copy_share": "face copy share",
    "latent_copy_share": "latent copy share",
}


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


@dataclass(frozen=True)
class MissingStep:
    what: str
    command: str


@dataclass(frozen=True)
class Interval:
    value: float
    low: float = math.nan
    high: float = math.nan

    @property
    def has_interval(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def text(self) -> str:
        if not self.has_interval:
            return format_number(self.value)
        return f"{format_number(self.value)} [{format_number(self.low)}, {format_number(self.high)}]"


@dataclass(frozen=True)
class RankedSampler:
    name: str
    quality: Interval | None
    group: str  # "ceiling" | "copies" | "misses" | "between"


@dataclass(frozen=True)
class Ranking:
    """The evaluation's samplers at one n, judged against the reference rows."""

    n: int
    metric: str  # the quality score's key
    samplers: list[RankedSampler]  # best first
    ceiling: Interval | None  # the reconstruction row's quality (or the held-out row's, see `ceiling_row`)
    ceiling_row: str
    real: Interval | None
    best: str | None  # the best sampler that neither copies nor misses

    def names(self, group: str) -> list[str]:
        return [s.name for s in self.samplers if s.group == group]


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


@dataclass
class Summary:
    run: str
    rows: list[SummaryRow]
    ranking_sentence: str
    ranking: Ranking | None
    missing: list[MissingStep]

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
    return Artifacts(
        run=run.path,
        analysis=read_analysis(run.path / "analysis", problems),
        evaluation=read_evaluation(run.path / "evaluation", problems),
        attributes=read_attributes(run.path / "attributes", problems),
        ranking_lines=[line for line in evaluation_json.get("ranking", []) if isinstance(line, str)]
        if isinstance(evaluation_json.get("ranking"), list)
        else [],
        trained=(run.path / "config.json").is_file() and (run.path / "train_state.json").is_file(),
        encoded=run.zpoints_file("zpoints.json").is_file(),
        reconstructions=(run.path / "reconstructions.png").is_file(),
        samples=sum(1 for p in samples.glob("*/info.json")) if samples.is_dir() else 0,
    )


# ----------------------------------------------------------------------------- the number behind each finding


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _analysis_number(key: str, data: dict) -> tuple[str, str] | None:
    """(label, number) of an analysis finding, read from the analysis.json field its verdict was computed from."""
    origin, core, regions = (
        as_dict(data.get("origin")),
        as_dict(data.get("core_normality")),
        as_dict(data.get("regions")),
    )
    if key in ("origin-position", "bulk-off-centre") and _number(origin.get("mahalanobis")) is not None:
        label = "origin's Mahalanobis distance" if key == "origin-position" else "centre to origin (Mahalanobis)"
        return label, format_number(origin["mahalanobis"])
    if key == "dominant-components" and "dominant" in data and _number(data.get("latent_dim")) is not None:
        count = len(as_records(as_dict(data["dominant"]).get("components")))
        return "dominant components", f"{count} of {int(data['latent_dim'])}"
    if key == "gaussian-marginals":
        ks = sorted(v for r in as_records(data.get("components")) if (v := _number(r.get("ks_statistic"))) is not None)
        if ks:
            return "median KS distance", format_number(statistics.median(ks))
    if key == "strong-correlations" and _number(as_dict(data.get("correlations")).get("max_abs_r")) is not None:
        return "strongest |r|", format_number(data["correlations"]["max_abs_r"])
    if key == "normal-core" and _number(core.get("core_fraction")) is not None:
        return "share within 3σ of the core", format_number(core["core_fraction"])
    if key == "henze-zirkler-power" and _number(as_dict(core.get("hz_power_check")).get("p")) is not None:
        return "Henze-Zirkler p on Student-t(3)", format_number(core["hz_power_check"]["p"])
    if key == "one-compact-region" and _number(regions.get("n_regions")) is not None:
        return "regions (BIC)", format_number(regions["n_regions"])
    return None


def _score(record: dict, key: str) -> Interval | None:
    value = _number(record.get(key))
    if value is None or not math.isfinite(value):
        return None
    low, high = _number(record.get(f"{key}_low")), _number(record.get(f"{key}_high"))
    return Interval(value, math.nan if low is None else low, math.nan if high is None else high)


EVALUATION_NUMBERS = {  # finding key -> the row whose latent precision decided it
    "uniform-box-misses": "uniform-box",
    "independent-components-miss": "diagonal-gaussian",
    "full-covariance-hits": "gaussian",
}


def _evaluation_number(key: str, records: list[dict]) -> tuple[str, str] | None:
    prefix = EVALUATION_NUMBERS.get(key)
    rows = [r for r in records if prefix is not None and str(r.get("name", "")).startswith(prefix)]
    rows.sort(key=lambda r: -(_number(r.get("n")) or 0))
    score = _score(rows[0], "precision") if rows else None
    return (f"{rows[0]['name']} precision", score.text()) if score is not None else None


def _attributes_number(key: str, attributes: Attributes) -> tuple[str, str] | None:
    if key == LINEAR and attributes.table and _number(attributes.table[0].get("auc")) is not None:
        return f"best probe AUC ({attributes.table[0].get('name')})", format_number(attributes.table[0]["auc"])
    shares = [s for r in attributes.conditional if (s := _number(r.get("share"))) is not None]
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


def _row(finding: Finding, source: str, anchor: str, number: tuple[str, str] | None) -> SummaryRow:
    label, value = number if number is not None else ("", "—")
    short = SHORT_CLAIMS.get(finding.key) or _cut(finding.claim)
    return SummaryRow(
        finding.key, finding.claim, short, finding.verdict, value, label, finding.evidence, source, anchor
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
            _row(f, "analysis", _claim_anchor(f.key), _analysis_number(f.key, analysis.data)) for f in analysis.findings
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
                        )
                    )
    if evaluation is not None:
        records = [row.record for row in evaluation.rows]
        for f in evaluation.findings:
            anchor = UNIFORM.anchor if "uniform" in f.key else SAMPLERS.anchor
            rows.append(_row(f, "evaluation", anchor, _evaluation_number(f.key, records)))
    if attributes is not None:
        for f in attributes.findings:
            anchor = f"claim-{f.key}" if f.key in (LINEAR, CONDITIONAL) else ATTRIBUTES.anchor
            rows.append(_row(f, "attributes", anchor, _attributes_number(f.key, attributes)))
    return rows


# ----------------------------------------------------------------------------- the sampler ranking


def _overlap(a: Interval, b: Interval) -> bool:
    return a.has_interval and b.has_interval and a.low <= b.high and b.low <= a.high


def _better(a: Interval, b: Interval, key: str) -> bool:
    """`a` lies entirely on the better side of `b`'s interval (or value); a key without a direction (a copy
    share) counts higher as "better", i.e. more copying."""
    higher = HIGHER_IS_BETTER.get(key) is not False
    edge = (b.high if b.has_interval else b.value) if higher else (b.low if b.has_interval else b.value)
    worst = (a.low if a.has_interval else a.value) if higher else (a.high if a.has_interval else a.value)
    return worst > edge if higher else worst < edge


def sampler_ranking(records: list[dict]) -> Ranking | None:
    """The samplers of the evaluation rows (flat records) at the largest n, grouped and sorted; None without
    sampler rows."""
    samplers = [r for r in records if r.get("kind") == "sampler" and _number(r.get("n")) is not None]
    if not samplers:
        return None
    n = int(max(_number(r["n"]) or 0 for r in samplers))
    samplers = [r for r in samplers if _number(r["n"]) == n]
    references = {str(r.get("name")): r for r in records if r.get("kind") == "reference"}
    same_n = {str(r.get("name")): r for r in records if r.get("kind") == "reference" and _number(r.get("n")) == n}
    references.update(same_n)
    real = references.get(REAL_ROW, {})
    metric, ceiling_row = "", RECONSTRUCTION_ROW
    for key in QUALITY:
        if any(_score(r, key) is not None for r in samplers):
            metric = key
            break
    ceiling = _score(references.get(RECONSTRUCTION_ROW, {}), metric) if metric else None
    if ceiling is None and metric:  # a latent score: the held-out points themselves are the ceiling
        ceiling, ceiling_row = _score(real, metric), REAL_ROW
    ranked = []
    for record in samplers:
        name = str(record.get("name"))
        quality = _score(record, metric) if metric else None
        group = "between"
        miss_key = next((k for k in MISS_SCORES if _score(record, k) and _score(real, k)), None)
        if _copies(record, real):
            group = "copies"
        elif miss_key is not None and _misses(_score(record, miss_key), _score(real, miss_key)):
            group = "misses"
        elif (
            quality is not None
            and ceiling is not None
            and (_overlap(quality, ceiling) or _better(quality, ceiling, metric))
        ):
            group = "ceiling"
        ranked.append(RankedSampler(name, quality, group))
    higher = HIGHER_IS_BETTER.get(metric) is not False
    ranked.sort(key=lambda s: math.inf if s.quality is None else (-s.quality.value if higher else s.quality.value))
    best = next((s.name for s in ranked if s.group in ("ceiling", "between") and s.quality is not None), None)
    return Ranking(n, metric, ranked, ceiling, ceiling_row, _score(real, metric) if metric else None, best)


def _copies(record: dict, real: dict) -> bool:
    key = next((k for k in COPY_SCORES if _score(record, k) and _score(real, k)), None)
    if key is not None:
        copy, level = _score(record, key), _score(real, key)
        return copy is not None and level is not None and _better(copy, level, "copy share")
    ratio = next((s for k in COPY_RATIOS if (s := _score(record, k)) is not None), None)
    return ratio is not None and (ratio.high if ratio.has_interval else ratio.value) < COPY_RATIO


def _misses(score: Interval | None, real: Interval | None) -> bool:
    if score is None or real is None:
        return False
    top = score.high if score.has_interval else score.value
    return top < MISS_FRACTION * real.value


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def ranking_sentence(ranking: Ranking | None, run: Path) -> str:
    if ranking is None:
        return f"No sampler has been evaluated yet: run `latentatlas evaluate {run}`."
    if not ranking.metric:
        return f"The evaluation at n = {ranking.n} has no quality score with which to rank its samplers."
    label = LABELS.get(ranking.metric, ranking.metric)
    parts = []
    ceiling = ranking.names("ceiling")
    reference = "the reconstruction ceiling" if ranking.ceiling_row == RECONSTRUCTION_ROW else "the held-out data"
    if ceiling:
        verb = "is" if len(ceiling) == 1 else "are"
        parts.append(f"{_names(ceiling)} {verb} indistinguishable from {reference} (95 % intervals overlap)")
    else:
        parts.append(f"no sampler reaches {reference}")
    copies, misses = ranking.names("copies"), ranking.names("misses")
    if copies:
        parts.append(
            f"{_names(copies)} {'copies' if len(copies) == 1 else 'copy'} training points "
            "(copy share above the held-out level, or nearer to them than half the held-out distance)"
        )
    if misses:
        parts.append(
            f"{_names(misses)} {'misses' if len(misses) == 1 else 'miss'} the data "
            "(coverage or face rate below half the held-out level)"
        )
    best = f"; best: {ranking.best}" if ranking.best else ""
    return f"At n = {ranking.n}, by {label}: " + "; ".join(parts) + best + "."


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
    return Summary(
        run=str(artifacts.run),
        rows=finding_rows(artifacts),
        ranking_sentence=ranking_sentence(ranking, artifacts.run),
        ranking=ranking,
        missing=missing_steps(artifacts),
    )


def summary_text(summary: Summary, width: int = 100) -> str:
    """The summary as plain text for a terminal: the verdict table, the ranking sentence, the missing steps."""
    lines = [f"Summary of {summary.run}", ""]
    if summary.rows:
        claim_width = max(20, width - 48)
        lines.append(f"{'verdict':<13} {'number':<26} claim")
        for row in summary.rows:
            claim = row.short if len(row.short) <= claim_width else row.short[: claim_width - 1] + "…"
            lines.append(f"{row.verdict:<13} {row.number:<26} {claim}")
    else:
        lines.append("No finding has been computed yet.")
    lines += ["", "Samplers: " + summary.ranking_sentence]
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
