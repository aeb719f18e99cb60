"""Copy tests worth trusting: C_T (Meehan et al. 2020) and the authenticity share (Alaa et al. 2022), as pure
tests and as instruments in latent and face-embedding space, on tiny synthetic data."""

from __future__ import annotations

import numpy as np
import pytest

from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.copies import Authenticity, CopyingTest
from latentatlas.evaluation.instruments import INSTRUMENTS, Reference, Row, face_copies, instrument_set
from latentatlas.evaluation.instruments.face_authenticity import FaceAuthenticity
from latentatlas.evaluation.instruments.face_ct import FaceCt
from latentatlas.evaluation.instruments.latent_authenticity import LatentAuthenticity
from latentatlas.samplers import make_sampler

SCALES = np.linspace(0.5, 2.0, 6)


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    train = rng.standard_normal((1000, 6)) * SCALES
    held = rng.standard_normal((200, 6)) * SCALES
    draws = {
        name: make_sampler(name, **options).fit(train).sample(200, seed=1).astype(np.float64)
        for name, options in (("resample", {"jitter": 0.02}), ("gaussian", {}))
    }
    return {"train": train, "held": held, **draws}


def test_copying_test_flags_resample_not_a_fitted_gaussian(data):
    test = CopyingTest(seed=0).fit(data["train"], data["held"])
    assert test.cells_ == 10  # min(20, 1000 // 50, 200 // 20)
    copies, gaussian = test.score(data["resample"]), test.score(data["gaussian"])
    assert copies is not None and gaussian is not None
    assert copies.high < -3  # significantly below the paper's flag
    assert gaussian.low <= 0 <= gaussian.high or abs(gaussian.value) < 2  # not copying
    assert gaussian.low < gaussian.value < gaussian.high


def test_authenticity_flags_resample_and_matches_the_held_out_level_for_a_gaussian(data):
    test = Authenticity(seed=0).fit(data["train"])
    copies, gaussian, held = (test.score(data[key]) for key in ("resample", "gaussian", "held"))
    assert copies.value < 0.1 and copies.high < held.low  # jittered training points are not authentic
    assert gaussian.high >= held.low and gaussian.low > 0.3  # not significantly below unseen data's level
    exact = test.authentic(data["train"][:5])
    assert not exact.any()  # a training point is its own nearest training point: distance 0


def test_authenticity_refuses_a_single_training_point():
    with pytest.raises(LatentAtlasError, match="authenticity needs at least 2 training points, got 1"):
        Authenticity().fit(np.zeros((1, 3)))


def _reference(data: dict[str, np.ndarray]) -> Reference:
    train, held = data["train"], data["held"]

    class Cache:  # face space = latent space here: the "embedding" of a decoded image is its z-point
        def embeddings(self, name, rows, images, decoder=None):
            assert name == "train_decoded_embeddings" and decoder == "w"
            return train[rows]

    return Reference(
        z=held, rows=np.arange(200), train_z=train, train_rows=np.arange(1000), validation_z=held,
        k=5, chunk_size=256, device="cpu", seed=0, decode=lambda z: np.zeros((len(z), 8, 8, 3), np.uint8),
        cache=Cache(), weights="w", reconstruction_embeddings=held,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("instrument", "column", "role", "field"),
    [
        (LatentAuthenticity, "latent_authenticity", "sample", "z"),
        (FaceAuthenticity, "face_authenticity", "sample", "embeddings"),
        (FaceCt, "face_ct", "sample", "embeddings"),
    ],
)
def test_instruments_flag_resample_not_gaussian(data, instrument, column, role, field, monkeypatch):
    # the reference's decoder makes no faces; the face-withholding rule has its own test below
    monkeypatch.setattr(face_copies, "faces_withheld", lambda calibration: None)
    monkeypatch.setattr(face_copies, "reconstruction_faces", lambda reference: None)
    tool = instrument()
    tool.prepare(_reference(data))

    def score(points: np.ndarray) -> float:
        row = Row("x", "sampler", role, points, embeddings=points if field == "embeddings" else None)
        return tool.score(row)[column].value

    copies, gaussian = score(data["resample"]), score(data["gaussian"])
    if column.endswith("_ct"):
        assert copies < -3 < gaussian
    else:
        assert copies < 0.1 < 0.3 < gaussian
    assert tool.score(Row("real", "reference", "training", data["train"][:200], embeddings=data["train"][:200])) == {}


@pytest.mark.parametrize(("instrument", "column"), [(FaceAuthenticity, "face_authenticity"), (FaceCt, "face_ct")])
def test_face_copy_tests_are_withheld_when_the_decoder_makes_no_faces(data, instrument, column, monkeypatch):
    monkeypatch.setattr(face_copies, "reconstruction_faces", lambda reference: None)
    monkeypatch.setattr(face_copies, "faces_withheld", lambda calibration: "no faces in the reconstructions")
    tool = instrument()
    tool.prepare(_reference(data))
    assert tool.score(Row("x", "sampler", "sample", data["resample"], embeddings=data["resample"])) == {}


def test_authenticity_scores_the_held_out_level_on_the_reconstruction_row(data):
    tool = LatentAuthenticity()
    tool.prepare(_reference(data))
    held = tool.score(Row("reconstruction", "reference", "held-out", data["held"]))["latent_authenticity"]
    assert 0.3 < held.value < 0.9 and held.low < held.value < held.high


def test_copy_tests_join_the_instrument_sets_where_their_cost_fits():
    quick = [i.name for i in instrument_set("quick")]
    full = [i.name for i in instrument_set("full")]
    assert "latent_authenticity" in quick and "face_ct" not in quick and "face_authenticity" not in quick
    assert {"face_ct", "face_authenticity"} <= set(full)
    assert {"face_ct", "face_authenticity"}.isdisjoint(i.name for i in instrument_set("full", faces=False))
    assert INSTRUMENTS["face_ct"].needs == {"images", "face_embeddings"}
