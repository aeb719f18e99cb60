"""The quality-novelty frontier and the verdict "some sampler reaches the reconstruction ceiling without
copying", computed from evaluation rows with their intervals (synthetic rows: the numbers decide)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from latentatlas.evaluation.frontier import best_operating_points, ceiling_verdict, frontier_lines
from latentatlas.evaluation.score import Score
from latentatlas.evaluation.table import EvaluationRow
from latentatlas.evaluation.verdicts import CEILING_KEY, evaluation_findings
from latentatlas.pipelines.evaluate_figures import write_figures
from latentatlas.report.artifacts import Evaluation
from latentatlas.report.artifacts import EvaluationRow as RecordRow
from latentatlas.report.summary import NOT_MEASURED, Artifacts, finding_rows, run_summary, summary_text


def _row(name: str, kind: str = "sampler", temperature: float = 1.0, **scores: tuple[float, float, float]):
    sampler = name.split(" ")[0] if kind == "sampler" else ""
    options = {"temperature": temperature} if temperature != 1.0 else {}
    return EvaluationRow(name, kind, 100, {k: Score(*v) for k, v in scores.items()}, 1.0, options, 0, sampler)  # type: ignore[arg-type]


REFERENCES = [
    _row("real (held-out)", "reference", fid=(10, 9, 11)),
    _row("reconstruction", "reference", fid=(100, 98, 102), latent_authenticity=(0.55, 0.5, 0.6)),
]
GAUSSIAN = [
    _row("gaussian T=0.7", temperature=0.7, fid=(101, 99, 103), latent_ct=(0.5, -0.5, 1.5),
         latent_authenticity=(0.5, 0.45, 0.56)),
    _row("gaussian", fid=(120, 118, 122), latent_ct=(2.0, 1.0, 3.0), latent_authenticity=(0.6, 0.55, 0.65)),
    _row("gaussian T=0.5", temperature=0.5, fid=(99, 97, 101), latent_ct=(-4.0, -5.0, -3.0),
         latent_authenticity=(0.3, 0.25, 0.35)),
]  # fmt: skip
RESAMPLE = _row("resample", fid=(98, 96, 100), latent_ct=(-9, -10, -8), latent_authenticity=(0.02, 0.0, 0.04))


def test_the_best_operating_point_is_the_best_quality_that_does_not_copy():
    rows = [*REFERENCES, *GAUSSIAN, RESAMPLE]
    best = best_operating_points(rows)
    assert [(p.sampler, p.temperature) for p in best] == [("gaussian", 0.7)]  # T = 0.5 is better but copies
    lines = frontier_lines(rows)
    assert lines[0].startswith("gaussian: T = 0.7 (gaussian T=0.7): FID 101 [99, 103]; not copying (C_T (latent)")
    assert lines[1] == "resample: no operating point without copying (resample: copies)"


@pytest.mark.parametrize(
    ("samplers", "verdict", "evidence"),
    [
        ([*GAUSSIAN, RESAMPLE], "agrees", "gaussian T=0.7 FID 101 [99, 103] within it, not copying"),
        ([GAUSSIAN[2], RESAMPLE], "disagrees", "resample copies (C_T (latent) -9 [-10, -8]"),
        ([GAUSSIAN[1]], "disagrees", "best gaussian FID 120 [118, 122] outside it"),
        ([_row("flow", fid=(100, 97, 103))], "undecided", "flow FID 100 [97, 103] reaches it, but no copy test"),
    ],
)
def test_the_ceiling_verdict(samplers, verdict, evidence):
    found = ceiling_verdict([*REFERENCES, *samplers])
    assert found is not None and found.verdict == verdict and evidence in found.evidence
    assert "the ceiling: reconstruction FID 100 [98, 102]" in found.evidence
    finding = next(f for f in evaluation_findings([*REFERENCES, *samplers]) if f.key == CEILING_KEY)
    assert finding.verdict == verdict and finding.source == "the expectation"


def test_a_verdict_without_a_quality_score_is_not_measured():
    rows = [*REFERENCES, _row("gaussian", latent_ct=(0.1, -1.0, 1.0))]
    assert ceiling_verdict(rows) is None
    assert CEILING_KEY not in {f.key for f in evaluation_findings(rows)}


def _artifacts(rows: list[EvaluationRow], tmp_path: Path) -> Artifacts:
    records = [row.record() for row in rows]
    read = [RecordRow(r["name"], r["kind"], r.get("sampler"), r["options"], r["n"], r["seed"], r) for r in records]
    evaluation = Evaluation(read, {}, [], evaluation_findings(rows), None)
    return Artifacts(run=tmp_path, evaluation=evaluation)


def test_the_summary_shows_the_verdict_with_its_number_or_not_measured(tmp_path):
    summary = run_summary(_artifacts([*REFERENCES, *GAUSSIAN, RESAMPLE], tmp_path))
    row = next(r for r in summary.rows if r.key == CEILING_KEY)
    assert (row.verdict, row.number, row.number_label) == ("agrees", "101 [99, 103]", "gaussian T=0.7 FID")
    assert "agrees" in summary_text(summary) and "a sampler at the ceiling, not copying" in summary_text(summary)
    missing = finding_rows(_artifacts([*REFERENCES, _row("gaussian", latent_ct=(0.1, -1.0, 1.0))], tmp_path))
    assert [r.verdict for r in missing if r.key == CEILING_KEY] == [NOT_MEASURED]


def test_the_frontier_figure_states_the_best_operating_points(tmp_path):
    figures = write_figures(tmp_path, [*REFERENCES, *GAUSSIAN, RESAMPLE], {})
    frontier = next(f for f in figures if f["file"] == "frontier.png")
    assert (tmp_path / "frontier.png").stat().st_size > 10_000
    assert "at n = 100" in frontier["caption"] and "gaussian: T = 0.7" in frontier["caption"]
    assert "FID against C_T (latent)" in frontier["caption"]
    assert not np.isnan(GAUSSIAN[0].temperature)


def test_the_ranking_counts_a_row_flagged_by_a_copy_test_as_copying():
    from latentatlas.report.ranking import sampler_ranking

    ranking = sampler_ranking([row.record() for row in [*REFERENCES, *GAUSSIAN, RESAMPLE]])
    assert ranking is not None and ranking.metric == "fid"
    assert ranking.names("copies") == ["resample", "gaussian T=0.5"]  # C_T -9 and -4: intervals below 0
    assert ranking.names("ceiling") == ["gaussian T=0.7"] and ranking.best == "gaussian T=0.7"


def test_latent_precision_reaches_the_ceiling_only_with_the_held_out_recall():
    real = _row("real (held-out)", "reference", precision=(0.69, 0.65, 0.73), recall=(0.7, 0.66, 0.74))
    cooled = _row("gaussian T=0.85", temperature=0.85, precision=(0.84, 0.81, 0.87), recall=(0.48, 0.43, 0.53),
                  latent_ct=(-0.07, -0.25, 0.13))  # fmt: skip
    plain = _row("gaussian", precision=(0.37, 0.33, 0.42), recall=(0.72, 0.68, 0.76), latent_ct=(2.9, 2.7, 3.0))
    found = ceiling_verdict([real, cooled, plain])
    assert found is not None and found.verdict == "disagrees"  # cooling buys precision with recall
    assert "with latent recall 0.7 [0.66, 0.74] kept" in found.evidence
    assert [(p.row, p.keeps) for p in best_operating_points([real, cooled, plain])] == [("gaussian", True)]
    kept = _row("gaussian T=0.9", temperature=0.9, precision=(0.7, 0.66, 0.74), recall=(0.68, 0.64, 0.72),
                latent_ct=(0.1, -0.1, 0.3))  # fmt: skip
    assert ceiling_verdict([real, cooled, plain, kept]).verdict == "agrees"  # type: ignore[union-attr]
