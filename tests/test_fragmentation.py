"""Issue 12, fragmentation: the class instrument, the void share per row, and the digits experiment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.classes import ImageClassifier, grey_features


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    from latentatlas.data.digits import DIGITS_COUNT, digits_into

    images = np.zeros((DIGITS_COUNT, 16, 16, 3), np.uint8)
    labels = digits_into(images, DIGITS_COUNT, 16)["class"].to_numpy()
    return images, labels


def test_class_instrument_tells_digits_from_blends(digits):
    images, labels = digits
    train, test = np.arange(1300), np.arange(1300, len(labels))
    classifier = ImageClassifier().fit(images[train], labels[train])
    real = classifier.scores(images[test], labels[test], seed=0)
    assert real["class_accuracy"].value > 0.88 and real["class_confident"].value > 0.75
    assert real["class_coverage"].value == 1.0 and real["class_tv"].value < 0.15
    for score in real.values():
        assert score.low <= score.value <= score.high
    # the pixel mean of two different digits: the probability splits, few confident calls
    first, second = test[:200], test[200:400]
    different = labels[first] != labels[second]
    blends = ((images[first].astype(np.uint16) + images[second]) // 2).astype(np.uint8)[different]
    blended = classifier.scores(blends, seed=0)
    assert "class_accuracy" not in blended  # no true class given
    assert blended["class_confident"].high < real["class_confident"].low - 0.3
    # one digit only: few classes covered (a few threes are confidently misread), the distribution far off
    threes = classifier.scores(images[test][labels[test] == 3], seed=0)
    assert threes["class_coverage"].value <= 0.3
    assert threes["class_tv"].value > 0.6 > 0.15 > real["class_tv"].value  # all threes: 1 - 0.1 at most


def test_grey_features_average_boxes():
    image = np.zeros((1, 4, 4, 3), np.uint8)
    image[0, :2, :2] = 255  # the top-left quarter white
    np.testing.assert_allclose(grey_features(image, 2), [[1.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(grey_features(image, 4).reshape(4, 4)[:2, :2], 1.0)


@pytest.mark.parametrize(
    ("labels", "message"),
    [(np.zeros(20, int), "at least two classes"), (np.arange(5), r"got \(5,\) labels for 20 images")],
)
def test_class_instrument_refuses_bad_labels(labels, message):
    images = np.random.default_rng(0).integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(LatentAtlasError, match=message):
        ImageClassifier(size=4).fit(images, labels)
    with pytest.raises(LatentAtlasError, match="not fitted"):
        ImageClassifier().predict_proba(images)


def _add_class_column(run) -> np.ndarray:
    """Two classes from a generating factor of the synthetic faces, written into the run's metadata."""
    path = run.zpoints_file("zpoints.parquet")
    meta = pd.read_parquet(path)
    labels = (meta["skin_tone"] > meta["skin_tone"].median()).astype(np.int64).to_numpy()
    meta["class"] = labels
    meta.to_parquet(path)
    return labels


def test_evaluation_reports_voids_and_classes_only_where_the_data_have_classes(tiny_run_copy):
    from latentatlas.pipelines.evaluate import evaluate_run

    options = {"samplers": ["gaussian", "uniform-box"], "n": 60, "k": 3, "instruments": "quick", "progress": False}
    plain = evaluate_run(tiny_run_copy, faces=False, write=False, **options)
    assert "void_share" in plain.table.columns and "class_confident" not in plain.table.columns
    assert "class_instrument" not in plain.settings and plain.settings["regions"]["n_regions"] >= 1
    _add_class_column(tiny_run_copy)
    result = evaluate_run(tiny_run_copy, faces=False, write=False, **options)  # --no-faces: decoded for classes
    rows = result.table.set_index("name")
    for column in ("class_confident", "class_coverage", "class_tv", "void_share"):
        assert rows[column].notna().all(), column
        assert (rows[f"{column}_low"] <= rows[column]).all() and (rows[column] <= rows[f"{column}_high"]).all()
    # accuracy only where the true classes are known: the held-out images and their reconstructions
    assert rows["class_accuracy"].notna().tolist() == [True, True, False, False]
    assert rows.loc["real (held-out)", "class_accuracy"] > 0.6  # two classes: chance is 0.5
    # the training z-points lie in their regions' cores; a uniform box far out in none
    assert rows.loc["real (held-out)", "void_share"] < 0.1 and rows.loc["uniform-box", "void_share"] > 0.9
    assert result.settings["class_instrument"]["classes"] == [0, 1]


def _example(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_digits_experiment_end_to_end(tmp_path):
    """examples/digits_fragmentation.py, small: train on the digits, find regions, evaluate both samplers."""
    example = _example("digits_fragmentation")
    numbers = example.digits_fragmentation(
        tmp_path / "run", epochs=2, latent_dim=8, image_size=16, channels=(8, 16), max_regions=4, n=100, progress=False
    )
    rows = numbers["rows"]
    assert list(rows) == ["real (held-out)", "reconstruction", "gaussian", "regions"]
    assert numbers["n"] == 100 and 1 <= numbers["n_regions"] <= 4 and len(numbers["bic"]) == 4
    assert -1.0 <= numbers["ari_regions_digits"] <= 1.0 and -1.0 <= numbers["ari_forced10_digits"] <= 1.0
    assert rows["real (held-out)"]["class_accuracy"].value > 0.85  # the instrument on held-out real digits
    assert rows["gaussian"]["class_accuracy"] is None and rows["regions"]["log_likelihood"] is not None
    for name in ("gaussian", "regions"):
        assert 0.0 <= rows[name]["void_share"].value <= 1.0 and 0.0 <= rows[name]["class_confident"].value <= 1.0
    text = example.report(numbers)
    assert "| regions | " in text and "ARI regions vs digits" in text
    assert "not 10" in text and ("largest count tried" in text) == (numbers["n_regions"] == 4)
