"""dlib's face-recognition ResNet read from its .dat and run through ONNX Runtime (evaluation.dlib_resnet):
the same descriptors as dlib's compute_face_descriptor, one clear line for a bad file, the export cached per
file, and dlib's own network as the fallback."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation import dlib_resnet
from latentatlas.evaluation import faces as faces_module

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("dlib") is None or importlib.util.find_spec("face_recognition_models") is None,
        reason="dlib-bin / face-recognition-models not installed",
    ),
    pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed"),
]

# float32 through a different convolution code: dlib's own descriptors differ from the port's by ~3e-7
# (measured); a descriptor's entries are ~0.1 and "same person" is a distance below 0.6.
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def model_file() -> Path:
    return faces_module.face_model_path("embedding")


def _dlib_and_port(images: np.ndarray, model: Path) -> tuple[np.ndarray, np.ndarray]:
    """dlib's compute_face_descriptor(image, landmarks) and the port on dlib's get_face_chip of the same."""
    dlib = faces_module._dlib()
    _, landmarks, network = faces_module._dlib_models()
    side = faces_module.DLIB_SIDE
    frame = dlib.rectangle(0, 0, side - 1, side - 1)
    reference, chips = [], []
    for image in images:
        big = faces_module._upscaled(image, side)
        shape = landmarks(big, frame)
        reference.append(np.asarray(network.compute_face_descriptor(big, shape)))
        chips.append(dlib.get_face_chip(big, shape, dlib_resnet.CHIP_SIDE, dlib_resnet.CHIP_PADDING))
    port = dlib_resnet.describe_chips(dlib_resnet.onnx_model_path(model), np.stack(chips), 2)
    return np.stack(reference), port


def test_descriptors_match_dlib_on_synthetic_faces(model_file):
    from latentatlas.data import synthetic_faces

    images, _ = synthetic_faces(8, image_size=64, seed=5)
    reference, port = _dlib_and_port(images, model_file)
    assert port.shape == (8, 128) and port.dtype == np.float64
    assert np.abs(port - reference).max() < TOLERANCE
    assert np.abs(reference).max() > 0.1  # not trivially small vectors
    # and through the embedder, on its worker-less path: the same numbers as dlib's route
    np.testing.assert_allclose(
        faces_module._embed_block(images, 256), faces_module._embed_block(images, 256, onnx=""), atol=TOLERANCE
    )


@pytest.mark.slow
def test_descriptors_match_dlib_on_real_faces(model_file, celeba_dir):
    from latentatlas.config import DataConfig
    from latentatlas.data.cache import load_images

    images = load_images(DataConfig(source=str(celeba_dir), image_size=64, limit=32), progress=False).images
    reference, port = _dlib_and_port(np.asarray(images), model_file)
    assert np.abs(port - reference).max() < TOLERANCE


def test_reader_checks_the_architecture(model_file):
    weights = dlib_resnet.read_face_resnet(model_file)
    kinds = [layer.kind for layer, _ in weights.layers]
    assert kinds.count("con") == 29 and kinds.count("add_prev") == 14 and kinds[-1] == "fc"
    np.testing.assert_allclose(weights.mean_rgb, [122.782, 117.001, 104.298], atol=1e-3)
    first_weight = weights.layers[0][1]["weight"]
    assert first_weight.shape == (32, 3, 7, 7) and weights.layers[-1][1]["weight"].shape == (256, 128)


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "model.dat"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("keep", [0, 5, 300, 1_000_000, -1])
def test_truncated_file_is_one_clear_error(model_file, tmp_path, keep):
    data = model_file.read_bytes()
    path = _write(tmp_path, data[:keep] if keep >= 0 else data[:-1])
    with pytest.raises(LatentAtlasError, match=r"^model\.dat is not dlib's face-recognition ResNet: .*truncated"):
        dlib_resnet.read_face_resnet(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.replace(b"\x01\x05con_4", b"\x01\x05relu_", 1), r"expected a convolution .* found 'relu_'"),
        (lambda d: d.replace(b"loss_metric_2", b"loss_multicla", 1), "expected the metric loss"),
        (lambda d: d.replace(b"\x01\x0aavg_pool_2", b"\x01\x0amax_pool_2", 1), "expected a avg_pool"),
        (lambda d: d + b"\x00", "1 bytes left after the last layer"),
    ],
)
def test_wrong_layer_sequence_is_one_clear_error(model_file, tmp_path, edit, message):
    data = model_file.read_bytes()
    edited = edit(data)
    assert edited != data
    with pytest.raises(LatentAtlasError, match=message):
        dlib_resnet.read_face_resnet(_write(tmp_path, edited))


def test_onnx_export_is_cached_per_file_and_rebuilt_when_it_changes(model_file, tmp_path, monkeypatch):
    data = bytearray(model_file.read_bytes())
    copy = _write(tmp_path, bytes(data))
    exported = dlib_resnet.onnx_model_path(copy)
    assert exported.is_file() and exported.parent.name == "dlib"

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(dlib_resnet.torch.onnx, "export", no_export)
    assert dlib_resnet.onnx_model_path(copy) == exported  # the cached file, not a new export
    monkeypatch.undo()

    # change one weight of the first convolution: a new export, with other descriptors
    first = dlib_resnet.read_face_resnet(copy).layers[0][1]["weight"]
    at = bytes(data).index(first.tobytes()[:64])
    data[at : at + 4] = np.float32(first.flat[0] + 0.5).tobytes()
    copy.write_bytes(bytes(data))
    rebuilt = dlib_resnet.onnx_model_path(copy)
    assert rebuilt != exported and rebuilt.is_file()
    chips = np.random.default_rng(0).integers(0, 256, (2, 150, 150, 3), dtype=np.uint8)
    before = dlib_resnet.describe_chips(exported, chips, 1)
    after = dlib_resnet.describe_chips(rebuilt, chips, 1)
    assert np.abs(before - after).max() > 1e-4


def test_bad_chips_are_refused(model_file):
    with pytest.raises(LatentAtlasError, match=r"face chips must be \(n, 150, 150, 3\), got \(2, 64, 64, 3\)"):
        dlib_resnet.describe_chips(dlib_resnet.onnx_model_path(model_file), np.zeros((2, 64, 64, 3), np.uint8), 1)


@pytest.fixture
def fresh_route():
    faces_module._descriptor_model.cache_clear()
    yield
    faces_module._descriptor_model.cache_clear()


def test_unreadable_model_falls_back_to_dlib_with_one_line(model_file, tmp_path, monkeypatch, capsys, fresh_route):
    bad = _write(tmp_path, model_file.read_bytes()[:1000])
    real_path = faces_module.face_model_path
    monkeypatch.setattr(faces_module, "face_model_path", lambda kind: bad if kind == "embedding" else real_path(kind))
    assert faces_module.descriptor_backend() == "dlib"
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "truncated" in lines[0] and "dlib's own network" in lines[0]
    assert faces_module.FaceEmbedder().settings()["descriptor"] == "dlib"


def test_missing_onnxruntime_falls_back_to_dlib_with_one_line(monkeypatch, capsys, fresh_route):
    from latentatlas.data import synthetic_faces

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    images, _ = synthetic_faces(2, image_size=64, seed=0)
    embedded = faces_module.FaceEmbedder().embed(images)
    faces_module.FaceEmbedder().embed(images)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "latentatlas: onnxruntime is not installed: dlib face descriptors run through dlib's own network "
        "(over 10x slower); pip install onnxruntime onnx"
    ]
    np.testing.assert_allclose(embedded, faces_module._embed_block(images, 256, onnx=""))
