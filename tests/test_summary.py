"""The run summary: one row per finding with the JSON's verdict, the ranking sentence from the rows'
intervals, what is missing, and the `summary` command (text, --json, exit codes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentatlas.cli import main
from latentatlas.evaluation.instruments.cnn_faces import FACES_WITHHELD
from latentatlas.evaluation.table import NO_REAL_IMAGES, NO_REAL_IMAGES_NOTE
from latentatlas.evaluation.verdicts import CEILING_KEY
from latentatlas.plots import image_grid, split_grid
from latentatlas.report.artifacts import Analysis, Attributes, Evaluation, EvaluationRow, Problems, read_evaluation
from latentatlas.report.ranking import sampler_ranking
from latentatlas.report.summary import (
    NOT_MEASURED,
    Artifacts,
    read_artifacts,
    run_summary,
    summary_text,
)
from latentatlas.store import Run

ANALYSIS_FINDINGS = [
    {"key": "origin-position", "claim": "the origin lies at the border", "verdict": "agrees", "evidence": "e1"},
    {"key": "dominant-components", "claim": "a few dominate", "verdict": "disagrees", "evidence": "e2"},
    {"key": "a-new-claim", "claim": "something this report never heard of", "verdict": "mixed", "evidence": "e3"},
]


def finding_records(findings: list[dict]):
    from latentatlas.findings import Finding

    return [Finding.from_dict(f) for f in findings]


def row(name: str, kind: str = "sampler", n: int = 100, **scores: tuple[float, float, float] | float) -> dict:
    record: dict = {"name": name, "kind": kind, "n": n, "seed": 0, "options": {}}
    for key, score in scores.items():
        if isinstance(score, tuple):
            record[key], record[f"{key}_low"], record[f"{key}_high"] = score
        else:
            record[key] = score
    return record


def evaluation(records: list[dict], findings: list[dict] | None = None) -> Evaluation:
    rows = [EvaluationRow(r["name"], r["kind"], None, {}, r["n"], 0, r) for r in records]
    return Evaluation(rows, {}, [], finding_records(findings or []), None, [], None)


def test_one_row_per_finding_with_the_json_verdict_and_its_number(tmp_path):
    data = {"latent_dim": 32, "origin": {"mahalanobis": 53.155}, "dominant": {"components": [{}, {}, {}]}}
    attributes = Attributes(
        data={},
        table=[{"name": "Smiling", "auc": 0.9312}],
        strips=[],
        conditional=[],
        findings=finding_records(
            [{"key": "attributes-linear", "claim": "linear", "verdict": "undecided", "evidence": "auc"}]
        ),
        weights=None,
    )
    gaussian = row("gaussian", precision=(0.5, 0.4, 0.6))
    found = [{"key": "full-covariance-hits", "claim": "gaussian hits", "verdict": "agrees", "evidence": "p"}]
    artifacts = Artifacts(
        run=tmp_path,
        analysis=Analysis(data, [], finding_records(ANALYSIS_FINDINGS), None),
        evaluation=evaluation([row("real (held-out)", "reference", precision=(0.9, 0.85, 0.95)), gaussian], found),
        attributes=attributes,
    )
    rows = run_summary(artifacts).rows
    measured = [r for r in rows if r.verdict != NOT_MEASURED]
    expected = [*ANALYSIS_FINDINGS, *found, {"key": "attributes-linear", "verdict": "undecided"}]
    assert [(r.key, r.verdict) for r in measured] == [(f["key"], f["verdict"]) for f in expected]
    numbers = {r.key: r.number for r in measured}
    assert numbers == {
        "origin-position": "53.16",
        "dominant-components": "3 of 32",
        "a-new-claim": "—",
        "full-covariance-hits": "0.5 [0.4, 0.6]",
        "attributes-linear": "0.9312",
    }
    anchors = {r.key: r.anchor for r in measured}
    assert anchors["origin-position"] == "claim-origin-position" and anchors["a-new-claim"] == "further"
    assert anchors["full-covariance-hits"] == "samplers" and anchors["attributes-linear"] == "claim-attributes-linear"
    # the story's other claims that this analysis did not decide are listed, not measured
    unmeasured = {r.key for r in rows if r.verdict == NOT_MEASURED}
    assert "gaussian-marginals" in unmeasured and "origin-position" not in unmeasured
    # ... and the evaluation's own question, when its rows have no quality score with an interval
    assert all(r.source == "analysis" for r in rows if r.verdict == NOT_MEASURED and r.key != CEILING_KEY)
    assert [r.source for r in rows if r.key == CEILING_KEY] == ["evaluation"] and CEILING_KEY in unmeasured


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, []),
        ({FACES_WITHHELD: "the run's images are 16x16"}, ["Face scores withheld: the run's images are 16x16."]),
        ({"real_images": NO_REAL_IMAGES}, [NO_REAL_IMAGES_NOTE]),
    ],
)
def test_the_summary_says_the_evaluations_notes(tmp_path, settings, expected):
    table = evaluation([*REFERENCES, row("gaussian", fid=(50.0, 48.0, 52.0))])
    table.settings = settings
    summary = run_summary(Artifacts(tmp_path, evaluation=table))
    assert summary.evaluation_notes == expected
    printed = summary_text(summary)
    assert [line for line in printed.splitlines() if line.startswith("  Note: ")] == [f"  Note: {n}" for n in expected]
    assert json.loads(json.dumps(summary.to_dict()))["evaluation_notes"] == expected


def test_a_skipped_part_says_why_it_was_not_measured(tmp_path):
    data = {"regions": {"skipped": "needs more than 21 points, got 12"}}
    summary = run_summary(Artifacts(tmp_path, analysis=Analysis(data, [], [], None)))
    regions = next(r for r in summary.rows if r.key == "one-compact-region")
    assert regions.verdict == NOT_MEASURED and regions.evidence == "skipped: needs more than 21 points, got 12"


REFERENCES = [
    row("real (held-out)", "reference", coverage=(0.9, 0.85, 0.95), latent_copy_share=(0.02, 0.01, 0.03)),
    row("reconstruction", "reference", fid=(10.0, 9.0, 11.0)),
]


def test_the_ranking_sentence_follows_the_intervals():
    records = [
        *REFERENCES,
        row("gaussian", fid=(11.5, 10.5, 12.5), coverage=(0.8, 0.75, 0.85), latent_copy_share=(0.02, 0.01, 0.04)),
        row("kde", fid=(10.2, 9.5, 10.9), coverage=(0.9, 0.85, 0.95), latent_copy_share=(0.4, 0.35, 0.45)),
        row("uniform-box", fid=(80.0, 75.0, 85.0), coverage=(0.1, 0.05, 0.15)),
        row("diagonal-gaussian", fid=(20.0, 18.0, 22.0), coverage=(0.7, 0.6, 0.8)),
        row("gaussian", n=50, fid=(99.0, 98.0, 100.0)),  # another n: left out
    ]
    ranking = sampler_ranking(records)
    assert ranking is not None and ranking.n == 100 and ranking.metric == "fid"
    assert [s.name for s in ranking.samplers] == ["kde", "gaussian", "diagonal-gaussian", "uniform-box"]
    assert ranking.names("ceiling") == ["gaussian"]  # 10.5-12.5 overlaps 9-11
    assert ranking.names("copies") == ["kde"] and ranking.names("misses") == ["uniform-box"]
    assert ranking.names("between") == ["diagonal-gaussian"]  # 18-22 is disjoint from 9-11
    assert ranking.best == "gaussian"
    summary = run_summary(Artifacts(Path("run"), evaluation=evaluation(records)))
    assert summary.ranking_sentence == (
        "At n = 100, by FID: gaussian is indistinguishable from the reconstruction ceiling (95 % intervals overlap); "
        "kde copies training points (copy share above the held-out level, nearer to them than half the held-out "
        "distance, C_T significantly below 0 or authenticity below the held-out level); uniform-box misses the data "
        "(coverage or face rate below half the held-out level); best: gaussian."
    )


def test_no_sampler_at_the_ceiling_when_no_interval_overlaps():
    records = [*REFERENCES, row("gaussian", fid=(13.0, 12.0, 14.0)), row("pca", fid=(15.0, 14.0, 16.0))]
    ranking = sampler_ranking(records)
    assert ranking is not None and ranking.names("ceiling") == [] and ranking.best == "gaussian"
    sentence = run_summary(Artifacts(Path("run"), evaluation=evaluation(records))).ranking_sentence
    assert sentence == "At n = 100, by FID: no sampler reaches the reconstruction ceiling; best: gaussian."


@pytest.mark.parametrize("ratio, copies", [((0.26, 0.2, 0.3), True), ((0.6, 0.45, 0.7), False), (0.4, True)])
def test_without_a_held_out_copy_share_a_copy_ratio_below_half_copies(ratio, copies):
    records = [*REFERENCES[1:], row("resample", fid=(10.0, 9.5, 10.5), latent_copy_ratio=ratio)]
    ranking = sampler_ranking(records)
    assert ranking is not None and ranking.names("copies") == (["resample"] if copies else [])
    assert ranking.best == (None if copies else "resample")


def test_latent_scores_alone_rank_against_the_held_out_points():
    records = [
        row("real (held-out)", "reference", precision=(0.8, 0.75, 0.85)),
        row("reconstruction", "reference", face_rate=0.9),
        row("gaussian", precision=(0.78, 0.7, 0.82)),
        row("uniform-box", precision=(0.0, 0.0, 0.01)),
    ]
    ranking = sampler_ranking(records)
    assert ranking is not None and ranking.metric == "precision" and ranking.ceiling_row == "real (held-out)"
    assert ranking.names("ceiling") == ["gaussian"] and ranking.names("between") == ["uniform-box"]
    assert sampler_ranking([REFERENCES[0]]) is None


def test_nothing_computed_lists_every_step_with_its_command(tmp_path):
    summary = run_summary(Artifacts(tmp_path))
    assert summary.rows == [] and summary.ranking is None
    assert summary.ranking_sentence == f"No sampler has been evaluated yet: run `latentatlas evaluate {tmp_path}`."
    assert [(m.what, m.command) for m in summary.missing] == [
        ("the trained model", f"latentatlas train --data SOURCE --out {tmp_path}"),
        ("the z-point store", f"latentatlas encode {tmp_path}"),
        ("the reconstructions", f"latentatlas reconstruct {tmp_path}"),
        ("the analysis of the bulk", f"latentatlas analyze {tmp_path}"),
        ("sampler grids", f"latentatlas sample {tmp_path} --sampler gaussian"),
        ("the evaluation of the samplers", f"latentatlas evaluate {tmp_path}"),
        ("the attribute probes", f"latentatlas attributes {tmp_path}"),
    ]
    text = summary_text(summary)
    assert "No finding has been computed yet." in text and f"  the z-point store: latentatlas encode {tmp_path}" in text


def run_folder(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    (path / "evaluation").mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model": {"image_size": 8}}))
    records = [*REFERENCES, row("gaussian", fid=(11.5, 10.5, 12.5))]
    found = [{"key": "full-covariance-hits", "claim": "gaussian hits", "verdict": "undecided", "evidence": "p"}]
    (path / "evaluation" / "evaluation.json").write_text(json.dumps({"rows": records, "findings": found}))
    return path


def test_read_artifacts_reads_what_the_commands_wrote(tmp_path):
    path = run_folder(tmp_path)
    artifacts = read_artifacts(Run(path))
    assert artifacts.analysis is None and artifacts.evaluation is not None and not artifacts.encoded
    read = read_evaluation(path / "evaluation", Problems())
    assert read is not None and [r.name for r in artifacts.evaluation.rows] == [r.name for r in read.rows]


def test_cli_summary_text_json_and_a_missing_folder(tmp_path, capsys):
    path = run_folder(tmp_path)
    assert main(["summary", str(path)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"Summary of {path}\n")
    assert "undecided     10.5" not in text and "undecided" in text
    assert "Samplers: At n = 100, by FID: gaussian is indistinguishable" in text
    assert f"the analysis of the bulk: latentatlas analyze {path}" in text

    assert main(["summary", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)  # nothing but the JSON on stdout
    assert [(r["key"], r["verdict"]) for r in data["rows"]] == [
        ("full-covariance-hits", "undecided"),
        (CEILING_KEY, "not measured"),  # its rows hold no quality score with an interval
    ]
    assert data["ranking"]["groups"]["ceiling"] == ["gaussian"] and data["ranking"]["best"] == "gaussian"
    assert data["ranking"]["ceiling"] == {"value": 10.0, "low": 9.0, "high": 11.0}

    assert main(["summary", str(tmp_path / "absent")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "does not exist" in captured.err


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_split_grid_gives_back_the_tiles(scale):
    images = np.random.default_rng(0).integers(0, 255, (7, 6, 6, 3), dtype=np.uint8)
    picture = Image.fromarray(image_grid(images, ncols=3))
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    tiles = split_grid(np.asarray(picture), 6)
    assert tiles.shape == (3, 3, 6, 6, 3)
    np.testing.assert_array_equal(tiles.reshape(-1, 6, 6, 3)[:7], images)
    assert (tiles[2, 1:] == 255).all()  # the gutter-coloured empty places


def test_the_summary_images_are_cut_from_the_evaluation_previews_and_labelled(tmp_path):
    from latentatlas.report.summary_section import image_rows

    path = run_folder(tmp_path)
    rng = np.random.default_rng(1)
    rows = {name: rng.integers(0, 250, (8, 8, 8, 3), dtype=np.uint8) for name in ("real", "recon", "gaussian")}
    picture = Image.fromarray(image_grid(np.concatenate(list(rows.values())), ncols=8))
    picture.resize((picture.width * 2, picture.height * 2), Image.Resampling.NEAREST).save(
        path / "evaluation" / "samples.png"
    )
    data = json.loads((path / "evaluation" / "evaluation.json").read_text())
    caption = "The first 8 images of each row, one row each, top to bottom: real (held-out), reconstruction, gaussian"
    data["figures"] = [{"file": "samples.png", "caption": caption}]
    (path / "evaluation" / "evaluation.json").write_text(json.dumps(data))
    run = Run(path)
    shown = image_rows(run, read_artifacts(run), "gaussian", Problems())
    assert [label for label, _ in shown] == ["real (held-out)", "reconstruction", "gaussian (best sampler)"]
    for (_, images), expected in zip(shown, rows.values()):
        np.testing.assert_array_equal(images, expected)
    assert [label for label, _ in image_rows(run, read_artifacts(run), None, Problems())] == [
        "real (held-out)",
        "reconstruction",
    ]


def test_the_summary_images_come_from_previews_npz_before_samples_png(tmp_path):
    from latentatlas.report.summary_section import image_rows

    path = run_folder(tmp_path)
    rng = np.random.default_rng(2)
    arrays = {name: rng.integers(0, 250, (5, 8, 8, 3), dtype=np.uint8) for name in ("real (held-out)", "gaussian")}
    np.savez(path / "evaluation" / "previews.npz", **arrays)  # type: ignore[arg-type]
    data = json.loads((path / "evaluation" / "evaluation.json").read_text())
    data["files"] = [{"file": "previews.npz", "caption": "first images"}]
    data["also_evaluated_at_n"] = [400, 50, "junk"]
    (path / "evaluation" / "evaluation.json").write_text(json.dumps(data))
    run = Run(path)
    artifacts = read_artifacts(run)
    assert artifacts.evaluation is not None and artifacts.evaluation.other_n == [50, 400]
    shown = dict(image_rows(run, artifacts, "gaussian", Problems()))
    assert list(shown) == ["real (held-out)", "gaussian (best sampler)"]
    np.testing.assert_array_equal(shown["gaussian (best sampler)"], arrays["gaussian"])

    np.savez(path / "evaluation" / "previews.npz", gaussian=np.zeros((3, 9, 9, 3), np.uint8))  # wrong tile size
    assert image_rows(run, read_artifacts(run), "gaussian", Problems()) == []


def test_the_report_names_the_other_n_it_does_not_show(tmp_path):
    from latentatlas.report.samples import sampler_sections

    path = run_folder(tmp_path)
    data = json.loads((path / "evaluation" / "evaluation.json").read_text())
    data["also_evaluated_at_n"] = [300]
    (path / "evaluation" / "evaluation.json").write_text(json.dumps(data))
    texts = [
        getattr(block, "text", "") for blocks in sampler_sections(Run(path), Problems()).values() for block in blocks
    ]
    assert any(text.startswith("Also evaluated at n = 300: kept, not shown") for text in texts)


def test_real_images_and_their_own_reconstructions_come_from_reconstructions_png(tmp_path):
    from latentatlas.report.summary_section import image_rows

    path = run_folder(tmp_path)
    rng = np.random.default_rng(3)
    pairs = rng.integers(0, 250, (2, 8, 8, 8, 3), dtype=np.uint8)  # row 0 real, row 1 their reconstructions
    Image.fromarray(image_grid(pairs.reshape(-1, 8, 8, 3), ncols=8)).save(path / "reconstructions.png")
    previews = {name: rng.integers(0, 250, (8, 8, 8, 3), dtype=np.uint8) for name in ("real (held-out)", "gaussian")}
    np.savez(path / "evaluation" / "previews.npz", **previews)  # type: ignore[arg-type]
    data = json.loads((path / "evaluation" / "evaluation.json").read_text())
    data["files"] = [{"file": "previews.npz", "caption": "first images"}]
    (path / "evaluation" / "evaluation.json").write_text(json.dumps(data))
    run = Run(path)
    shown = dict(image_rows(run, read_artifacts(run), "gaussian", Problems()))
    np.testing.assert_array_equal(shown["real (held-out)"], pairs[0])
    np.testing.assert_array_equal(shown["reconstruction"], pairs[1])
    np.testing.assert_array_equal(shown["gaussian (best sampler)"], previews["gaussian"])
