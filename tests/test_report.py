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
from latentatlas.report import SECTIONS, build_report, write_report
from latentatlas.store import Run


def png(colour: tuple[int, int, int], size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def embedded(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def section_of(text: str, fragment: str) -> int:
    """Number of the story section (1..7) whose part of the page holds `fragment`."""
    position = text.index(fragment)
    starts = [text.index(f"<h2>{escape(spec.title)}</h2>") for spec in SECTIONS]
    return max(n for n, start in enumerate(starts, start=1) if start < position)


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
    path = write_report(tiny_run_copy)
    assert path == tiny_run_copy.path / "report.html"
    text = path.read_text(encoding="utf-8")
    positions = [text.index(f"<h2>{escape(spec.title)}</h2>") for spec in SECTIONS]
    assert positions == sorted(positions)  # the seed's order
    assert text.count('src="data:image/png;base64,') == 1  # the training curves, drawn from history.csv
    assert "Training and validation loss per epoch (3 epochs" in text
    assert '"synthetic-faces"' not in text and "synthetic-faces" in text  # config values, as text
    for command in (
        "latentatlas reconstruct",
        "latentatlas analyze",
        "latentatlas sample",
        "latentatlas evaluate",
        "latentatlas path",
    ):
        assert command in text, command
    assert section_of(text, "latentatlas analyze") == 2
    assert section_of(text, "--sampler uniform-box") == 5
    assert section_of(text, "latentatlas path") == 7


def test_the_report_is_self_contained(tiny_run_copy):
    write_artifacts(tiny_run_copy)
    text = build_report(tiny_run_copy)
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)  # nothing fetched from the network
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", text)  # no file beside the page either
    assert "<style>" in text


def test_figures_are_embedded_with_captions_in_their_sections(tiny_run_copy):
    images = write_artifacts(tiny_run_copy)
    text = build_report(tiny_run_copy)
    for key, section in (("hist", 2), ("ellipse", 3), ("radii", 4), ("u", 5), ("g", 6), ("p", 7), ("odd", 2)):
        assert embedded(images[key]) in text, key
        assert section_of(text, embedded(images[key])) == section, key
    assert "Histograms of the components &lt;b&gt;bold&lt;/b&gt; &amp; co" in text
    assert "<b>bold</b>" not in text
    assert "escaping the folder" not in text and "never written" not in text


def test_key_numbers_are_presented(tiny_run_copy):
    write_artifacts(tiny_run_copy)
    text = build_report(tiny_run_copy)
    assert section_of(text, "2.346") == 2  # bulk centre norm, 4 significant digits
    assert section_of(text, "-0.9806") == 3
    assert section_of(text, "0.9197") == 4  # b_match
    assert section_of(text, "brand new number") == 4 and "42.12" in text  # unknown field, shown generically
    evaluation = text.index("Evaluation of all samplers")
    assert section_of(text, "Evaluation of all samplers") == 6
    assert text.index("0.8125", evaluation) > evaluation
    assert '<tr class="hl"><td>real (held-out)</td>' in text
    assert "[26, 15.6, 5.2, 5.2, 15.6, 26]" in text  # the path's Mahalanobis distances


def test_corrupt_inputs_are_reported_not_fatal(tiny_run_copy):
    write_artifacts(tiny_run_copy)
    (tiny_run_copy.path / "analysis" / "analysis.json").write_text("{not json")
    (tiny_run_copy.path / "samples" / "gaussian-seed0" / "info.json").write_text("[1, 2]")
    text = build_report(tiny_run_copy)
    assert "Files left out" in text
    assert (
        "analysis/analysis.json could not be read" in text and "gaussian-seed0/info.json is not a JSON object" in text
    )
    assert section_of(text, "latentatlas analyze") == 2


def test_html_special_characters_in_the_run_are_escaped(tiny_run, tmp_path):
    target = tmp_path / "<img src=x onerror=alert(1)>"
    run = Run(shutil.copytree(tiny_run.path, target))
    text = build_report(run)
    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text


def test_report_write_is_validated_and_atomic(tiny_run_copy, tmp_path):
    with pytest.raises(LatentAtlasError, match="ending in .html"):
        write_report(tiny_run_copy, tmp_path / "report.pdf")
    assert not (tmp_path / "report.pdf").exists()
    out = write_report(tiny_run_copy, tmp_path / "elsewhere" / "r.html")
    assert out.is_file() and sorted(p.name for p in out.parent.iterdir()) == ["r.html"]  # no temporary left over


def test_cli_report(tiny_run_copy, capsys, tmp_path):
    assert main(["report", str(tiny_run_copy.path)]) == 0
    assert "report.html" in capsys.readouterr().out
    assert (tiny_run_copy.path / "report.html").is_file()
    assert main(["report", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("latentatlas: error:") and "not a latentatlas run folder" in error and "\n" not in error


@pytest.mark.slow
def test_report_of_the_real_pipeline(tiny_run_copy):
    """The files written by analyze / sample / path / evaluate end up in the right sections."""
    from latentatlas.analysis import analyze_run
    from latentatlas.evaluation import evaluate_run
    from latentatlas.paths import path_run
    from latentatlas.samplers import sample_run

    run = tiny_run_copy
    tiny_run_copy.path.joinpath("reconstructions.png").write_bytes(png((1, 2, 3)))
    analysis = analyze_run(run, projection_points=300, artificial_points=50, hist_components=4)
    sample_run(run, "uniform-box", n=8)
    sample_run(run, "gaussian", n=8)
    path_run(run, "origin-to-centre", steps=4)
    evaluate_run(run, samplers=["uniform-box", "gaussian"], n=40, fid_scores=False, progress=False)
    text = write_report(run).read_text(encoding="utf-8")
    assert "is missing" not in text and "Files left out" not in text
    for figure in analysis["figures"]:
        data = (run.path / "analysis" / figure["file"]).read_bytes()
        assert embedded(data) in text
        assert section_of(text, embedded(data)) in (2, 3, 4)
    assert section_of(text, embedded((run.path / "analysis" / "radii.png").read_bytes())) == 4
    assert section_of(text, embedded((run.path / "samples" / "uniform-box-seed0" / "grid.png").read_bytes())) == 5
    assert section_of(text, embedded((run.path / "samples" / "gaussian-seed0" / "grid.png").read_bytes())) == 6
    assert section_of(text, embedded(next((run.path / "paths").glob("*/projection.png")).read_bytes())) == 7
    assert np.isfinite(analysis["origin"]["percentile"])
    assert f"{analysis['radii']['b_match']:.4g}" in text
