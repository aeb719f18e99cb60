"""Attribute probes and directions, conditions and conditional generation (issue 13, item 1).

Planted directions check the numbers against known truth; the tiny synthetic-faces run checks the
command end to end (its skin tone is a strong, visible factor); every user mistake is one line, exit 2.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from latentatlas.analysis.attributes import AttributeAnalysis
from latentatlas.analysis.conditions import Condition, ConditionalCheck, conditional_findings, parse_condition
from latentatlas.analysis.labels import AttributeLabels, attribute_labels
from latentatlas.cli import main
from latentatlas.errors import LatentAtlasError
from latentatlas.pipelines.attributes import attributes_run
from latentatlas.pipelines.conditional import conditional_check, rows_needed
from latentatlas.stats import Mahalanobis

DIM = 8


def _planted(seed: int, correlated: bool, shift: float = 4.0, n: int = 2000, prevalence: float = 0.4):
    """z = noise + y * shift * u: the label y moves the bulk by `shift` along the known unit vector u."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(DIM)
    u /= np.linalg.norm(u)
    y = (rng.random(n) < prevalence).astype(np.int8)
    noise = rng.standard_normal((n, DIM))
    if correlated:  # an anisotropic bulk: the probe's normal then leans away from the mean shift
        noise = noise @ (np.eye(DIM) + 0.6 * rng.standard_normal((DIM, DIM)))
    z = noise + shift * y[:, None] * u[None, :]
    return z, y, u


def _labels(y: np.ndarray, name: str = "planted") -> AttributeLabels:
    return AttributeLabels((name,), y[:, None].astype(np.int8), ("binary",), (None,), {})


def _fit(z: np.ndarray, y: np.ndarray, name: str = "planted", split: int = 1500) -> AttributeAnalysis:
    labels = _labels(y, name)
    return AttributeAnalysis(random_state=0).fit(
        z[:split], labels.rows(slice(0, split)), z[split:], labels.rows(slice(split, None))
    )


@pytest.mark.parametrize("correlated", [False, True])
def test_planted_direction_is_recovered(correlated):
    z, y, u = _planted(seed=1, correlated=correlated)
    analysis = _fit(z, y)
    effect = analysis.effect("planted")
    direction = analysis.directions_["planted"]
    assert direction @ u / np.linalg.norm(direction) >= 0.95
    assert effect.auc >= 0.98
    train = z[:1500]
    expected_share = effect.prevalence * (1 - effect.prevalence) * 16 / (u @ np.cov(train.T) @ u)
    assert effect.variance_share_direction == pytest.approx(expected_share, abs=0.05)
    # the Mahalanobis length uses the whole training bulk's covariance
    precision = np.linalg.inv(np.cov(train.T))
    assert effect.shift_mahalanobis == pytest.approx(np.sqrt(direction @ precision @ direction), rel=1e-6)
    assert effect.n_with + effect.n_without == 1500 and effect.n_held_out == 500
    if not correlated:  # isotropic noise: the probe's normal and the mean shift agree
        assert effect.cosine_probe_direction >= 0.95


def test_independent_label_is_not_encoded():
    z, _, _ = _planted(seed=2, correlated=True)
    y = (np.random.default_rng(3).random(len(z)) < 0.5).astype(np.int8)
    effect = _fit(z, y).effect("planted")
    assert abs(effect.auc - 0.5) < 0.08
    assert effect.variance_share_direction < 0.02


def test_walk_moves_along_the_direction_in_mahalanobis_units():
    z, y, u = _planted(seed=4, correlated=True)
    analysis = _fit(z, y)
    ts = [-3.0, -1.0, 0.0, 2.0]
    points = analysis.walk("planted", ts)
    steps = np.diff(points, axis=0)
    assert np.all(steps @ u / np.linalg.norm(steps, axis=1) >= 0.95)
    assert np.allclose(points[2], analysis.mean_)
    distance = Mahalanobis().fit(z[:1500], analysis.mean_, analysis.covariance_)
    assert np.sqrt(distance.sq_distance(points)) == pytest.approx(np.abs(ts), abs=1e-9)


def test_table_is_sorted_by_auc_and_serialises():
    z, y, u = _planted(seed=5, correlated=False)
    noise = (np.random.default_rng(6).random(len(z)) < 0.5).astype(np.int8)
    rare = np.zeros(len(z), np.int8)
    rare[:3] = 1
    labels = AttributeLabels(
        ("noise", "planted", "rare"), np.stack([noise, y, rare], 1), ("binary",) * 3, (None,) * 3, {}
    )
    analysis = AttributeAnalysis().fit(z[:1500], labels.rows(slice(0, 1500)), z[1500:], labels.rows(slice(1500, None)))
    assert [e.name for e in analysis.effects_] == ["planted", "noise"]
    assert "3 training rows with it" in analysis.skipped_["rare"]
    table = json.loads(json.dumps(analysis.to_dict()))
    assert table["attributes"][0]["name"] == "planted" and "difference of class means" in table["direction"]
    with pytest.raises(LatentAtlasError, match="'rare' has no probe: 3 training rows"):
        analysis.walk("rare", [0.0])
    with pytest.raises(LatentAtlasError, match="unknown attribute 'plant'; did you mean 'planted'"):
        analysis.effect("plant")
    (finding,) = analysis.findings()
    assert finding.verdict == "mixed" and "1 of 2 attributes reach 0.9" in finding.evidence


def test_findings_name_the_headline_celeba_attributes():
    z, y, _ = _planted(seed=7, correlated=False)
    flipped = 1 - y
    weak = (np.random.default_rng(8).random(len(z)) < 0.5).astype(np.int8)
    labels = AttributeLabels(
        ("Male", "Smiling", "Eyeglasses"), np.stack([y, flipped, weak], 1), ("binary",) * 3, (None,) * 3, {}
    )
    analysis = AttributeAnalysis().fit(z[:1500], labels.rows(slice(0, 1500)), z[1500:], labels.rows(slice(1500, None)))
    (finding,) = analysis.findings()
    assert finding.claim.startswith("Male, Smiling and Eyeglasses are linearly encoded")
    assert finding.verdict == "mixed" and "Eyeglasses 0." in finding.evidence


def _check(condition: str, share: float) -> ConditionalCheck:
    return ConditionalCheck(condition, "gaussian", 100, 200, 0, share, {}, None, 0)


def test_conditional_findings_judge_every_check():
    assert conditional_findings([]) == []
    (mixed,) = conditional_findings([_check("Male=1", 0.95), _check("Eyeglasses=1", 0.5)])
    assert mixed.key == "attributes-conditional" and mixed.verdict == "mixed"
    assert mixed.evidence.endswith("(gaussian sampler): Male=1: 0.95 of 200; Eyeglasses=1: 0.50 of 200")
    assert conditional_findings([_check("Male=1", 0.9)])[0].verdict == "agrees"
    assert conditional_findings([_check("Male=1", 0.89)])[0].verdict == "disagrees"


def test_attribute_labels_from_metadata():
    meta = pd.DataFrame(
        {
            "index": np.arange(6),
            "image_id": [f"{i}.jpg" for i in range(6)],
            "subset": ["train"] * 4 + ["val"] * 2,
            "Male": np.array([1, -1, 1, 0, -1, 1], np.int8),  # CelebA: 0 = image without attribute row
            "flag": [0, 1, 1, 0, 0, 1],
            "width": [0.1, 0.2, 0.3, 0.4, 10.0, -5.0],
            "constant": [1] * 6,
            "Bald": np.array([-1, -1, 0, -1, -1, -1], np.int8),
            "label": list("abcdef"),
        }
    )
    reference = (meta["subset"] == "train").to_numpy()
    labels = attribute_labels(meta, reference=reference)
    assert labels.names == ("Male", "flag", "width")
    assert labels.column("Male").tolist() == [1, 0, 1, -1, 0, 1]
    assert labels.column("flag").tolist() == [0, 1, 1, 0, 0, 1]
    # split at the training rows' median (0.25): held-out extremes do not move it
    assert labels.thresholds[2] == pytest.approx(0.25) and labels.column("width").tolist() == [0, 0, 1, 1, 1, 0]
    assert labels.kinds == ("binary", "binary", "median-split")
    assert labels.skipped == {"constant": "constant", "Bald": "one class only", "label": "not numeric"}
    assert attribute_labels(meta, binarise="skip").names == ("Male", "flag")
    with pytest.raises(LatentAtlasError, match="binarise must be 'median' or 'skip'"):
        attribute_labels(meta, binarise="mean")


NAMES = ("Male", "Eyeglasses", "Smiling", "skin_tone")


def test_parse_condition():
    condition = parse_condition(" Male=1, Eyeglasses = -1,Smiling=1", NAMES)
    assert condition.terms == (("Male", 1), ("Eyeglasses", 0), ("Smiling", 1))
    assert condition.text == "Male=1,Eyeglasses=0,Smiling=1"
    labels = AttributeLabels(
        ("Male", "Eyeglasses"), np.array([[1, 0], [1, 1], [-1, 0], [0, 0]], np.int8), ("binary",) * 2, (None,) * 2, {}
    )
    assert Condition((("Male", 1), ("Eyeglasses", 0))).mask(labels).tolist() == [True, False, False, False]


@pytest.mark.parametrize(
    "text, names, message",
    [
        ("Mal=1", NAMES, "unknown attribute 'Mal'; did you mean 'Male'"),
        ("male=1", NAMES, "unknown attribute 'male'; did you mean 'Male'"),
        ("skintone=0", NAMES, "did you mean 'skin_tone'"),
        ("Zzz=1", NAMES, "unknown attribute 'Zzz'; choose from Male, Eyeglasses"),
        ("Male", NAMES, "'Male' is not a condition like Male=1"),
        ("Male=2", NAMES, r"an attribute check needs Male=1 \(has it\) or Male=0 / -1"),
        ("Male>0", NAMES, r"an attribute check needs Male=1"),
        ("Male=1,Male=0", NAMES, "asks for Male both with and without it"),
        ("  ", NAMES, "empty condition"),
        ("Male=1", (), "needs attributes, but the source has none"),
    ],
)
def test_bad_conditions(text, names, message):
    with pytest.raises(LatentAtlasError, match=message):
        parse_condition(text, names)


def test_conditional_sampling_keeps_the_condition_with_an_exact_round_trip():
    z, y, _ = _planted(seed=9, correlated=False)
    analysis = _fit(z, y)
    labels = _labels(y[:1500])
    for value in (1, 0):
        check = conditional_check(
            analysis,
            Condition((("planted", value),)),
            z[:1500],
            labels,
            lambda v: v,
            n=400,
            seed=3,
            z_held_out=z[1500:],
            labels_held_out=_labels(y[1500:]),
        )
        assert check.share >= 0.9 and check.share_per_attribute == {"planted": check.share}
        assert check.n_rows == int((y[:1500] == value).sum()) and check.n_samples == 400
        # the Gaussian sub-bulk's samples look to the probe like the real rows with that value
        assert check.reference_share is not None and check.reference_share >= 0.9
        assert check.share == pytest.approx(check.reference_share, abs=0.05)


def test_conditional_check_refuses_too_few_rows():
    z, y, _ = _planted(seed=10, correlated=False, prevalence=0.004)
    analysis = AttributeAnalysis(min_class_rows=2).fit(z[:1500], _labels(y[:1500]), z[1500:], _labels(y[1500:]))
    rows = int((y[:1500] == 1).sum())
    assert (
        2 <= rows < DIM + 2 and rows_needed("gaussian", DIM) == DIM + 2 and rows_needed("diagonal-gaussian", DIM) == 2
    )
    condition = Condition((("planted", 1),))
    message = rf"selects {rows} training z-points; the gaussian sampler needs more than N \+ 1 for a full covariance"
    with pytest.raises(LatentAtlasError, match=rf"{message} \({DIM + 2}\)"):
        conditional_check(analysis, condition, z[:1500], _labels(y[:1500]), lambda v: v)
    check = conditional_check(
        analysis, condition, z[:1500], _labels(y[:1500]), lambda v: v, sampler="diagonal-gaussian", n=10
    )
    assert check.n_rows == rows and check.reference_share is None


# ----------------------------------------------------------------------------- the tiny run


@pytest.fixture(scope="module")
def attributes_result(tiny_run, tmp_path_factory):
    import shutil

    from latentatlas.store import Run

    run = Run(shutil.copytree(tiny_run.path, tmp_path_factory.mktemp("attributes") / "run"))
    return run, attributes_run(run, where=["skin_tone=1", "skin_tone=0"], n=128, strips=2, steps=5)


def test_attributes_run_writes_the_folder(attributes_result):
    run, result = attributes_result
    folder = run.path / "attributes"
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted(
        ["attributes.json", "attributes.csv", *(s["file"] for s in result["strips"])]
    )
    saved = json.loads((folder / "attributes.json").read_text())
    assert saved["schema"] == "latentatlas-attributes/1" and saved["n_train"] == 300 and saved["n_held_out"] == 100
    aucs = [e["auc"] for e in saved["attributes"]]
    assert aucs == sorted(aucs, reverse=True) and len(aucs) == 23  # the 23 synthetic factors, median-split
    table = pd.read_csv(folder / "attributes.csv")
    assert table["name"].tolist() == [e["name"] for e in saved["attributes"]]
    skin = next(e for e in saved["attributes"] if e["name"] == "skin_tone")
    assert skin["auc"] >= 0.9 and skin["kind"] == "median-split"
    strip = Image.open(folder / saved["strips"][0]["file"])
    assert strip.width > 4.5 * strip.height  # one row of 5 images
    assert {f["key"] for f in saved["findings"]} == {"attributes-linear", "attributes-conditional"}


def test_conditional_sampling_respects_synthetic_factors(attributes_result):
    _, result = attributes_result
    light, dark = result["conditional"]
    assert light["condition"] == "skin_tone=1" and light["n_rows"] == 150 and light["n_samples"] == 128
    # the share classified as satisfying the condition: light faces stay light, dark faces mostly dark
    assert light["share"] >= 0.9
    assert dark["share"] >= 0.6
    assert light["share"] + dark["share"] - 1 >= 0.5  # P(light | light) - P(light | dark)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("latentatlas: error: "), err
    return lines[0]


@pytest.mark.parametrize(
    "options, message",
    [
        (["--where", "skin_tne=1"], "unknown attribute 'skin_tne'; did you mean 'skin_tone'"),
        (
            ["--where", "skin_tone=1,hair_length=1,face_width=1,eye_y=1,bg_r=1"],
            "training z-points; the gaussian sampler needs more than N + 1 for a full covariance (18)",
        ),
        (["--where", "skin_tone"], "is not a condition like Male=1"),
        (["-n", "0"], "n must be an integer >= 1"),
        (["--sampler", "nope"], "unknown sampler 'nope'"),
    ],
)
def test_cli_mistakes_exit_2(tiny_run_copy, capsys, options, message):
    assert main(["attributes", str(tiny_run_copy.path), *options]) == 2
    assert message in _one_line_error(capsys)
    assert not (tiny_run_copy.path / "attributes").exists()


def test_cli_source_without_attributes(tiny_run_copy, capsys):
    meta = tiny_run_copy.metadata()
    meta[["index", "image_id", "path", "subset", "partition"]].to_parquet(tiny_run_copy.zpoints_file("zpoints.parquet"))
    assert main(["attributes", str(tiny_run_copy.path), "--where", "Male=1"]) == 2
    assert "carry no attributes or generating factors" in _one_line_error(capsys)


def test_cli_prints_the_table(tiny_run_copy, capsys):
    assert main(["attributes", str(tiny_run_copy.path), "--strips", "1", "-n", "32", "--where", "skin_tone=1"]) == 0
    out = capsys.readouterr().out
    assert "attribute probes on 300 training / 100 held-out z-points" in out
    assert "skin_tone=1:" in out and "of 32 gaussian samples fitted on 150 rows" in out
    assert (tiny_run_copy.path / "attributes" / "attributes.json").is_file()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"class_weight": "equal"}, "class_weight must be 'balanced' or None"),
        ({"C": 0}, "C must be a finite number > 0"),
        ({"min_class_rows": 0}, "min_class_rows must be an integer >= 1"),
        ({"random_state": -1}, "random_state"),
    ],
)
def test_bad_probe_options(options, message):
    z, y, _ = _planted(seed=11, correlated=False, n=200)
    with pytest.raises(LatentAtlasError, match=message):
        AttributeAnalysis(**options).fit(z[:150], _labels(y[:150]), z[150:], _labels(y[150:]))
