"""`train --tensorboard` and `export --projector`, read back with TensorBoard's own readers."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from latentatlas import extras
from latentatlas.cli import main
from latentatlas.model import Autoencoder, ModelConfig
from latentatlas.pipelines.projector import projector_rows, sprite
from latentatlas.store import Run
from latentatlas.tensorboard_log import TensorBoardLog, reconstruction_grid

pytest.importorskip("tensorboard")
from google.protobuf import text_format  # noqa: E402  (tensorboard's dependency)
from tensorboard.backend.event_processing import event_accumulator  # noqa: E402
from tensorboard.plugins import base_plugin  # noqa: E402
from tensorboard.plugins.projector import projector_plugin  # noqa: E402
from tensorboard.plugins.projector.projector_config_pb2 import (  # noqa: E402
    ProjectorConfig,  # pyright: ignore[reportAttributeAccessIssue]  (generated protobuf module)
)

TINY = ["--image-size", "32", "--channels", "8,16", "--latent-dim", "8", "--batch-size", "16"]
TRAIN = ["train", "--data", "synthetic-faces", "--synthetic-count", "64", "--val-fraction", "0.25", *TINY]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("latentatlas: error: "), err
    return err[0]


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 2-epoch run trained with --tensorboard, encoded and analysed: (run folder, log folder)."""
    root = tmp_path_factory.mktemp("tensorboard")
    run, log = root / "run", root / "tb"
    assert main([*TRAIN, "--epochs", "2", "--out", str(run), "--tensorboard", str(log)]) == 0
    assert main(["encode", str(run)]) == 0
    assert main(["analyze", str(run)]) == 0
    return run, log


def _accumulator(log: Path) -> event_accumulator.EventAccumulator:
    guidance = {event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0}
    return event_accumulator.EventAccumulator(str(log), size_guidance=guidance).Reload()


def test_train_logs_losses_learning_rate_and_reconstructions_per_epoch(logged):
    run, log = logged
    accumulator = _accumulator(log)
    history = Run(run).history()
    for tag, column in [("loss/train", "train_loss"), ("loss/val", "val_loss"), ("learning_rate", "lr")]:
        events = accumulator.Scalars(tag)
        assert [e.step for e in events] == [1, 2]
        np.testing.assert_allclose([e.value for e in events], history[column].to_numpy(), rtol=1e-6)
    images = accumulator.Images("reconstructions")
    assert [e.step for e in images] == [1, 2]
    # 16 held-out 32 px images: 2 rows of 8, each over its reconstructions, 2 px gaps
    grid = np.asarray(Image.open(io.BytesIO(images[0].encoded_image_string)))
    assert (images[0].width, images[0].height) == (8 * 34 - 2, 4 * 34 - 2) == grid.shape[1::-1]
    assert images[0].encoded_image_string != images[1].encoded_image_string  # the model changed between epochs


def test_reconstruction_grid_puts_each_original_above_its_reconstruction():
    images = np.full((3, 4, 4, 3), 200, np.uint8)
    grid = reconstruction_grid(images, np.zeros_like(images), columns=2)
    assert grid.shape == (4 * 6 - 2, 2 * 6 - 2, 3)
    assert (grid[0:4, 0:4] == 200).all() and (grid[6:10, 0:4] == 0).all()  # first column: original, then its copy
    assert (grid[12:16, 0:4] == 200).all() and (grid[12:16, 6:10] == 32).all()  # third image; an empty cell


def test_projector_files_open_with_tensorboards_readers(logged):
    run_dir, log = logged
    out = log.parent / "projector"
    assert main(["export", str(run_dir), "--projector", str(out), "--projector-limit", "40", "--seed", "3"]) == 0
    run = Run(run_dir)
    rows = projector_rows(64, 40, 3)

    config = ProjectorConfig()
    text_format.Parse((out / "projector_config.pbtxt").read_text(), config)
    (embedding,) = config.embeddings
    assert (embedding.tensor_path, embedding.metadata_path) == ("tensors.tsv", "metadata.tsv")
    assert embedding.sprite.image_path == "sprite.png" and list(embedding.sprite.single_image_dim) == [32, 32]

    tensors = projector_plugin._read_tensor_tsv_file(str(out / "tensors.tsv"))
    np.testing.assert_allclose(tensors, np.asarray(run.zpoints())[rows], rtol=1e-6, atol=1e-7)

    metadata = pd.read_csv(out / "metadata.tsv", sep="\t")
    assert len(metadata) == 40 and metadata["index"].tolist() == rows.tolist()
    assert {"subset", "region", "skin_tone"} <= set(metadata.columns) and "path" not in metadata.columns
    assert metadata["subset"].tolist() == run.metadata()["subset"].to_numpy()[rows].tolist()
    regions = np.load(run_dir / "analysis" / "region_labels.npy")
    assert metadata["region"].tolist() == regions[rows].tolist()

    picture = np.asarray(Image.open(out / "sprite.png"))
    assert picture.shape == (7 * 32, 7 * 32, 3)  # ceil(sqrt(40)) = 7 cells a row and column
    source = run.images().images
    assert np.array_equal(picture[:32, :32], source[rows[0]])
    assert np.array_equal(picture[32:64, 32:64], source[rows[8]])

    # the projector plugin itself finds the embedding in the log folder and reads its shape from the TSV
    plugin = projector_plugin.ProjectorPlugin(base_plugin.TBContext(logdir=str(out), data_provider=None))
    plugin._update_configs()
    assert list(plugin._configs["."].embeddings[0].tensor_shape) == [40, 8]


def test_projector_beside_training_events_and_again_over_its_own_export(logged):
    run, log = logged
    assert main(["export", str(run), "--projector", str(log)]) == 0  # a log folder holds only event files
    assert main(["export", str(run), "--projector", str(log), "--projector-limit", "5"]) == 0  # its own export
    assert len((log / "tensors.tsv").read_text().splitlines()) == 5
    assert {e.step for e in _accumulator(log).Scalars("loss/train")} == {1, 2}  # the events are untouched


@pytest.mark.parametrize("command", ["train", "export"])
def test_a_folder_with_other_files_is_refused_unless_forced(logged, tmp_path, capsys, command):
    run, _ = logged
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes")
    if command == "train":
        args = [*TRAIN, "--epochs", "1", "--out", str(tmp_path / "new"), "--tensorboard", str(folder)]
    else:
        args = ["export", str(run), "--projector", str(folder)]
    assert main(args) == 2
    line = _error_line(capsys)
    assert "refusing to write into" in line and "(notes.txt)" in line
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"] and not (tmp_path / "new").exists()
    assert main([*args, "--force"]) == 0
    assert (folder / "notes.txt").read_text() == "my notes"


def test_a_foreign_projector_config_is_refused(logged, tmp_path, capsys):
    run, _ = logged
    (tmp_path / "projector_config.pbtxt").write_text('embeddings { tensor_path: "mine.tsv" }\n')
    assert main(["export", str(run), "--projector", str(tmp_path)]) == 2
    assert "projector_config.pbtxt" in _error_line(capsys)


@pytest.mark.parametrize("command", ["train", "export"])
def test_missing_tensorboard_gives_the_install_line(logged, tmp_path, monkeypatch, capsys, command):
    run, _ = logged
    monkeypatch.setitem(extras.EXTRAS, "tensorboard", ("tensorboard_is_not_installed",))
    if command == "train":
        args = [*TRAIN, "--epochs", "1", "--out", str(tmp_path / "new"), "--tensorboard", str(tmp_path / "tb")]
    else:
        args = ["export", str(run), "--projector", str(tmp_path / "tb")]
    assert main(args) == 2
    assert _error_line(capsys).endswith("pip install 'latentatlas[tensorboard]'")
    assert not (tmp_path / "tb").exists() and not (tmp_path / "new").exists()


def test_export_needs_a_decoder_file_or_a_projector_folder(logged, capsys):
    run, _ = logged
    assert main(["export", str(run)]) == 2
    assert "--decoder FILE" in _error_line(capsys)


@pytest.mark.parametrize(("n", "size", "cells", "side"), [(1, 32, 1, 32), (40, 32, 7, 32), (5000, 128, 71, 57)])
def test_sprite_cells_shrink_to_fit_4096_pixels(n, size, cells, side):
    images = np.broadcast_to(np.arange(size, dtype=np.uint8)[None, :, None, None], (n, size, size, 3))
    picture, cell = sprite(images)
    assert cell == side and picture.shape == (cells * side, cells * side, 3)
    assert picture.shape[1] <= 4096
    assert np.array_equal(
        picture[:side, :side, 0],
        np.asarray(Image.fromarray(np.ascontiguousarray(images[0])).resize((side, side), Image.Resampling.BOX))[..., 0],
    )


def test_projector_rows_are_a_seeded_sorted_sample():
    first = projector_rows(100, 10, 1)
    assert np.array_equal(first, projector_rows(100, 10, 1)) and not np.array_equal(first, projector_rows(100, 10, 2))
    assert np.all(np.diff(first) > 0) and len(first) == 10
    assert np.array_equal(projector_rows(5, 10, 0), np.arange(5))


def test_the_log_travels_to_other_processes_without_its_open_writer(tmp_path):
    log = TensorBoardLog(tmp_path / "tb")
    model = Autoencoder(ModelConfig(image_size=32, channels=(8, 16), latent_dim=8))
    images = np.zeros((4, 32, 32, 3), np.uint8)
    log({"epoch": 1, "train_loss": 0.5, "val_loss": float("nan"), "lr": 1e-3, "images_per_s": 10.0}, model, images)
    copy = pickle.loads(pickle.dumps(log))  # what `--devices N` sends to each training process
    copy({"epoch": 2, "train_loss": 0.25, "val_loss": 0.3, "lr": 1e-3, "images_per_s": 10.0}, model, images)
    log.close()
    copy.close()
    accumulator = _accumulator(tmp_path / "tb")
    assert [(e.step, e.value) for e in accumulator.Scalars("loss/train")] == [(1, 0.5), (2, 0.25)]
    assert [e.step for e in accumulator.Scalars("loss/val")] == [2]  # no validation loss in epoch 1: not logged
    assert len(list((tmp_path / "tb").glob("events.out.tfevents.*"))) == 2
