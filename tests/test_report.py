"""report.html: self-contained, in the seed's order, every figure embedded with its caption, all text escaped."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil

import numpy as np
import pytest
from markupsafe import escape
from PIL import Image

from latentatlas.cli import main
from latentatlas.errors import LatentAtlasError
from latentatlas.findings import Finding
from latentatlas.pipelines.analyze import analyze_run
from latentatlas.report import SECTIONS, build_report, write_report
from latentatlas.report.analysis_sections import CLAIMS, finding_keys
from latentatlas.store import Run


def png(colour: tuple[int, int, int], size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def embedded(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def section_of(text: str, fragment: str) -> str:
    """The anchor of the story section whose part of the page holds `fragment` (after the summary, which
    repeats the verdicts and commands at the top)."""
    position = text.index(fragment, text.index("<nav>"))
    starts = {spec.anchor: text.find(f'<section id="{spec.anchor}">') for spec in SECTIONS}
    return max(((start, anchor) for anchor, start in starts.items() if 0 <= start < position))[1]


def anchors(text: str) -> list[str]:
    """The sections of the page, in the order shown."""
    return re.findall(r'<section id="([a-z-]+)"><h2>', text)


def write_artifacts(run: Run) -> dict[str, bytes]:
    """Hand-made outputs of analyze / sample / evaluate / path, with known figures and numbers."""
    images = {
        name: png(colour)
        for name, colour in (
            ("hist", (255, 0, 0)),
            ("radii", (0, 255, 0)),
            ("ellipse", (0, 0, 255)),
            ("u", (9, 9, 9)),
            ("g", (7, 7, 7)),
            ("p", (5, 5, 5)),
            ("odd", (3, 3, 3)),
        )
    }
    analysis = run.path / "analysis"
    analysis.mkdir()
    for file, key in (
        ("histograms.png", "hist"),
        ("radii.png", "radii"),
        ("projections.png", "ellipse"),
        ("new_view.png", "odd"),
    ):
        (analysis / file).write_bytes(images[key])
    (analysis / "analysis.json").write_text(
        json.dumps(
            {
                "schema": "latentatlas.analysis/1",
                "n_points": 300,
                "latent_dim": 16,
                "bulk": {"centre_norm": 2.345678, "condition_number": 1664.0},
                "dominant": {
                    "rule": {"offset_k": 1.0},
                    "components": [{"index": 7, "mean": -0.73, "std": 0.22, "rms": 0.77}],
                },
                "correlations": {
                    "strongest": [{"pair": [0, 3], "r": -0.9806}],
                    "mean_abs_r": 0.7277,
                    "max_abs_r": 0.9806,
                },
                "planes": [
                    {
                        "plane": [0, 3],
                        "source": "correlation",
                        "r": -0.98,
                        "ellipses": [
                            {"confidence": 0.9, "centre": [0, 0], "half_axes": [0.68, 0.067], "angle_deg": -44.93}
                        ],
                    }
                ],
                "radii": {"data": {"mean": 2.11}, "uniform": [{"b": 1.5, "theory_mean": 3.442}], "b_match": 0.9197},
                "origin": {"mahalanobis": 19.07, "percentile": 96.5},
                "slices": [{"plane": [0, 3], "b": 1.5, "count": 2, "fraction": 0.0004}],
                "brand_new_number": 42.125,
                "figures": [
                    {"file": "histograms.png", "caption": "Histograms of the components <b>bold</b> & co"},
                    {"file": "radii.png", "caption": "Radii against uniform vectors"},
                    {"file": "projections.png", "caption": "Projections with confidence ellipses"},
                    {"file": "new_view.png", "caption": "A view this report has never heard of"},
                    {"file": "../config.json", "caption": "escaping the folder"},
                    {"file": "absent.png", "caption": "a figure that was never written"},
                ],
            }
        )
    )
    for folder, sampler, key in (("uniform-box-seed0", "uniform-box", "u"), ("gaussian-seed0", "gaussian", "g")):
        (run.path / "samples" / folder).mkdir(parents=True)
        (run.path / "samples" / folder / "grid.png").write_bytes(images[key])
        (run.path / "samples" / folder / "info.json").write_text(
            json.dumps(
                {
                    "sampler": sampler,
                    "n": 16,
                    "seed": 0,
                    "options": {"b": "matched"} if sampler == "uniform-box" else {},
                    "figures": [{"file": "grid.png", "caption": f"16 images decoded from {sampler} latent vectors"}],
                }
            )
        )
    (run.path / "evaluation").mkdir()
    (run.path / "evaluation" / "evaluation.json").write_text(
        json.dumps(
            {
                "settings": {"n": 60, "k": 5},
                "rows": [
                    {"name": "real (held-out)", "kind": "reference", "precision": 1.0, "face_rate": 0.9667},
                    {"name": "uniform-box", "kind": "sampler", "precision": 0.0, "face_rate": 0.01667},
                    {"name": "gaussian", "kind": "sampler", "precision": 0.95, "face_rate": 0.8125},
                ],
                "figures": [],
            }
        )
    )
    (run.path / "paths" / "plane-0-3").mkdir(parents=True)
    (run.path / "paths" / "plane-0-3" / "grid.png").write_bytes(images["p"])
    (run.path / "paths" / "plane-0-3" / "info.json").write_text(
        json.dumps(
            {
                "kind": "plane",
                "steps": 6,
                "mahalanobis": [26.0, 15.6, 5.2, 5.2, 15.6, 26.0],
                "figures": [
                    {"file": "grid.png", "caption": "6 images along a path through the centre in plane (0, 3)"}
                ],
            }
        )
    )
    return images


def test_a_trained_run_alone_gives_section_one_and_the_missing_commands(tiny_run_copy):
    path = write_report(tiny_run_copy, umap=False)
    assert path == tiny_run_copy.path / "report.html"
    text = path.read_text(encoding="utf-8")
    assert anchors(text) == [spec.anchor for spec in SECTIONS if spec.anchor != "sweep"]  # the series' order
    titles = re.findall(r"<h2>(\d+)\. ", text)
    assert titles == [str(n) for n in range(1, len(titles) + 1)]  # numbered as shown
    assert text.count('src="data:image/png;base64,') == 1  # the training curves, drawn from history.csv
    assert "Training and validation loss per epoch (3 epochs" in text
    assert '"synthetic-faces"' not in text and "synthetic-faces" in text  # config values, as text
    for command in (
        "latentatlas reconstruct",
        "latentatlas analyze",
        "latentatlas sample",
        "latentatlas evaluate",
        "latentatlas path",
        "latentatlas attributes",
    ):
        assert command in text, command
    assert section_of(text, "latentatlas analyze") == "components"
    assert section_of(text, "--sampler uniform-box") == "uniform-box"
    assert section_of(text, "latentatlas path") == "paths"
    assert section_of(text, "latentatlas attributes") == "attributes"
    assert 'id="sweep"' not in text  # a run outside a sweep folder has no sweep section


def test_the_report_is_self_contained(tiny_run_copy):
    write_artifacts(tiny_run_copy)
    text = build_report(tiny_run_copy, umap=False)
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)  # nothing fetched from the network
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", text)  # no file beside the page either
    assert "<style>" in text


def test_figures_are_embedded_with_captions_in_their_sections(tiny_run_copy):
    images = write_artifacts(tiny_run_copy)
    text = build_report(tiny_run_copy, umap=False)
    for key, section in (
        ("hist", "components"),
        ("radii", "components"),
        ("ellipse", "origin"),  # projections.png: the centre, the origin and the path between them
        ("u", "uniform-box"),
        ("g", "samplers"),
        ("p", "paths"),
        ("odd", "further"),  # a figure no claim concerns
    ):
        assert embedded(images[key]) in text, key
        assert section_of(text, embedded(images[key])) == section, key
    assert "Histograms of the components &lt;b&gt;bold&lt;/b&gt; &amp; co" in text
    assert "<b>bold</b>" not in text
    assert "escaping the folder" not in text and "never written" not in text


def test_key_numbers_are_presented(tiny_run_copy):
    write_artifacts(tiny_run_copy)
    text = build_report(tiny_run_copy, umap=False)
    assert section_of(text, "2.346") == "components"  # bulk centre norm, 4 significant digits
    assert section_of(text, "-0.9806") == "correlations"
    assert section_of(text, "0.9197") == "components"  # b_match, beside the uniform shell
    assert section_of(text, "brand new number") == "further" and "42.12" in text  # unknown field, shown generically
    evaluation = text.index("Evaluation of all samplers")
    assert section_of(text, "Evaluation of all samplers") == "samplers"
    assert text.index("0.8125", evaluation) > evaluation
    assert '<tr class="hl"><td>real (held-out)</td>' in text
    assert "[26, 15.6, 5.2, 5.2, 15.6, 26]" in text  # the path's Mahalanobis distances


def test_corrupt_inputs_are_reported_not_fatal(tiny_run_copy):
    write_artifacts(tiny_run_copy)
    (tiny_run_copy.path / "analysis" / "analysis.json").write_text("{not json")
    (tiny_run_copy.path / "samples" / "gaussian-seed0" / "info.json").write_text("[1, 2]")
    text = build_report(tiny_run_copy, umap=False)
    assert "Files left out" in text
    assert (
        "analysis/analysis.json could not be read" in text and "gaussian-seed0/info.json is not a JSON object" in text
    )
    assert section_of(text, "latentatlas analyze") == "components"


def test_html_special_characters_in_the_run_are_escaped(tiny_run, tmp_path):
    target = tmp_path / "<img src=x onerror=alert(1)>"
    run = Run(shutil.copytree(tiny_run.path, target))
    text = build_report(run, umap=False)
    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text


def test_report_write_is_validated_and_atomic(tiny_run_copy, tmp_path):
    with pytest.raises(LatentAtlasError, match="ending in .html"):
        write_report(tiny_run_copy, tmp_path / "report.pdf")
    assert not (tmp_path / "report.pdf").exists()
    out = write_report(tiny_run_copy, tmp_path / "elsewhere" / "r.html", umap=False)
    assert out.is_file() and sorted(p.name for p in out.parent.iterdir()) == ["r.html"]  # no temporary left over


def test_cli_report(tiny_run_copy, capsys, tmp_path):
    assert main(["report", str(tiny_run_copy.path), "--no-umap"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Summary of {tiny_run_copy.path}\n\nNo finding has been computed yet.\n")
    assert f"Samplers: No sampler has been evaluated yet: run `latentatlas evaluate {tiny_run_copy.path}`." in out
    assert f"  the analysis of the bulk: latentatlas analyze {tiny_run_copy.path}\n" in out
    assert out.rstrip().splitlines()[-1].startswith(f"wrote {tiny_run_copy.path / 'report.html'} (")
    assert (tiny_run_copy.path / "report.html").is_file()
    assert main(["report", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("latentatlas: error:") and "not a latentatlas run folder" in error and "\n" not in error


@pytest.mark.slow
def test_report_of_the_real_pipeline(tiny_analysed_run, tmp_path):
    """The files written by analyze / attributes / sample / path / evaluate end up in the right sections."""
    from latentatlas.pipelines.attributes import attributes_run
    from latentatlas.pipelines.evaluate import evaluate_run
    from latentatlas.pipelines.path import path_run
    from latentatlas.pipelines.sample import sample_run

    run = Run(shutil.copytree(tiny_analysed_run.path, tmp_path / "run"))
    run.path.joinpath("reconstructions.png").write_bytes(png((1, 2, 3)))
    analysis = json.loads((run.path / "analysis" / "analysis.json").read_text())
    attributes_run(run, where=["skin_tone=1"], n=16, strips=1)
    sample_run(run, "uniform-box", n=8)
    sample_run(run, "gaussian", n=8)
    path_run(run, "origin-to-centre", steps=4)
    evaluate_run(run, samplers=["uniform-box", "gaussian"], n=40, fid_scores=False, progress=False)
    text = write_report(run).read_text(encoding="utf-8")
    assert "Files left out" not in text
    assert "is missing" not in text and "are missing" not in text and "is not in analysis" not in text
    analysed = {"components", "correlations", "origin", "normal-core", "regions"}
    for figure in analysis["figures"]:
        data = (run.path / "analysis" / figure["file"]).read_bytes()
        assert text.count(embedded(data)) == 1, figure["file"]  # each figure once, in its claim's section
        assert section_of(text, embedded(data)) in analysed
    assert section_of(text, embedded((run.path / "analysis" / "radii.png").read_bytes())) == "components"
    assert section_of(text, embedded((run.path / "samples" / "uniform-box-seed0" / "grid.png").read_bytes())) == (
        "uniform-box"
    )
    assert section_of(text, embedded((run.path / "samples" / "gaussian-seed0" / "grid.png").read_bytes())) == "samplers"
    assert section_of(text, embedded(next((run.path / "paths").glob("*/projection.png")).read_bytes())) == "paths"
    assert section_of(text, embedded(next((run.path / "attributes").glob("strip-1-*.png")).read_bytes())) == (
        "attributes"
    )
    assert np.isfinite(analysis["origin"]["percentile"])
    assert f"{analysis['radii']['b_match']:.4g}" in text
    assert section_of(text, "A nonlinear map of the bulk (UMAP)") == "regions"
    assert "UMAP of 400 of 400 z-points (seed 0), coloured by face_width" in text


# ----------------------------------------------------------------------------- verdicts come from the run's numbers

SEED_CONCLUSIONS = (  # sentences the report used to print whatever the data said
    "The origin lies at the border of the bulk",
    "a few dominant components",
    "faces appear",
    "Statistical samplers hit it",
    "rarely gives a face",
)


VERDICTS = ("agrees", "partly agrees", "disagrees")


def finding(key: str, claim: str, verdict: str, evidence: str) -> dict:
    return Finding(key=key, claim=claim, verdict=verdict, evidence=evidence).to_dict()  # type: ignore[arg-type]


def write_analysis(run: Run, findings: list[dict], **fields) -> None:
    folder = run.path / "analysis"
    folder.mkdir(exist_ok=True)
    (folder / "analysis.json").write_text(
        json.dumps({"n_points": 300, "latent_dim": 16, "findings": findings, **fields})
    )


def group_of(text: str, folder: str) -> str:
    """The HTML of the sample or path group whose title names `folder`."""
    start = text.index(f"<small>({escape(folder)})</small>")
    ends = [i for i in (text.find("<h3", start), text.find("</section>", start)) if i >= 0]  # groups hold h4s
    return text[start : min(ends)]


def test_no_fixed_seed_conclusion_is_printed(tiny_run_copy):
    write_artifacts(tiny_run_copy)
    text = build_report(tiny_run_copy, umap=False)
    for sentence in SEED_CONCLUSIONS:
        assert sentence.lower() not in text.lower(), sentence


@pytest.mark.parametrize(
    "verdict, percentile, lead",
    [
        ("agrees", 96.5, "This run agrees with the seed"),
        ("disagrees", 23.0, "This run disagrees with the seed"),
    ],
)
def test_the_origin_verdict_follows_the_finding(tiny_run_copy, verdict, percentile, lead):
    claim = "the origin lies at the border of the bulk"
    evidence = f"{percentile:g} % of the z-points are closer to the centre (Mahalanobis percentile)"
    write_analysis(
        tiny_run_copy,
        [finding("origin-position", claim, verdict, evidence)],
        origin={"mahalanobis": 3.1, "percentile": percentile},
    )
    text = build_report(tiny_run_copy, umap=False)
    sentence = escape(f"{lead}: {claim} ({evidence})")
    assert sentence in text and section_of(text, sentence) == "origin"
    assert f'<p class="verdict {verdict}">' in text
    other = "disagrees" if verdict == "agrees" else "agrees"
    assert f"This run {other} with the seed" not in text


@pytest.mark.parametrize(
    "offset, lead",
    [
        (1, "This run agrees with the seed"),  # 1 of 16 components: a few
        (3, "This run partly agrees with the seed"),  # 3 of 16: between a few (10 %) and many (25 %)
        (8, "This run disagrees with the seed"),  # 8 of 16: many
    ],
)
def test_the_dominance_verdict_flips_with_the_number_of_dominant_components(tiny_run_copy, offset, lead):
    # z-points whose first `offset` components sit 5 std away from 0 and whose widths are all alike: the
    # analysis finds exactly those components dominant, and the verdict follows from their count alone
    path = tiny_run_copy.path / "zpoints" / "zpoints.npy"
    z = np.random.default_rng(0).standard_normal(np.load(path).shape).astype(np.float32)
    z[:, :offset] += 5.0
    np.save(path, z)
    run = Run(tiny_run_copy.path)
    analyze_run(run, figures=False, seed=0)
    text = build_report(run, umap=False)
    assert f"Dominant components ({offset})" in text
    found = json.loads((run.path / "analysis" / "analysis.json").read_text())["findings"]
    dominance = next(f for f in found if f["key"] == "dominant-components")
    sentence = escape(f"{lead}: {dominance['claim']} ({dominance['evidence']})")
    assert section_of(text, sentence) == "components"
    assert text.index(sentence) < text.index(f"Dominant components ({offset})")  # the verdict sits under the heading
    assert sum(text.count(f"This run {verdict} with the seed: {dominance['claim']}") for verdict in VERDICTS) == 1


def test_evaluation_findings_go_to_the_sampler_sections(tiny_run_copy):
    write_artifacts(tiny_run_copy)
    path = tiny_run_copy.path / "evaluation" / "evaluation.json"
    evaluation = json.loads(path.read_text())
    evaluation["findings"] = [
        finding(
            "uniform-box-misses", "uniform-box vectors decode to no face", "disagrees", "face rate 0.4 vs real 0.9"
        ),
        finding("statistical-samplers-hit", "fitted samplers decode to faces", "mixed", "2 of 4 samplers reach 0.5"),
        {"key": "broken", "claim": "no verdict"},
    ]
    path.write_text(json.dumps(evaluation))
    text = build_report(tiny_run_copy, umap=False)
    assert section_of(text, "uniform-box vectors decode to no face") == "uniform-box"
    assert section_of(text, "This run partly agrees with the seed: fitted samplers decode to faces") == "samplers"
    assert "a finding in evaluation/evaluation.json lacks key, claim, verdict or evidence" in text


# ----------------------------------------------------------------------------- each score beside its artifact


def write_sample(run: Run, folder: str, sampler: str, options: dict, n: int = 16, seed: int = 0, **extra) -> None:
    path = run.path / "samples" / folder
    path.mkdir(parents=True)
    path.joinpath("grid.png").write_bytes(png((n, seed, 1)))
    info = {"sampler": sampler, "options": options, "n": n, "seed": seed, "subset": "train", "fitted_on": 300}
    info["figures"] = [{"file": "grid.png", "caption": f"{n} images from {folder}"}]
    path.joinpath("info.json").write_text(json.dumps({**info, **extra}))


def write_evaluation(run: Run, rows: list[dict], **extra) -> None:
    (run.path / "evaluation").mkdir(exist_ok=True)
    reference = {"name": "real (held-out)", "kind": "reference", "n": 16, "face_rate": 0.9667}
    data = {"settings": {"n": 16}, "rows": [reference, *rows], **extra}
    (run.path / "evaluation" / "evaluation.json").write_text(json.dumps(data))


def test_scores_are_matched_by_sampler_options_n_and_seed(tiny_run_copy):
    run = tiny_run_copy
    write_sample(run, "uniform-box-seed0", "uniform-box", {"b": "matched"})
    write_sample(run, "uniform-box-b1.5-seed0", "uniform-box", {"b": 1.5})
    write_sample(run, "gaussian-seed0", "gaussian", {})
    write_sample(run, "gaussian-seed7", "gaussian", {}, seed=7)
    write_sample(run, "gaussian-n64-seed0", "gaussian", {}, n=64)
    row = {"kind": "sampler", "n": 16, "seed": 0}
    write_evaluation(
        run,
        [
            {"name": "uniform-box", "sampler": "uniform-box", "options": {}, **row, "face_rate": 0.176},
            {"name": "gaussian", "sampler": "gaussian", "options": {}, **row, "face_rate": 0.8125},
        ],
    )
    text = build_report(run, umap=False)
    matched = group_of(text, "uniform-box-seed0")  # options {} are the defaults, b = matched
    assert "0.176" in matched and "not evaluated" not in matched
    grid = group_of(text, "uniform-box-b1.5-seed0")
    assert "0.176" not in grid and "0.8125" not in grid
    assert f"was not evaluated: run <code>latentatlas evaluate {escape(str(run.path))} --samplers uniform-box" in grid
    assert "-n 16 --seed 0 --b 1.5</code>" in grid
    assert "0.8125" in group_of(text, "gaussian-seed0")
    for folder, wrong in (("gaussian-seed7", "--seed 7"), ("gaussian-n64-seed0", "-n 64")):
        group = group_of(text, folder)
        assert "0.8125" not in group and "was not evaluated" in group and wrong in group
    assert text.count("0.176") == 2  # beside its sample and in the evaluation table, nowhere else


def test_a_row_without_its_identity_is_never_matched(tiny_run_copy):
    write_sample(tiny_run_copy, "gaussian-seed0", "gaussian", {})
    write_evaluation(tiny_run_copy, [{"name": "gaussian", "kind": "sampler", "n": 16, "face_rate": 0.8125}])
    group = group_of(build_report(tiny_run_copy, umap=False), "gaussian-seed0")
    assert "0.8125" not in group and "was not evaluated" in group


@pytest.mark.parametrize("source, shown", [("synthetic-faces", True), ("/data/faces", False)])
def test_synthetic_settings_only_for_the_synthetic_source(tiny_run_copy, source, shown):
    config_path = tiny_run_copy.path / "config.json"
    config = json.loads(config_path.read_text())
    config["data"]["source"] = source
    config_path.write_text(json.dumps(config))
    text = build_report(tiny_run_copy, umap=False)
    assert ("synthetic count" in text) is shown and ("synthetic seed" in text) is shown
    assert "image size" in text


@pytest.mark.parametrize("stale", [True, False])
def test_artifacts_of_other_weights_are_marked_stale(tiny_run_copy, stale):
    run = tiny_run_copy
    now = run.weights_id("best")
    recorded = {"weights": "best", "weights_id": "0f0f0f0f0f0f" if stale else now}
    write_sample(run, "gaussian-seed0", "gaussian", {}, **recorded)
    write_sample(run, "uniform-box-seed0", "uniform-box", {})  # records no weights: never called stale
    row = {"name": "gaussian", "sampler": "gaussian", "options": {}, "kind": "sampler", "n": 16, "seed": 0}
    write_evaluation(run, [row], **recorded)
    write_analysis(run, [finding("origin-position", "c", "agrees", "e")], **recorded)
    text = build_report(run, umap=False)
    group = group_of(text, "gaussian-seed0")
    note = f"this sample was computed from best weights 0f0f0f0f0f0f, the run&#39;s best weights are now {now}"
    assert ('<span class="badge stale">stale</span>' in group) is stale and (note in group) is stale
    assert ("the evaluation was computed from best weights 0f0f0f0f0f0f" in group) is stale  # beside its scores
    assert "stale" not in group_of(text, "uniform-box-seed0")
    assert ("the analysis was computed from best weights 0f0f0f0f0f0f" in text) is stale
    assert ('<span class="badge stale">stale</span></p>' in text) is stale  # on the analysis finding
    assert f"best weights</th><td>{now}" in text


@pytest.mark.parametrize(
    "columns, chosen",
    [
        ({"subset": ["train", "val"], "Smiling": [1, -1], "Male": [-1, 1]}, "Male"),
        ({"subset": ["train", "val"], "hair_r": [0.1, 0.7], "eye_size": [0.2, 0.3]}, "hair_r"),
        ({"subset": ["train", "val"], "image_id": ["a", "b"]}, "subset"),
        ({"image_id": ["a", "b"], "path": ["x", "y"]}, None),
    ],
)
def test_the_map_is_coloured_by_a_known_attribute_first(columns, chosen):
    import pandas as pd

    from latentatlas.report.maps import colour_column

    column = colour_column(pd.DataFrame(columns))
    assert (column["name"] if column else None) == chosen


def test_real_pipeline_scores_sit_beside_the_sample_they_were_computed_on(tiny_run_copy):
    from latentatlas.pipelines.evaluate import evaluate_run
    from latentatlas.pipelines.sample import sample_run

    run = tiny_run_copy
    sample_run(run, "gaussian", n=40, seed=3)
    sample_run(run, "uniform-box", n=40, seed=3, b=1.5)
    result = evaluate_run(run, samplers=["gaussian"], n=40, seed=3, fid_scores=False, faces=False, progress=False)
    gaussian = next(row for row in result.rows if row.name == "gaussian")
    assert (gaussian.seed, gaussian.options) == (3, {})
    text = build_report(run, umap=False)
    precision = f"{gaussian.scores['precision'].value:.3g}"
    gaussian_block = text[text.index("gaussian-seed3") :]
    assert precision in gaussian_block[: gaussian_block.index("</section>")]
    # the b = 1.5 box was never evaluated: it says so, with the command that would
    box_block = text[text.index("uniform-box-b1.5-seed3") :]
    box_block = box_block[: box_block.index("<h3", 10)] if "<h3" in box_block[10:] else box_block
    assert "not evaluated" in box_block and "--b 1.5" in box_block


# ----------------------------------------------------------------------------- one sub-section per finding

FIGURE_OF = {key: claim.figure for claims in CLAIMS.values() for claim in claims for key in claim.keys}
SECTION_OF = {
    "gaussian-marginals": "components",
    "dominant-components": "components",
    "uniform-shell-misses-bulk": "components",
    "strong-correlations": "correlations",
    "bulk-off-centre": "origin",
    "origin-position": "origin",
    "normal-core": "normal-core",
    "henze-zirkler-power": "normal-core",
    "one-compact-region": "regions",
}


def group_holding(text: str, fragment: str) -> str:
    """The HTML of the sub-section (group) that holds `fragment`."""
    position = text.index(fragment, text.index("<nav>"))
    start = text.rindex('<div class="group"', 0, position)
    ends = [i for i in (text.find('<div class="group"', position), text.find("</section>", position)) if i >= 0]
    return text[start : min(ends)]


def test_every_finding_has_its_sub_section_with_one_figure_in_the_series_order(tiny_analysed_run):
    run = tiny_analysed_run
    text = build_report(run, umap=False)
    data = json.loads((run.path / "analysis" / "analysis.json").read_text())
    found = [Finding.from_dict(f) for f in data["findings"]]
    assert sorted(f.key for f in found) == sorted(finding_keys()) == sorted(SECTION_OF)
    story = [spec.anchor for spec in SECTIONS]
    order = []
    for f in found:
        sentence = str(escape(f.sentence()))
        assert text.count(sentence) == 1, f.key
        assert section_of(text, sentence) == SECTION_OF[f.key], f.key
        group = group_holding(text, sentence)
        assert group.count("<figure>") == 1, f.key  # one figure: the analysis figure that shows the claim
        assert embedded((run.path / "analysis" / FIGURE_OF[f.key]).read_bytes()) in group, f.key
        assert f'<p class="verdict {f.verdict}">{sentence}' in group
        assert group.index(sentence) < group.index("<figure>")  # the verdict sentence first
        order.append((story.index(SECTION_OF[f.key]), finding_keys().index(f.key), text.index(sentence)))
    assert [position for *_, position in sorted(order)] == sorted(position for *_, position in order)
    assert group_holding(text, "(normal-core, henze-zirkler-power)").count('<p class="verdict') == 2
    assert section_of(text, "analysis options") == "further"


def test_a_verdict_missing_from_the_analysis_names_the_command(tiny_run_copy):
    run = tiny_run_copy
    skipped = "region detection needs more than 21 points, got 12"
    write_analysis(
        run,
        [finding("origin-position", "c", "agrees", "e"), finding("planar-ellipses", "p", "mixed", "q")],
        regions={"skipped": skipped},
    )
    text = build_report(run, umap=False)
    command = f"run <code>latentatlas analyze {escape(str(run.path))}</code>"
    marginals = group_holding(text, "(gaussian-marginals)")
    assert f"The verdict on this claim is not in analysis/analysis.json: {command}" in marginals
    assert f"The figure histograms.png was not drawn: {command}" in marginals
    regions = group_holding(text, "(one-compact-region)")
    assert f"No verdict: the analysis skipped this part ({skipped})." in regions and "not drawn" not in regions
    assert "The figure mahalanobis.png was not drawn" in group_holding(text, "(origin-position)")
    assert section_of(text, "This run partly agrees with the seed: p (q)") == "further"  # a finding this report lacks


# ----------------------------------------------------------------------------- attributes


def attributes_section(text: str) -> str:
    start = text.index('<section id="attributes">')
    return text[start : text.index("</section>", start)]


def test_the_attribute_section_shows_the_sorted_table_strips_and_round_trips(tiny_run_copy):
    from latentatlas.pipelines.attributes import attributes_run
    from latentatlas.report.blocks import format_number

    run = tiny_run_copy
    result = attributes_run(run, where=["skin_tone=1"], n=16, strips=2)
    text = build_report(run, umap=False)
    assert anchors(text).index("paths") < anchors(text).index("attributes") < anchors(text).index("normal-core")
    section = attributes_section(text)
    for heading in ("probe AUC (held out)", "mean shift (Mahalanobis units)", "variance share along the direction"):
        assert f"<th>{heading}</th>" in section
    names = [row["name"] for row in sorted(result["attributes"], key=lambda row: -row["auc"])]
    rows = [section.index(f"<tr><td>{name}</td>") for name in names]
    assert rows == sorted(rows) and len(names) > 3  # sorted by held-out AUC
    top = result["attributes"][0]
    assert f"<td>{format_number(top['shift_mahalanobis'])}</td>" in section
    strips = [section.index(embedded((run.path / "attributes" / s["file"]).read_bytes())) for s in result["strips"]]
    assert len(strips) == 2 and strips == sorted(strips)
    check = result["conditional"][0]
    assert f"<td>skin_tone=1</td><td>gaussian</td><td>{format_number(check['n_rows'])}</td>" in section
    assert f"<td>{format_number(check['share'])}</td>" in section
    for f in result["findings"]:
        assert str(escape(Finding.from_dict(f).sentence())) in section


@pytest.mark.parametrize("stale", [True, False])
def test_hand_made_attributes_missing_strips_and_conditions(tiny_run_copy, stale):
    run = tiny_run_copy
    folder = run.path / "attributes"
    folder.mkdir()
    (folder / "strip-1-Male.png").write_bytes(png((40, 50, 60)))
    weights = {"weights": "best", "weights_id": "0f0f0f0f0f0f" if stale else run.weights_id("best")}
    rows = [{"name": "Smiling", "auc": 0.81, "shift_mahalanobis": 1.5}, {"name": "Male", "auc": 0.97}]
    strips = [{"attribute": "Male", "file": "strip-1-Male.png", "caption": "along Male"}]
    strips.append({"attribute": "Smiling", "file": "strip-2-Smiling.png", "caption": "along Smiling"})
    data = {"attributes": rows, "strips": strips, "conditional": [], "findings": [], **weights}
    (folder / "attributes.json").write_text(json.dumps(data))
    text = build_report(run, umap=False)
    section = attributes_section(text)
    assert section.index("<td>Male</td>") < section.index("<td>Smiling</td>")
    assert embedded(png((40, 50, 60))) in section and "along Smiling" not in text
    assert "the strip strip-2-Smiling.png of attributes/attributes.json is missing; it was left out" in text
    command = f"latentatlas attributes {escape(str(run.path))} --where Male=1"  # the top attribute
    assert f"The conditional round trip was not asked for: run <code>{command}</code>" in section
    assert ("the attribute analysis was computed from best weights 0f0f0f0f0f0f" in section) is stale
    assert ('<span class="badge stale">stale</span>' in section) is stale


# ----------------------------------------------------------------------------- what the bulk depends on


@pytest.mark.parametrize("listed", [True, False])
def test_a_run_inside_a_sweep_gets_the_sweep_section(tiny_run, tmp_path, listed):
    run = Run(shutil.copytree(tiny_run.path, tmp_path / "sweep" / "synthetic-z16-bn"))
    common = {"source": "synthetic", "batch_norm": True, "val_loss": 0.01, "participation_ratio": 3.5}
    rows = [
        {**common, "latent_dim": 16, "run": "synthetic-z16-bn" if listed else "other", "origin_percentile": 96.5},
        {**common, "latent_dim": 64, "run": "synthetic-z64-bn", "origin_percentile": 25.25, "n_regions": 2},
    ]
    (tmp_path / "sweep" / "sweep.json").write_text(json.dumps({"rows": rows}))
    (tmp_path / "sweep" / "sweep.png").write_bytes(png((70, 80, 90)))
    text = build_report(run, umap=False)
    if not listed:
        assert 'id="sweep"' not in text and embedded(png((70, 80, 90))) not in text
        return
    assert anchors(text)[-3:] == ["sweep", "further", "appendix"]
    start = text.index('<section id="sweep">')
    section = text[start : text.index("</section>", start)]
    assert "This run (synthetic, latent dimension 16, with batch norm) is one of 2 models" in section
    assert "the origin&#39;s Mahalanobis percentile 25.25 to 96.5" in section and "regions 2" in section
    assert "participation ratio 3.5;" in section
    assert embedded(png((70, 80, 90))) in section
    assert '<tr class="hl"><td>synthetic</td><td>True</td>' not in section  # cells are formatted
    assert '<tr class="hl"><td>synthetic</td><td>yes</td><td>0.01</td><td>3.5</td><td>16</td>' in section


def test_report_waits_for_the_runs_lock(tiny_run_copy, tmp_path, capsys, monkeypatch):
    """`report` writes into the run like the other writers: it takes the run's lock (issue 22, item 7)."""
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", "import filelock, sys, time; lock = filelock.FileLock(sys.argv[1]); lock.acquire(); "
         "print('held', flush=True); time.sleep(60)", str(tiny_run_copy.path / ".lock")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setenv("LATENTATLAS_LOCK_TIMEOUT", "0.5")
        assert main(["report", str(tiny_run_copy.path), "--no-umap"]) == 2
        err = capsys.readouterr().err
        assert "still in use by another latentatlas command" in err
        assert not (tiny_run_copy.path / "report.html").exists()
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"latent_dim": 32}, "says latent dimension 32 but the z-points have 16 components"),
        ({"latent_dim": -3}, "invalid .*config.json"),
        ({"image_size": "big"}, "invalid .*config.json"),
    ],
)
def test_report_refuses_a_broken_or_contradictory_config(tiny_run_copy, capsys, change, message):
    """Every other command refuses such a config.json; the report must not show its values as the run's."""
    path = tiny_run_copy.path / "config.json"
    config = json.loads(path.read_text())
    config["model"].update(change)
    path.write_text(json.dumps(config))
    assert main(["report", str(tiny_run_copy.path), "--no-umap"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("latentatlas: error:") and "\n" not in err and re.search(message, err), err
    assert not (tiny_run_copy.path / "report.html").exists()


def test_artifacts_of_an_earlier_store_are_stale_in_every_section_and_the_summary(tiny_analysed_run, tmp_path):
    """Issue 22, item 4: after `encode R --data ...` rewrites the store, the report does not mix two stores:
    the analysis, evaluation, samples, paths and attributes of the old store are marked stale with the command
    that refreshes them, the summary does not present their verdicts as current, and the explorer's
    regions follow the same rule."""
    from latentatlas.data import DataConfig
    from latentatlas.pipelines.regions import region_labels
    from latentatlas.report.summary import read_artifacts, run_summary, summary_text
    from latentatlas.store import encode_run

    run = Run(shutil.copytree(tiny_analysed_run.path, tmp_path / "run"))  # copy2: the files keep their times
    recorded = {"weights": "best", "weights_id": run.weights_id("best")}
    write_sample(run, "gaussian-seed0", "gaussian", {}, **recorded)
    row = {"name": "gaussian", "sampler": "gaussian", "options": {}, "kind": "sampler", "n": 16, "seed": 0}
    write_evaluation(run, [row], findings=[finding("full-covariance-hits", "c", "agrees", "e")], **recorded)
    (run.path / "paths" / "origin-to-centre").mkdir(parents=True)
    info = {"kind": "origin-to-centre", "steps": 8, "options": {}, **recorded}
    (run.path / "paths" / "origin-to-centre" / "info.json").write_text(json.dumps(info))
    (run.path / "attributes").mkdir()
    attributes = {"attributes": [], "findings": [finding("attributes-linear", "c", "agrees", "e")], **recorded}
    (run.path / "attributes" / "attributes.json").write_text(json.dumps(attributes))

    healthy = build_report(run, umap=False)
    assert "stale" not in healthy.split("<main", 1)[-1].replace("p.stale", "")
    assert "stale" not in summary_text(run_summary(read_artifacts(run)))
    assert region_labels(run, 400)[1] is None

    encode_run(run, DataConfig(source="synthetic-faces", image_size=32, synthetic_count=150), progress=False)
    assert len(run.zpoints()) == 150
    why = "computed from an earlier z-point store: `latentatlas encode` rewrote the store since"
    why += " (it holds 150 z-points now)"
    text = build_report(run, umap=False)
    html_why = escape(why)
    assert f"stale: the analysis was {html_why}; run `latentatlas analyze {run.path}` again." in text
    assert f"stale: the evaluation was {html_why}; run `latentatlas evaluate {run.path}` again." in text
    assert f"stale: the attribute analysis was {html_why}" in text
    assert (
        f"stale: this sample was {html_why}; run `latentatlas sample {run.path} --sampler gaussian -n 16 --seed 0`"
        in text
    )
    assert (
        f"stale: this path was {html_why}; run `latentatlas path {run.path} --kind origin-to-centre --steps 8`" in text
    )
    summary = run_summary(read_artifacts(run))
    assert summary.rows and all(row.stale and row.shown_verdict.startswith("stale (") for row in summary.rows)
    assert summary.ranking_sentence.startswith(f"Stale: the evaluation was {why}; refresh it with `latentatlas")
    printed = summary_text(summary)
    assert f"  the analysis was {why}; refresh it with `latentatlas analyze {run.path}`" in printed
    assert "stale (agrees)" in printed and not any(line.startswith("agrees ") for line in printed.splitlines())
    assert '<td class="v stale"' in text and '<td class="v agrees"' not in text  # the page's summary table
    labels, note = region_labels(run, 150)
    assert labels is None and note is not None and why in note


def test_staleness_follows_the_stores_content_id_not_file_times(tiny_analysed_run, tmp_path):
    """A run copied without its file times (`cp -r`: the store's zpoints.json newer than the analysis) is still
    current, because the analysis recorded the store's content id; an analysis that recorded another store's
    id is stale whatever the times say."""
    from latentatlas.store.staleness import provenance, stale_reason

    run = Run(shutil.copytree(tiny_analysed_run.path, tmp_path / "run", copy_function=shutil.copy))
    analysis_file = run.path / "analysis" / "analysis.json"
    store_file = run.zpoints_file("zpoints.json")
    recorded = json.loads(analysis_file.read_text())
    assert recorded["store_id"] == json.loads(store_file.read_text())["store_id"] == run.provenance()["store_id"]
    store_file.touch()  # newer than the analysis, as after a copy that does not keep times
    assert stale_reason(run, provenance(recorded, analysis_file)) is None
    other = {**recorded, "store_id": "0123456789abcdef"}
    analysis_file.touch()  # now the analysis is the newer file, yet it saw another store
    assert "earlier z-point store" in (stale_reason(run, provenance(other, analysis_file)) or "")
    legacy = {key: value for key, value in recorded.items() if key != "store_id"}
    store_file.touch()
    assert "earlier z-point store" in (stale_reason(run, provenance(legacy, analysis_file)) or "")


def test_the_store_id_is_the_z_points_content():
    from latentatlas.io import array_id

    z = np.arange(24, dtype=np.float32).reshape(6, 4)
    assert array_id(z) == array_id(z.copy()) == array_id(z, chunk_rows=4)
    assert array_id(z) != array_id(z + 1e-6) and array_id(z) != array_id(z.reshape(4, 6))
