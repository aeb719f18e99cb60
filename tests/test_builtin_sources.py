"""The built-in sources beyond one class of faces: synthetic faces in several classes, scikit-learn's digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from latentatlas.data import DataConfig, load_images, synthetic_faces
from latentatlas.errors import LatentAtlasError


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LATENTATLAS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_classes_are_labelled_balanced_and_far_apart_in_image_space() -> None:
    images, meta = synthetic_faces(300, image_size=32, seed=4, classes=3)
    labels = meta["class"].to_numpy()
    assert meta["class"].dtype == np.int64 and set(labels) == {0, 1, 2}
    assert np.bincount(labels).min() >= 70  # about 100 each
    # A nearest-class-mean rule on raw pixels, fitted on half and tested on the other half, is almost perfect.
    x = images.reshape(len(images), -1).astype(np.float64) / 255
    means = np.stack([x[:150][labels[:150] == c].mean(axis=0) for c in range(3)])
    predicted = np.argmin(((x[150:, None, :] - means[None]) ** 2).sum(axis=2), axis=1)
    assert (predicted == labels[150:]).mean() >= 0.95
    # Backgrounds (the top-left corner) differ by class.
    corners = np.stack([images[labels == c, :3, :3].reshape(-1, 3).mean(axis=0) for c in range(3)])
    assert np.abs(corners[:, None] - corners[None]).sum(axis=2)[np.triu_indices(3, 1)].min() > 40


def test_classes_keep_the_prefix_property_and_one_class_keeps_the_old_faces() -> None:
    images, meta = synthetic_faces(40, image_size=16, seed=2, classes=4)
    prefix, prefix_meta = synthetic_faces(15, image_size=16, seed=2, classes=4)
    assert np.array_equal(prefix, images[:15])
    pd.testing.assert_frame_equal(prefix_meta, meta.iloc[:15])
    single, single_meta = synthetic_faces(40, image_size=16, seed=2, classes=1)
    default, default_meta = synthetic_faces(40, image_size=16, seed=2)
    assert np.array_equal(single, default) and "class" not in single_meta.columns
    assert not np.array_equal(single, images)


@pytest.mark.parametrize(
    "classes, message",
    [(0, "synthetic classes must be an integer >= 1, got 0"), (9, "synthetic classes must be an integer <= 8, got 9")],
)
def test_bad_class_counts(classes: int, message: str) -> None:
    with pytest.raises(LatentAtlasError, match=message):
        DataConfig(synthetic_classes=classes)


def test_classes_go_through_the_cache_with_their_labels() -> None:
    config = DataConfig(image_size=16, synthetic_count=30, synthetic_classes=2)
    loaded = load_images(config, progress=False)
    images, meta = synthetic_faces(30, image_size=16, seed=0, classes=2)
    assert np.array_equal(loaded.images, images)
    assert loaded.meta["class"].tolist() == meta["class"].tolist()
    one_class = load_images(DataConfig(image_size=16, synthetic_count=30), progress=False)
    assert not np.array_equal(one_class.images, images)  # a different cache entry


def test_digits_source_is_grey_rgb_with_the_digit_as_class() -> None:
    from sklearn.datasets import load_digits

    loaded = load_images(DataConfig(source="digits", image_size=16), progress=False)
    assert loaded.images.shape == (1797, 16, 16, 3)
    assert np.array_equal(loaded.images[..., 0], loaded.images[..., 2])  # grey as RGB
    assert loaded.meta["class"].tolist() == load_digits().target.tolist()
    assert loaded.meta["image_id"].iloc[0] == "digits-0000"
    # The upscaled image follows the 8 x 8 original: bright where the stroke is.
    original = load_digits().images[0]
    small = loaded.images[0, 1::2, 1::2, 0].astype(float)
    assert np.corrcoef(small.ravel(), original.ravel())[0, 1] > 0.9
    limited = load_images(DataConfig(source="digits", image_size=16, limit=10), progress=False)
    assert np.array_equal(limited.images, loaded.images[:10])


def test_train_on_digits_from_the_command_line(tmp_path: Path) -> None:
    from latentatlas.cli import main
    from latentatlas.store import Run

    out = tmp_path / "run"
    options = ["--image-size", "16", "--channels", "8", "--latent-dim", "4", "--epochs", "1", "--limit", "64"]
    assert main(["train", "--data", "digits", "--out", str(out), *options]) == 0
    assert Run(out).data_config.source == "digits" and Run(out).train_state()["n_images"] == 64
