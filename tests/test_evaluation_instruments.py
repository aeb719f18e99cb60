"""Issue 10's instruments: dlib faces and embeddings, intervals, FID∞, copy detection."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation import copies as faces_copies
from latentatlas.evaluation import faces as faces_module
from latentatlas.evaluation import workers
from latentatlas.evaluation.copies import SAME_IDENTITY_DISTANCE, copy_scores, latent_threshold
from latentatlas.evaluation.faces import CnnFaceDetector, FaceDetector, FaceEmbedder
from latentatlas.evaluation.inception import fid
from latentatlas.evaluation.intervals import extrapolated_fid, mean_interval, paired_interval, significantly_different
from latentatlas.evaluation.knn import nearest_distances
from latentatlas.evaluation.table import Score

dlib_missing = importlib.util.find_spec("dlib") is None or importlib.util.find_spec("face_recognition_models") is None
needs_dlib = pytest.mark.skipif(dlib_missing, reason="dlib-bin / face-recognition-models not installed")


@pytest.fixture(scope="module")
def faces64() -> np.ndarray:
    from latentatlas.data import synthetic_faces

    images, _ = synthetic_faces(8, image_size=64, seed=3)
    return images


@needs_dlib
@pytest.mark.slow
def test_cnn_detector_finds_faces_not_noise(faces64):
    detector = CnnFaceDetector()
    found = detector.detect(faces64)
    assert found.found.mean() >= 0.75
    assert np.all(found.confidence[found.found] > 0)
    noise = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    none = detector.detect(noise)
    assert not none.found.any() and np.isnan(none.confidence).all()


@needs_dlib
@pytest.mark.slow
def test_embedding_stable_under_one_pixel_shift_not_across_faces(faces64):
    embedder = FaceEmbedder()
    original = embedder.embed(faces64)
    shifted = embedder.embed(np.roll(faces64, 1, axis=2))
    assert original.shape == (8, 128)
    shift_distance = np.linalg.norm(original - shifted, axis=1)
    between = np.linalg.norm(original[:, None] - original[None], axis=-1)[np.triu_indices(8, 1)]
    assert np.median(shift_distance) < 0.5 * np.median(between)
    assert np.median(shift_distance) < 0.25


@needs_dlib
@pytest.mark.slow
def test_detector_side_is_calibrated_on_faces_and_falls_back_on_noise(faces64):
    calibration = faces_module.calibrated_side(faces64, sides=(96, 192, 256), target=0.75)
    assert calibration.side in (96, 192) and calibration.found[calibration.side] >= 0.75
    assert list(calibration.found) == sorted(calibration.found)[: len(calibration.found)]  # cheapest first, then stop
    noise = np.random.default_rng(1).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    fallback = faces_module.calibrated_side(noise, sides=(96, 128))
    assert fallback.side == 128 and fallback.found == {96: 0.0, 128: 0.0}
    with pytest.raises(LatentAtlasError, match="calibration target"):
        faces_module.calibrated_side(faces64, target=1.5)


@needs_dlib
@pytest.mark.slow
def test_worker_processes_give_the_same_detections_and_embeddings(faces64, monkeypatch):
    images = np.concatenate([faces64, faces64[:, ::-1]])  # 16 images, 2 workers
    serial_confidence = faces_module._detect_block(images, 192)
    serial_embeddings = faces_module._embed_block(images, 256)
    monkeypatch.setattr(workers, "PARALLEL_MIN_IMAGES", 2)
    monkeypatch.setattr(workers, "BLOCK", 4)
    monkeypatch.setattr(workers, "usable_cores", lambda: 2)
    parallel = CnnFaceDetector(side=192).detect(images)
    np.testing.assert_array_equal(np.isnan(parallel.confidence), np.isnan(serial_confidence))
    np.testing.assert_allclose(parallel.confidence, serial_confidence, equal_nan=True)
    np.testing.assert_allclose(FaceEmbedder().embed(images), serial_embeddings)
    pool = workers._pool
    assert pool is not None
    CnnFaceDetector(side=192).detect(images[:4])
    assert workers._pool is pool  # the workers (and their loaded models) serve every call


def test_haar_cascade_in_worker_processes_finds_the_same_faces(faces64, monkeypatch):
    noise = np.random.default_rng(2).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    images = np.concatenate([faces64, noise, faces64[:, ::-1]])
    here = FaceDetector().detect(images)
    assert here[:8].mean() > 0.5 and not here[8:16].any()  # a comparison of faces and no faces, not of zeros
    monkeypatch.setattr(workers, "PARALLEL_MIN_IMAGES", 2)
    monkeypatch.setattr(workers, "BLOCK", 5)
    monkeypatch.setattr(workers, "usable_cores", lambda: 2)
    np.testing.assert_array_equal(FaceDetector().detect(images, processes=True), here)
    assert workers._pool is not None


def test_a_worker_starts_without_opencv_and_the_probe_restores_the_threads(monkeypatch):
    import sys

    import torch

    before = torch.get_num_threads()
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now fails, as without libGL
    with workers.like_a_worker():  # runs the workers' initializer: it must not need OpenCV for Inception
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_face_instruments_refuse_tiny_images():
    with pytest.raises(LatentAtlasError, match="at least 32 needed"):
        CnnFaceDetector().detect(np.zeros((2, 16, 16, 3), np.uint8))
    with pytest.raises(LatentAtlasError, match="at least 32 needed"):
        FaceEmbedder().embed(np.zeros((2, 16, 16, 3), np.uint8))


def test_face_models_missing_gives_install_hint(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        faces_module.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "face_recognition_models" else real_find_spec(name, *a),
    )
    with pytest.raises(LatentAtlasError, match=r"pip install 'latentatlas\[faces\]'"):
        faces_module.face_model_path("detector")


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("latentatlas: error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("missing", ["dlib", "face_recognition_models"])
def test_cli_evaluate_full_without_face_models_names_the_install_and_runs_the_rest(
    missing, tiny_run_copy, monkeypatch, capsys
):
    from latentatlas.cli import main
    from latentatlas.io import read_json

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        faces_module.importlib.util, "find_spec", lambda name, *a: None if name == missing else real_find_spec(name, *a)
    )
    argv = ["evaluate", str(tiny_run_copy.path), "--instruments", "full", "--no-fid", "-n", "10", "--k", "3"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    hinted = [line for line in err.splitlines() if faces_module.FACE_MODELS_HINT in line]
    assert hinted == [
        f"latentatlas: the face instruments need dlib and its models: {faces_module.FACE_MODELS_HINT}; "
        "evaluating without the dlib face instruments"
    ]
    assert "Traceback" not in err
    record = read_json(tiny_run_copy.path / "evaluation" / "evaluation.json")["rows"][0]
    assert "face_rate" in record and "precision" in record
    assert not any(key.startswith(("cnn_", "fd_face", "face_copy")) for key in record)


def test_cli_evaluate_full_on_images_smaller_than_the_detector_can_use(tmp_path, capsys):
    from latentatlas.cli import main
    from latentatlas.data import DataConfig
    from latentatlas.model import ModelConfig
    from latentatlas.store import Run, encode_run
    from latentatlas.train import TrainConfig, train

    data = DataConfig(source="synthetic-faces", image_size=16, synthetic_count=40)
    model = ModelConfig(image_size=16, channels=(8, 16), latent_dim=4)
    run = Run(train(tmp_path / "run", data, model, TrainConfig(epochs=1, batch_size=8), progress=False, device="cpu"))
    encode_run(run, progress=False)
    assert main(["evaluate", str(run.path), "--instruments", "full", "-n", "4", "--k", "2"]) == 2
    line = _one_line_error(capsys)
    assert "the dlib face instruments need images of at least 32x32 pixels, this run's are 16x16" in line
    assert "use --instruments standard (Haar faces) or --no-faces" in line
    assert not (run.path / "evaluation").exists() and not (run.path / "cache").exists()
    # the Haar detector upscales any size: the quick set runs on the same run
    assert (
        main(["evaluate", str(run.path), "--instruments", "quick", "--samplers", "gaussian", "-n", "4", "--k", "2"])
        == 0
    )
    assert (run.path / "evaluation" / "evaluation.json").is_file()


def test_fid_infinity_recovers_a_known_frechet_distance():
    # N(0, I) vs N(mu, diag(s²)) in 32-d: FD = |mu|² + sum (1 - s)². At n = 400 generated points FID is
    # biased upward by ~0.7; averaged over 10 draws, FID∞ lands on the truth.
    rng = np.random.default_rng(0)
    dim = 32
    mu, s = np.full(dim, 0.1), np.linspace(0.6, 1.4, dim)
    truth = float((mu**2).sum() + ((1 - s) ** 2).sum())
    reference = rng.standard_normal((20000, dim))
    at_n, infinity = [], []
    for repetition in range(10):
        generated = rng.standard_normal((400, dim)) * s + mu
        at_n.append(fid(generated, reference))
        value, points = extrapolated_fid(fid, generated, reference, seed=repetition)
        infinity.append(value)
    assert [size for size, _ in points] == [80, 140, 200, 260, 320, 400]
    assert np.mean(at_n) - truth > 0.4
    assert abs(np.mean(infinity) - truth) < 0.2


def test_mean_intervals_cover_the_truth_at_the_nominal_rate():
    rng = np.random.default_rng(0)
    truth = 0.3
    hits = 0
    for repetition in range(100):
        values = rng.random(200) < truth
        score = mean_interval(values, resamples=1000, seed=repetition)
        hits += score.low <= truth <= score.high
    assert hits >= 90


def test_frechet_intervals_cover_the_distance_of_large_sets():
    # With the bias small (n >> dim), the bootstrap interval of FID covers the true distance.
    rng = np.random.default_rng(1)
    dim, truth = 4, 4 * 0.5**2
    hits = 0
    for repetition in range(20):
        a = rng.standard_normal((2000, dim))
        b = rng.standard_normal((2000, dim)) + 0.5
        score = paired_interval(fid, a, b, resamples=40, seed=repetition)
        hits += score.low <= truth <= score.high
    assert hits >= 17


@pytest.mark.parametrize("threads", [2, 3])
def test_frechet_draws_in_threads_are_the_draws_of_one_thread(threads):
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((300, 64)), rng.standard_normal((250, 64)) * 1.2 + 0.1
    one = paired_interval(fid, a, b, resamples=12, seed=5)
    assert paired_interval(fid, a, b, resamples=12, seed=5, threads=threads) == one
    assert paired_interval(fid, a, b, resamples=12, seed=6, threads=threads) != one  # the seed does matter
    assert extrapolated_fid(fid, a, b, seed=5, threads=threads) == extrapolated_fid(fid, a, b, seed=5)


def test_significance_needs_disjoint_intervals():
    assert significantly_different(Score(0.9, 0.85, 0.95), Score(0.5, 0.4, 0.6))
    assert not significantly_different(Score(0.9, 0.7, 0.95), Score(0.6, 0.5, 0.75))
    assert not significantly_different(Score(0.9), Score(0.1))


def test_exact_copies_are_flagged_in_embedding_and_latent_space():
    rng = np.random.default_rng(2)
    train = rng.standard_normal((300, 128)) * 0.1
    held = rng.standard_normal((100, 128)) * 0.1
    copies = train[rng.choice(300, 100)]
    fresh = rng.standard_normal((100, 128)) * 0.1
    held_d = nearest_distances(held, train)
    flagged = copy_scores(nearest_distances(copies, train), held_d, SAME_IDENTITY_DISTANCE)
    assert flagged.share == 1.0 and flagged.ratio == 0.0
    assert flagged.held_out_share < 0.05  # held-out faces are other people
    unflagged = copy_scores(nearest_distances(fresh, train), held_d, SAME_IDENTITY_DISTANCE)
    assert unflagged.share <= 0.05 and 0.9 < unflagged.ratio < 1.1
    latent = copy_scores(nearest_distances(copies, train), held_d, latent_threshold(held_d))
    assert latent.share == 1.0 and latent.held_out_share < 0.05


@pytest.mark.parametrize(("median", "threshold"), [(2.0, SAME_IDENTITY_DISTANCE), (0.4, 0.2), (1.2, 0.6)])
def test_face_copy_threshold_is_the_stricter_of_dlibs_and_the_relative_rule(median, threshold):
    held_out = np.array([median * 0.5, median, median * 1.5])
    assert faces_copies.face_threshold(held_out) == pytest.approx(threshold)
    with pytest.raises(LatentAtlasError, match="coincide"):
        faces_copies.face_threshold(np.zeros(3))


def test_nearest_distances_match_brute_force():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((37, 5)), rng.standard_normal((53, 5))
    expected = np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1)).min(axis=1)
    np.testing.assert_allclose(nearest_distances(a, b, chunk_size=8), expected, rtol=1e-12)
    # where float32 alone goes wrong: ties on a grid far from the origin, two clusters 2e4 apart, an exact copy
    grid = np.floor(rng.random((60, 4)) * 3) + 1e6
    far = np.concatenate([rng.standard_normal((30, 6)) * 1e-3, rng.standard_normal((30, 6)) * 1e-3 + 2e4])
    for points, reference in ((grid[:20], grid[20:]), (far[::2], far[1::2]), (far[:5], far)):
        brute = np.sqrt(((points[:, None] - reference[None]) ** 2).sum(-1)).min(axis=1)
        np.testing.assert_allclose(nearest_distances(points, reference, chunk_size=7), brute, rtol=1e-12, atol=0)
    assert (nearest_distances(far[:5], far) == 0).all()
    with pytest.raises(LatentAtlasError, match="dimension"):
        nearest_distances(a, b[:, :4])


def test_held_out_log_likelihood_needs_a_density():
    from scipy.stats import multivariate_normal

    from latentatlas.evaluation.instruments import held_out_log_likelihood
    from latentatlas.samplers import make_sampler

    z = np.random.default_rng(4).standard_normal((50, 3))
    box = make_sampler("uniform-box").fit(z)
    with pytest.raises(LatentAtlasError, match="defines no density"):
        held_out_log_likelihood(box, z)

    class FittedGaussian:  # any object with score_samples(z) -> one log-density per row
        def score_samples(self, points):
            return multivariate_normal(np.zeros(3), np.eye(3)).logpdf(points)

    values = held_out_log_likelihood(FittedGaussian(), z)
    expected = -0.5 * (z**2).sum(axis=1) - 1.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(values, expected)
