"""Evaluation: k-NN scores with known answers, chunking, FID/KID, face detector, evaluate end to end."""

from __future__ import annotations

import importlib.util
import json
import re

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
from sklearn.metrics import pairwise_distances

from latentatlas.cli import main
from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation import (
    FaceDetector,
    face_rate,
    fid,
    inception_features,
    kid,
    knn_scores,
    kth_neighbour_distances,
    real_ball_counts,
)
from latentatlas.evaluation import inception as inception_module
from latentatlas.evaluation import knn as knn_module
from latentatlas.pipelines.evaluate import evaluate_points, evaluate_run


def _naive_scores(real: np.ndarray, fake: np.ndarray, k: int) -> dict:
    """The full-matrix reference (as in Naeem et al.'s prdc code)."""
    real_radii = np.partition(pairwise_distances(real, real), k, axis=1)[:, k]
    fake_radii = np.partition(pairwise_distances(fake, fake), k, axis=1)[:, k]
    d = pairwise_distances(real, fake)
    inside = d < real_radii[:, None]
    return {
        "precision": float(inside.any(axis=0).mean()),
        "recall": float((d < fake_radii[None, :]).any(axis=1).mean()),
        "density": float(inside.sum() / (k * len(fake))),
        "coverage": float((d.min(axis=1) < real_radii).mean()),
    }


@pytest.fixture(scope="module")
def point_sets() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((300, 12)), rng.standard_normal((250, 12)) * 1.2 + 0.3


def test_identical_sets_score_one(point_sets):
    real, _ = point_sets
    scores = knn_scores(real, real.copy(), k=5)
    assert scores == {"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0}


def test_same_distribution_scores_near_one():
    rng = np.random.default_rng(1)
    scores = knn_scores(rng.standard_normal((1500, 4)), rng.standard_normal((1500, 4)), k=5)
    for name in ("precision", "recall", "coverage"):
        assert scores[name] > 0.9, (name, scores)
    assert 0.8 < scores["density"] < 1.2


def test_disjoint_sets_score_zero(point_sets):
    real, fake = point_sets
    scores = knn_scores(real, fake + 100.0, k=5)
    assert scores == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_known_one_dimensional_case():
    # real: 0..9 on a line, k=1 -> every radius is 1; fakes at 0.5 (inside the balls of 0 and 1) and 50 (outside).
    real = np.arange(10, dtype=float)[:, None]
    fake = np.array([[0.5], [50.0], [51.0]])
    scores = knn_scores(real, fake, k=1)
    assert scores["precision"] == pytest.approx(1 / 3)
    assert scores["density"] == pytest.approx(2 / 3)  # two balls hold 0.5; density = 2 / (k * M)
    assert scores["coverage"] == pytest.approx(2 / 10)
    # fake radii: 0.5 -> 49.5, 50 -> 1, 51 -> 1: the ball around 0.5 holds every real point
    assert scores["recall"] == 1.0
    np.testing.assert_allclose(kth_neighbour_distances(real, k=2), [2, 1, 1, 1, 1, 1, 1, 1, 1, 2])


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 64, 100_000])
@pytest.mark.parametrize("k", [1, 5])
def test_chunked_equals_full_matrix(point_sets, chunk_size, k):
    real, fake = point_sets
    if chunk_size == 1:
        real, fake = real[:40], fake[:30]  # one row at a time is slow; a subset keeps every code path
    assert knn_scores(real, fake, k=k, chunk_size=chunk_size) == _naive_scores(real, fake, k)


def _exact_reference(real: np.ndarray, fake: np.ndarray, k: int) -> dict:
    """Full float64 matrices of ||a - b||² (direct differences): the definition the fast path must equal."""

    def sq(a, b):
        return ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1)

    real_r2 = np.sort(sq(real, real), axis=1)[:, k]
    fake_r2 = np.sort(sq(fake, fake), axis=1)[:, k]
    d2 = sq(real, fake)
    inside = d2 < real_r2[:, None]
    return {
        "precision": float(inside.any(axis=0).mean()),
        "recall": float((d2 < fake_r2[None, :]).any(axis=1).mean()),
        "density": float(inside.sum() / (k * len(fake))),
        "coverage": float(inside.any(axis=1).mean()),
    }


def _points(kind: str, n_real: int, n_fake: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Point sets on which float32 rounding changes k-NN decisions unless they are rechecked in float64."""
    rng = np.random.default_rng(seed)
    if kind == "lattice":
        # Coordinates in {0, 1, 2} plus an offset float32 cannot resolve, and fakes that copy reals:
        # duplicates and equal distances everywhere, so many distances equal a k-th radius exactly.
        real = rng.integers(0, 3, (n_real, 6)).astype(np.float64) + 1e6
        fake = np.concatenate([real[: n_fake // 3], rng.integers(0, 3, (n_fake - n_fake // 3, 6)) + 1e6])
        return real, fake
    if kind == "far clusters":
        # Two tight clusters 2e4 apart: within a cluster float32 distances are pure rounding noise.
        sign = np.where(np.arange(n_real + n_fake) % 2 == 0, 1.0, -1.0)[:, None]
        points = rng.standard_normal((n_real + n_fake, 8)) * 1e-2 + sign * np.eye(8)[0] * 1e4
        return points[:n_real], points[n_real:] * 1.0001
    scale = {"tiny": 1e-30, "huge": 1e25, "offset gaussian": 1.0}[kind]  # tiny/huge under- and overflow float32
    real = rng.standard_normal((n_real, 16)) * scale + 50.0 * scale
    return real, (rng.standard_normal((n_fake, 16)) * 1.1 + 50.2) * scale


@pytest.mark.parametrize("kind", ["lattice", "far clusters", "tiny", "huge", "offset gaussian"])
@pytest.mark.parametrize(
    ("n_real", "n_fake", "chunk_size", "k"), [(12, 9, 1, 1), (150, 120, 50, 5), (300, 260, 128, 3)]
)
def test_knn_equals_float64_brute_force_exactly(kind, n_real, n_fake, chunk_size, k):
    real, fake = _points(kind, n_real, n_fake, seed=n_real + k)
    assert knn_scores(real, fake, k=k, chunk_size=chunk_size) == _exact_reference(real, fake, k)
    sq_real = ((real[:, None] - real[None]) ** 2).sum(-1)
    # the radii themselves equal up to the float64 summation order (numpy's and torch's differ in the last bit)
    np.testing.assert_allclose(
        kth_neighbour_distances(real, k=k, chunk_size=chunk_size), np.sqrt(np.sort(sq_real, axis=1)[:, k]), rtol=1e-15
    )
    sq_cross = ((fake[:, None] - real[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(
        real_ball_counts(real, fake, k=k, chunk_size=chunk_size),
        (sq_cross < np.sort(sq_real, axis=1)[None, :, k]).sum(axis=1),
    )


def test_knn_of_integer_and_float32_inputs_equals_their_float64_values():
    real, fake = _points("lattice", 150, 120, seed=4)
    real, fake = (real - 1e6).astype(np.int64), (fake - 1e6).astype(np.int64)
    assert knn_scores(real, fake, k=3, chunk_size=50) == _exact_reference(real.astype(float), fake.astype(float), 3)
    small = (np.random.default_rng(5).standard_normal((200, 8)) * 1e3).astype(np.float32)
    assert knn_scores(small[:120], small[120:], k=3) == _exact_reference(
        small[:120].astype(float), small[120:].astype(float), 3
    )


@pytest.mark.parametrize("kind", ["lattice", "far clusters"])
def test_knn_without_the_float64_recheck_is_wrong(monkeypatch, kind):
    # The same data with the rounding bound set to zero (decisions on float32 values alone) gives other
    # scores: the recheck is what makes them exact.
    real, fake = _points(kind, 300, 260, seed=3)
    expected = _exact_reference(real, fake, 5)
    monkeypatch.setattr(knn_module, "_rounding_bound", lambda length: 0.0)
    monkeypatch.setattr(knn_module, "_absolute_bound", lambda points: 0.0)
    assert knn_scores(real, fake, k=5, chunk_size=64) != expected


def test_real_ball_counts_match_density(point_sets):
    real, fake = point_sets
    counts = real_ball_counts(real, fake, k=5, chunk_size=64)
    scores = knn_scores(real, fake, k=5)
    assert counts.sum() / (5 * len(fake)) == pytest.approx(scores["density"])
    assert (counts > 0).mean() == pytest.approx(scores["precision"])


@pytest.mark.parametrize(
    "real, fake, k, message",
    [
        (np.zeros((5, 3)), np.zeros((10, 3)), 5, r"at least k\+1"),
        (np.zeros((10, 3)), np.zeros((10, 4)), 2, "dimension"),
        (np.zeros((10, 3)), np.full((10, 3), np.nan), 2, "NaN"),
        (np.zeros((10, 3)), np.zeros((10, 3)), 0, "k must be"),
        (np.zeros(10), np.zeros((10, 3)), 2, "2-D"),
    ],
)
def test_knn_bad_input(real, fake, k, message):
    with pytest.raises(LatentAtlasError, match=message):
        knn_scores(real, fake, k=k)


# ----------------------------------------------------------------------------- FID / KID on features


def _scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(ca @ cb).real
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * np.trace(root))


# fewer rows than dimensions (low-rank path: the Gram matrix of either side) and more (eigh path)
@pytest.mark.parametrize(("n_a", "n_b"), [(20, 25), (25, 20), (200, 205)])
def test_fid_matches_scipy_sqrtm(n_a, n_b):
    rng = np.random.default_rng(n_a)
    a = rng.standard_normal((n_a, 30)) @ rng.standard_normal((30, 30))
    b = rng.standard_normal((n_b, 30)) * 0.7 + 0.4
    assert fid(a, b) == pytest.approx(_scipy_fid(a, b), rel=1e-6, abs=1e-6)


def test_fid_self_zero_and_shift_positive():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((100, 8))
    assert fid(a, a) == pytest.approx(0.0, abs=1e-8)
    assert fid(a, a + 2.0) == pytest.approx(8 * 4.0)  # a pure shift adds ||shift||²


def test_kid_unbiased_near_zero_for_same_distribution():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((400, 16)), rng.standard_normal((400, 16))
    mean, error = kid(a, b, n_subsets=20, subset_size=200)
    assert abs(mean) < 4 * error + 1e-3
    far_mean, _ = kid(a, b + 1.0, n_subsets=20, subset_size=200)
    assert far_mean > 0.1


def test_kid_precomputed_kernels_equal_per_subset(monkeypatch):
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((60, 8)), rng.standard_normal((50, 8)) + 0.2
    whole = kid(a, b, n_subsets=7, subset_size=30, seed=1)
    monkeypatch.setattr(inception_module, "KID_FULL_KERNEL", 10)
    per_subset = kid(a, b, n_subsets=7, subset_size=30, seed=1)
    assert whole == pytest.approx(per_subset, rel=1e-12)


def test_kid_averages_to_the_full_set_unbiased_mmd():
    # The unbiased MMD² of random half-size subsets is, on average, the U-statistic of the full sets.
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((12, 3)), rng.standard_normal((12, 3)) + 0.5

    def kernel(x, y):
        return (x @ y.T / 3 + 1) ** 3

    m = 12
    expected = (
        (kernel(a, a).sum() - np.trace(kernel(a, a))) / (m * (m - 1))
        + (kernel(b, b).sum() - np.trace(kernel(b, b))) / (m * (m - 1))
        - 2 * kernel(a, b).mean()
    )
    mean, error = kid(a, b, n_subsets=4000, subset_size=1000)
    assert error > 0  # half-size subsets differ from each other
    assert mean == pytest.approx(expected, abs=4 * error)  # within 4 standard errors


@pytest.fixture(scope="module")
def face_images() -> np.ndarray:
    from latentatlas.data import synthetic_faces

    images, _ = synthetic_faces(24, image_size=32, seed=7)
    return images


@pytest.mark.slow
def test_inception_fid_self_zero_and_shifted_positive(face_images):
    features = inception_features(face_images[:8], batch_size=8)
    assert features.shape == (8, 2048) and np.isfinite(features).all()
    assert fid(features, features) == pytest.approx(0.0, abs=1e-3)
    darker = (face_images[:8] // 2).astype(np.uint8)
    assert fid(features, inception_features(darker, batch_size=8)) > 1.0


def test_inception_rejects_wrong_shape():
    with pytest.raises(LatentAtlasError, match="uint8"):
        inception_features(np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(LatentAtlasError, match="uint8"):
        inception_features(np.zeros((2, 32, 32, 3), np.float32))


# ----------------------------------------------------------------------------- faces


def test_face_detector_finds_faces_not_noise(face_images):
    detector = FaceDetector()
    assert detector.detect(face_images).mean() >= 0.9
    noise = np.random.default_rng(0).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    flat = np.full((5, 32, 32, 3), 128, np.uint8)
    assert face_rate(noise) == 0.0
    assert face_rate(flat) == 0.0


# ----------------------------------------------------------------------------- a run


def test_evaluate_cli_end_to_end(tiny_run_copy, capsys):
    run = tiny_run_copy
    arguments = ["--samplers", "gaussian,diagonal-gaussian,uniform-box", "-n", "60", "--k", "3"]
    code = main(["evaluate", str(run.path), *arguments, "--instruments", "quick"])
    assert code == 0
    out = capsys.readouterr().out
    assert "| name |" in out and "reconstruction" in out and "Ranking" in out and "Seed claims" in out
    assert " ± " in out  # every score with its interval
    folder = run.path / "evaluation"
    data = json.loads((folder / "evaluation.json").read_text())
    names = [row["name"] for row in data["rows"]]
    assert names == ["real (held-out)", "reconstruction", "gaussian", "diagonal-gaussian", "uniform-box"]
    table = pd.read_csv(folder / "evaluation.csv")
    assert {"precision", "precision_low", "precision_high", "coverage", "face_rate", "face_rate_low"} <= set(
        table.columns
    )
    assert (folder / "evaluation.md").read_text().startswith("| name |")
    assert [f["file"] for f in data["figures"]] == ["leaderboard.png", "frontier.png", "scores.png", "samples.png"]
    assert all((folder / f["file"]).is_file() and f["caption"] for f in data["figures"])
    rows = table.set_index("name")
    assert (rows["n"] == 60).all()
    assert np.isnan(rows.loc["reconstruction", "precision"])
    assert (rows["precision_low"].dropna() <= rows["precision"].dropna()).all()
    assert (rows["precision"].dropna() <= rows["precision_high"].dropna()).all()
    real, gaussian, box = rows.loc["real (held-out)"], rows.loc["gaussian"], rows.loc["uniform-box"]
    # Training z-points lie in the held-out support; a full-covariance Gaussian mostly does; a box in 16-d
    # (volume far from the bulk) almost never: real separation, not a tie at 0.
    assert real["precision"] >= 0.75 and real["coverage"] >= 0.6
    assert gaussian["precision"] >= 0.4
    assert box["precision"] <= 0.1 and box["coverage"] <= 0.1
    assert real["precision"] - box["precision"] >= 0.6
    assert 0.6 <= real["density"] <= 1.5
    assert 30.0 < real["mahalanobis_median_pct"] < 70.0 and box["mahalanobis_median_pct"] > 90.0
    assert real["face_rate"] >= 0.9 and box["face_rate"] < real["face_rate"]
    assert np.isnan(real["latent_copy_share"])  # training points are not "copies" of themselves
    assert box["latent_copy_share"] == 0.0 and gaussian["latent_copy_ratio"] > 0.5
    # a held-out likelihood only where the sampler defines a density: the box's is left empty, not an error
    assert np.isfinite(gaussian["log_likelihood"]) and np.isnan(box["log_likelihood"])
    findings = {f["key"]: f for f in data["findings"]}
    assert findings["uniform-box-misses"]["verdict"] == "agrees"
    assert findings["full-covariance-hits"]["verdict"] == "agrees"
    assert any(line.startswith("precision (higher is better): gaussian") for line in data["ranking"])


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("dlib") is None or importlib.util.find_spec("face_recognition_models") is None,
    reason="dlib-bin / face-recognition-models not installed",
)
def test_evaluate_full_instruments(tiny_run_copy, monkeypatch):
    from latentatlas.evaluation.faces import SideCalibration
    from latentatlas.evaluation.instruments import cnn_faces

    # The tiny run's 32 px reconstructions hold no face dlib's CNN detector finds, so by default the
    # face-embedding scores and face copies are withheld (asserted at the end); with no minimum share they are
    # computed, which is what this test exercises.
    monkeypatch.setattr(cnn_faces, "MIN_FACE_SHARE", 0.0)
    result = evaluate_run(
        tiny_run_copy, samplers=["uniform-box", "resample"], n=24, k=3, instruments="full", progress=False
    )
    real, box = result.row("real (held-out)").scores, result.row("uniform-box").scores
    for key in ("fid", "fid_infinity", "kid", "cnn_face_rate", "fd_face", "face_precision"):
        assert key in real and key in box, key
    assert "face_copy_share" in box and "face_copy_share" not in real  # training images do not copy themselves
    assert real["fid"].value < box["fid"].value
    assert real["fd_face"].value < box["fd_face"].value
    assert real["cnn_face_rate"].value > box["cnn_face_rate"].value
    assert real["fid"].low <= real["fid"].value <= real["fid"].high
    assert (tiny_run_copy.path / "cache" / "features" / "real_embeddings.npy").is_file()
    detector = result.settings["cnn_face_detector"]
    assert detector["side"] == detector["calibration"]["side"] in (128, 160, 192, 256)
    assert detector["calibration"]["images"] == 64
    assert result.settings["face_copy_reference"] == 300  # every training image, not only the reference row's
    # copies among decoded images: the reconstructions of held-out images are the baseline (ratio 1 by definition),
    # resample's decodings of jittered training z-points lie closer to the decoded training images
    baseline, copies = result.row("reconstruction").scores, result.row("resample").scores
    assert baseline["face_copy_ratio"].value == pytest.approx(1.0)
    assert copies["face_copy_ratio"].value < 0.9  # 0.73 on this tiny run of 32 px synthetic faces
    assert copies["latent_copy_share"].value > 0.8  # 0.875 of 24
    monkeypatch.undo()
    calibration = SideCalibration(
        **{**detector["calibration"], "found": {int(k): v for k, v in detector["calibration"]["found"].items()}}
    )
    assert "finds a face in 0% of 64 reconstructions" in str(cnn_faces.faces_withheld(calibration))


def test_n_larger_than_the_held_out_set_is_capped(tiny_run_copy, capsys):
    result = evaluate_run(
        tiny_run_copy, samplers=["gaussian"], n=5000, k=3, instruments="quick", faces=False, progress=False, write=False
    )
    assert {row.n for row in result.rows} == {100} and result.settings["n"] == 100
    assert "-n 5000 is larger than the 100 held-out points; every row uses n = 100" in capsys.readouterr().err


def test_evaluate_run_latent_only_and_cache_free(tiny_run_copy):
    table = evaluate_run(
        tiny_run_copy, samplers=["diagonal-gaussian"], n=30, k=3, fid_scores=False, faces=False, progress=False
    ).table
    assert list(table["name"]) == ["real (held-out)", "reconstruction", "diagonal-gaussian"]
    assert "fid" not in table.columns and "face_rate" not in table.columns
    real = table.set_index("name").loc["real (held-out)"]
    assert 0.9 <= real["inside_radius"] <= 1.0
    assert 30.0 < real["mahalanobis_median_pct"] < 70.0  # training points: about half are closer than the median
    folder = tiny_run_copy.path / "evaluation"
    assert not (folder / "real_features.npy").exists()
    assert (folder / "scores.png").is_file() and not (folder / "samples.png").exists()


def test_evaluate_points_columns(tiny_run_copy):
    held = tiny_run_copy.zpoints("val")[:4]
    far = np.full((2, tiny_run_copy.latent_dim), 50.0, np.float32)
    frame = evaluate_points(tiny_run_copy, np.concatenate([held, far]), k=3)
    assert list(frame.columns) == ["mahalanobis_pct", "norm", "inside_radius", "real_balls", "in_real_support", "face"]
    assert frame["in_real_support"].iloc[:4].all() and not frame["in_real_support"].iloc[4:].any()
    assert (frame["mahalanobis_pct"].iloc[4:] == 100.0).all()
    assert frame["face"].dtype == bool


def test_evaluate_points_uses_given_images_instead_of_decoding(tiny_run_copy, monkeypatch):
    z = tiny_run_copy.zpoints("val")[:3]
    images = tiny_run_copy.decode(z)
    expected = evaluate_points(tiny_run_copy, z, k=3)["face"]
    monkeypatch.setattr(type(tiny_run_copy), "decode", lambda *a, **k: pytest.fail("decoded twice"))
    given = evaluate_points(tiny_run_copy, z, k=3, images=images)["face"]
    assert list(given) == list(expected)
    with pytest.raises(LatentAtlasError, match="2 images for 3 latent vectors"):
        evaluate_points(tiny_run_copy, z, k=3, images=images[:2])


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--samplers", "nope", "--no-fid"], "unknown sampler"),
        (["-n", "3", "--k", "5", "--no-fid"], "at least k+1"),
        (["--k", "0", "--no-fid"], "k must be"),
        (["--samplers", "gaussian", "--b", "1.5", "--no-fid"], "--b does not apply to sampler gaussian"),
        (["--samplers", "gaussian,resample", "--b", "2"], "--b applies to none of the samplers gaussian, resample"),
        (["--samplers", "uniform-box", "--b", "-1", "--no-fid"], "b must be"),
    ],
)
def test_evaluate_cli_errors(tiny_run, capsys, arguments, message):
    assert main(["evaluate", str(tiny_run.path), *arguments]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tiny_run.path / "evaluation").exists()


def test_evaluate_cli_passes_sampler_options_to_the_samplers_that_have_them(tiny_run_copy, capsys):
    arguments = ["--samplers", "uniform-box,gaussian", "--b", "1.5", "-n", "20", "--k", "3", "--instruments", "quick"]
    assert main(["evaluate", str(tiny_run_copy.path), *arguments, "--no-faces"]) == 0
    entries = sorted(path.name for path in (tiny_run_copy.path / "evaluation-entries").glob("*.json"))
    assert "uniform-box-b=1.5-n20-seed0.json" in entries and "gaussian-n20-seed0.json" in entries
    settings = json.loads((tiny_run_copy.path / "evaluation" / "evaluation.json").read_text())["settings"]
    assert settings["sampler_options"] == {"uniform-box": {"b": 1.5}}


def test_evaluate_without_held_out_data(tiny_run_copy, capsys):
    meta = tiny_run_copy.metadata()
    meta["subset"] = "train"
    meta.to_parquet(tiny_run_copy.zpoints_file("zpoints.parquet"), index=False)
    assert main(["evaluate", str(tiny_run_copy.path), "-n", "10", "--no-fid"]) == 2
    assert "no held-out" in capsys.readouterr().err


def test_evaluate_not_a_run(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path), "--no-fid"]) == 2
    assert "not a latentatlas run folder" in capsys.readouterr().err


def test_saved_samplers_are_reused_not_refitted(tiny_run_copy, monkeypatch, capsys):
    from latentatlas.pipelines.evaluate import fitted_sampler
    from latentatlas.pipelines.sample import sample_run
    from latentatlas.samplers import SAMPLERS

    run = tiny_run_copy
    sample_run(run, "gaussian", n=4)
    train_z = run.zpoints("train")
    gaussian = SAMPLERS["gaussian"]
    monkeypatch.setattr(gaussian, "fit", lambda self, z, **_: pytest.fail("refitted a saved sampler"))
    reused = fitted_sampler(run, "gaussian", {}, train_z, progress=True)
    assert np.allclose(reused.mean_, train_z.mean(axis=0), atol=1e-5)
    assert "fitting" not in capsys.readouterr().err
    with pytest.raises(pytest.fail.Exception, match="refitted"):  # other training z-points: fitted anew
        fitted_sampler(run, "gaussian", {}, train_z[:-1], progress=True)
    assert "fitting gaussian on" in capsys.readouterr().err


def test_a_slow_fit_is_kept_for_the_next_evaluation_and_only_for_its_store(tiny_run_copy, monkeypatch, capsys):
    from latentatlas.io import read_json, write_json
    from latentatlas.pipelines import evaluate
    from latentatlas.samplers import SAMPLERS

    common = dict(samplers=["gmm"], n=30, k=3, instruments="quick", faces=False)
    evaluate_run(tiny_run_copy, **common, write=False)
    assert not (tiny_run_copy.path / "cache" / "samplers").exists()  # write=False leaves the run untouched
    evaluate_run(tiny_run_copy, **common)
    assert not (tiny_run_copy.path / "cache" / "samplers").exists()  # a fit under KEEP_FIT_SECONDS is redone
    monkeypatch.setattr(evaluate, "KEEP_FIT_SECONDS", 0.0)
    first = evaluate_run(tiny_run_copy, **common)
    (kept,) = (tiny_run_copy.path / "cache" / "samplers").iterdir()
    assert kept.name.startswith("gmm-") and (kept / "sampler" / "sampler.json").is_file()
    real_fit = SAMPLERS["gmm"].fit
    monkeypatch.setattr(SAMPLERS["gmm"], "fit", lambda self, z, **_: pytest.fail("refitted a kept fit"))
    capsys.readouterr()
    second = evaluate_run(tiny_run_copy, **common)
    assert f"gmm: reusing the fit in {kept}" in capsys.readouterr().err
    assert second.row("gmm").scores == first.row("gmm").scores  # the same fit, the same draws
    info = read_json(kept / "info.json")
    write_json(kept / "info.json", {**info, "store_id": "another-store"})  # z-points encoded anew: fitted anew
    monkeypatch.setattr(SAMPLERS["gmm"], "fit", real_fit)
    evaluate_run(tiny_run_copy, **common)
    assert "fitting gmm on" in capsys.readouterr().err


def test_a_fit_that_cannot_be_kept_is_named_and_the_evaluation_goes_on(tiny_run_copy, monkeypatch, capsys):
    from latentatlas.pipelines import evaluate

    monkeypatch.setattr(evaluate, "KEEP_FIT_SECONDS", 0.0)
    (tiny_run_copy.path / "cache").mkdir(exist_ok=True)
    (tiny_run_copy.path / "cache" / "samplers").write_text("a file where the kept fits would go")
    result = evaluate_run(tiny_run_copy, samplers=["gmm"], n=30, k=3, instruments="quick", faces=False)
    assert "gmm: the fit is not kept for the next evaluation" in capsys.readouterr().err
    assert [row.name for row in result.rows][2:] == ["gmm"]


def test_evaluations_accumulate_per_sampler_n_and_seed(tiny_run_copy, capsys):
    def evaluate(samplers, n, seed=0):
        options = dict(k=3, instruments="quick", faces=False, progress=False)
        return evaluate_run(tiny_run_copy, samplers=samplers, n=n, seed=seed, **options)

    evaluate(["gaussian", "uniform-box"], 40)
    assert "replacing" not in capsys.readouterr().err
    merged = evaluate(["gaussian"], 30)  # another n: a new entry beside the first evaluation, not in this table
    assert [(row.name, row.n) for row in merged.rows] == [
        ("real (held-out)", 30),
        ("reconstruction", 30),
        ("gaussian", 30),
    ]
    assert merged.other_n == [40]
    again = evaluate(["uniform-box"], 40)  # the same entry again: replaced, and said so
    err = capsys.readouterr().err
    assert "replacing the evaluation entry uniform-box-n40-seed0.json" in err
    assert [(row.name, row.n) for row in again.rows] == [
        ("real (held-out)", 40),
        ("reconstruction", 40),
        ("gaussian", 40),
        ("uniform-box", 40),
    ]
    assert again.other_n == [30]
    assert len(list((tiny_run_copy.path / "evaluation-entries").glob("*.json"))) == 7
    seeded = evaluate(["gaussian"], 40, seed=1)  # another seed at the same n: beside the seed-0 rows
    assert [(row.name, row.seed) for row in seeded.rows if row.kind == "sampler"] == [
        ("gaussian", 0),
        ("uniform-box", 0),
        ("gaussian", 1),
    ]
    table = pd.read_csv(tiny_run_copy.path / "evaluation" / "evaluation.csv")
    assert len(table) == 7 and sorted(set(table["n"])) == [40]


def test_evaluate_reports_each_row_when_stderr_is_not_a_terminal(tiny_run_copy, capsys):
    evaluate_run(tiny_run_copy, samplers=["gaussian"], n=20, k=3, instruments="quick", faces=False, progress=True)
    pattern = re.compile(r"latentatlas: evaluate: (\d)/3 rows, \d\d:\d\d elapsed(, \d\d:\d\d left)? \((.+), \d+ s\)")
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("latentatlas: evaluate:")]
    found = [pattern.fullmatch(line) for line in lines]
    assert all(found), lines  # one line per row, with the row's name and seconds
    assert [(m.group(1), m.group(3)) for m in found if m] == [
        ("1", "real (held-out)"),
        ("2", "reconstruction"),
        ("3", "gaussian"),
    ]


def test_feature_cache_says_what_it_computes_once_then_reuses_it(tmp_path, monkeypatch, capsys):
    from latentatlas.pipelines import feature_cache

    calls = []

    def fake_features(images, device=None, progress=True):
        calls.append(len(images))
        return np.arange(len(images) * 3, dtype=np.float64).reshape(len(images), 3)

    monkeypatch.setattr(feature_cache, "inception_features", fake_features)
    cache = feature_cache.FeatureCache(tmp_path, seed=0, device=None, progress=True)
    rows, images = np.arange(4), np.zeros((4, 8, 8, 3), np.uint8)
    first = cache.features("real_features", rows, images)
    assert f"computing Inception features of 4 real images, cached in {tmp_path}" in capsys.readouterr().err
    again = cache.features("real_features", rows, images)
    assert calls == [4] and np.array_equal(first, again) and capsys.readouterr().err == ""
    cache.features("real_features", rows[:3], images[:3])  # other rows: recomputed, never a stale reuse
    assert calls == [4, 3]
