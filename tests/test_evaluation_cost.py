"""Issue 20's cuts of the dlib instruments' cost: the detector's seeded subsample, embeddings saved block by
block (an evaluation stopped during the copy reference resumes), the cached reconstruction sets."""

from __future__ import annotations

import numpy as np
import pytest

from latentatlas.evaluation.faces import FaceEmbedder
from latentatlas.evaluation.instruments.cnn_faces import DETECTOR_IMAGES, detector_rows
from latentatlas.pipelines import feature_cache
from latentatlas.pipelines.feature_cache import FeatureCache


@pytest.mark.parametrize("count", [1, DETECTOR_IMAGES, DETECTOR_IMAGES + 1, 4 * DETECTOR_IMAGES])
def test_detector_looks_at_a_seeded_subsample_of_at_most_its_limit(count):
    rows = detector_rows(count, seed=3)
    assert len(rows) == min(count, DETECTOR_IMAGES)
    assert len(np.unique(rows)) == len(rows) and np.all(np.diff(rows) > 0) and rows.max() < count
    np.testing.assert_array_equal(rows, detector_rows(count, seed=3))
    if count > DETECTOR_IMAGES:
        assert not np.array_equal(rows, detector_rows(count, seed=4))
    else:
        np.testing.assert_array_equal(rows, np.arange(count))


class _Interrupted(Exception):
    pass


def _fake_embed(calls: list[int], fail_at: int | None = None):
    """An embedder that maps each image to its first pixels (no dlib), counting images, failing on call `fail_at`."""

    def embed(self, images, progress=False, bar=None):
        if fail_at is not None and len(calls) == fail_at:
            raise _Interrupted
        calls.append(len(images))
        if bar is not None:
            bar.update(len(images))
        return images.reshape(len(images), -1)[:, :128].astype(np.float64)

    return embed


def test_embeddings_resume_after_a_stop_and_match_one_pass(tmp_path, monkeypatch):
    images = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    rows = np.arange(10)
    monkeypatch.setattr(feature_cache, "EMBEDDING_BLOCK", 4)
    calls: list[int] = []
    monkeypatch.setattr(FaceEmbedder, "embed", _fake_embed(calls, fail_at=2))
    cache = FeatureCache(tmp_path, seed=0, device="cpu", progress=False)
    with pytest.raises(_Interrupted):
        cache.embeddings("train_decoded_embeddings", rows, images, decoder="w1")
    assert calls == [4, 4] and (tmp_path / "train_decoded_embeddings.partial.npy").is_file()

    resumed: list[int] = []
    monkeypatch.setattr(FaceEmbedder, "embed", _fake_embed(resumed))
    out = cache.embeddings("train_decoded_embeddings", rows, images, decoder="w1")
    assert resumed == [2]  # only the images the stopped evaluation had not embedded
    np.testing.assert_array_equal(out, images.reshape(10, -1)[:, :128])
    assert not list(tmp_path.glob("*.partial.*"))

    again: list[int] = []
    monkeypatch.setattr(FaceEmbedder, "embed", _fake_embed(again))
    np.testing.assert_array_equal(cache.embeddings("train_decoded_embeddings", rows, images, decoder="w1"), out)
    assert again == []  # complete: read from the cache
    cache.embeddings("train_decoded_embeddings", rows, images, decoder="w2")
    assert again == [4, 4, 2]  # other weights: computed anew, never the first weights' partial or complete set


def test_a_partial_set_of_other_rows_is_not_resumed(tmp_path, monkeypatch):
    images = np.random.default_rng(1).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    monkeypatch.setattr(feature_cache, "EMBEDDING_BLOCK", 4)
    first: list[int] = []
    monkeypatch.setattr(FaceEmbedder, "embed", _fake_embed(first, fail_at=1))
    cache = FeatureCache(tmp_path, seed=0, device="cpu", progress=False)
    with pytest.raises(_Interrupted):
        cache.embeddings("real_embeddings", np.arange(6), images)
    later: list[int] = []
    monkeypatch.setattr(FaceEmbedder, "embed", _fake_embed(later))
    cache.embeddings("real_embeddings", np.arange(1, 7), images)
    assert later == [4, 2]
