"""Training: loss goes down, seeds reproduce weights, resume equals an uninterrupted run, bad calls write nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from latentatlas.checkpoint import latest_checkpoint, load_optimizer, read_history, save_optimizer
from latentatlas.data import DataConfig
from latentatlas.errors import LatentAtlasError
from latentatlas.feeder import BatchFeeder
from latentatlas.io import MARKER, artifact_kind, read_json
from latentatlas.model import Autoencoder, ModelConfig
from latentatlas.train import (
    TrainConfig,
    epoch_generator,
    evaluate_loss,
    make_split,
    train,
)

# Smaller than the shared tiny run: these tests train several times.
MICRO_MODEL = ModelConfig(image_size=32, channels=(8, 16), latent_dim=8)
MICRO_DATA = DataConfig(image_size=32, synthetic_count=64)


def _micro_train(path: Path, epochs: int, resume: bool = False, seed: int = 0, **model_changes) -> None:
    model = ModelConfig(**{**MICRO_MODEL.to_dict(), **model_changes})
    config = TrainConfig(epochs=epochs, batch_size=16, seed=seed, val_fraction=0.25)
    train(path, MICRO_DATA, model, config, resume=resume, progress=False, device="cpu")


def _weights(path: Path, name: str = "model.safetensors") -> dict[str, torch.Tensor]:
    """Tensors of the last committed checkpoint's file `name`."""
    checkpoint = latest_checkpoint(path)
    assert checkpoint is not None
    return load_file(str(checkpoint.folder / name))


def _assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ----------------------------------------------------------------------------- configuration and helpers


@pytest.mark.parametrize(
    "options, message",
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch size"),
        ({"lr": 0.0}, "learning rate"),
        ({"lr": float("nan")}, "learning rate"),
        ({"val_fraction": 1.0}, "validation fraction"),
        ({"val_fraction": -0.1}, "validation fraction"),
    ],
)
def test_invalid_train_config(options, message):
    with pytest.raises(LatentAtlasError, match=message):
        TrainConfig(**options)


def test_train_config_round_trip_refuses_unknown_keys():
    config = TrainConfig(epochs=3, lr=5e-4)
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(LatentAtlasError, match="unknown train config keys: future_option"):
        TrainConfig.from_dict({**config.to_dict(), "future_option": 1})


@pytest.mark.parametrize(
    "n, fraction, expected_val", [(100, 0.1, 10), (400, 0.25, 100), (10, 0.01, 1), (2, 0.9, 1), (50, 0.0, 0)]
)
def test_split_sizes_and_seeding(n, fraction, expected_val):
    split = make_split(n, fraction, seed=3)
    assert split.dtype == np.int8 and len(split) == n
    assert int(split.sum()) == expected_val
    assert np.array_equal(split, make_split(n, fraction, seed=3))
    if 0 < expected_val < n - 1:
        assert not np.array_equal(split, make_split(n, fraction, seed=4))


def test_epoch_shuffles_depend_on_seed_and_epoch_only():
    def order(seed, epoch):
        return torch.randperm(50, generator=epoch_generator(seed, epoch))

    assert torch.equal(order(0, 3), order(0, 3))
    assert not torch.equal(order(0, 3), order(0, 4))
    assert not torch.equal(order(0, 3), order(1, 3))


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_chunked_feeding_matches_in_memory_feeding(batch_size):
    images = np.random.default_rng(0).integers(0, 256, (40, 4, 4, 3), dtype=np.uint8)
    indices = np.arange(3, 37)
    order = torch.randperm(len(indices), generator=torch.Generator().manual_seed(0))
    in_ram = BatchFeeder(images, indices)
    chunked = BatchFeeder(images, indices, ram_budget=5 * 4 * 4 * 3)  # 5 images per chunk
    assert in_ram.in_ram is not None and chunked.in_ram is None
    expected = images[indices[order.numpy()]]
    for feeder in (in_ram, chunked):
        batches = list(feeder.batches(order, batch_size))
        assert all(len(b) <= batch_size for b in batches)
        assert np.array_equal(torch.cat(batches).numpy(), expected)


def test_optimizer_state_round_trips_exactly(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3, betas=(0.8, 0.95))
    for _ in range(3):
        loss = net(torch.randn(8, 4)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    save_optimizer(optimizer, tmp_path / "opt.safetensors")
    fresh = torch.optim.Adam(net.parameters(), lr=1.0)
    load_optimizer(fresh, tmp_path / "opt.safetensors")
    before, after = optimizer.state_dict(), fresh.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for param_id, entries in before["state"].items():
        for name, value in entries.items():
            assert torch.equal(after["state"][param_id][name], value), (param_id, name)


# ----------------------------------------------------------------------------- the shared tiny run


def test_training_lowers_the_loss(tiny_run):
    history = tiny_run.history()
    assert list(history["epoch"]) == [1, 2, 3]
    assert history["val_loss"].iloc[-1] < history["val_loss"].iloc[0]
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert (history["images_per_s"] > 0).all() and (history["seconds"] > 0).all()
    # The trained model reconstructs held-out faces far better than the same architecture untrained.
    images = tiny_run.images().images
    val = BatchFeeder(images, np.flatnonzero(tiny_run.split() == 1))
    torch.manual_seed(0)
    untrained = evaluate_loss(Autoencoder(tiny_run.model_config), val, torch.device("cpu"))
    trained = evaluate_loss(tiny_run.load_model("cpu"), val, torch.device("cpu"))
    assert trained == pytest.approx(history["val_loss"].iloc[-1], rel=1e-4)
    assert trained < 0.5 * untrained


def test_run_folder_contents(tiny_run):
    names = {p.name for p in tiny_run.path.iterdir()}
    expected = {"config.json", "checkpoints", "model.safetensors", "train_state.json", "history.csv", "split.npy"}
    assert expected <= names
    last = latest_checkpoint(tiny_run.path)
    assert last is not None and last.folder.name == "epoch-0003"
    files = {"model.safetensors", "optimizer.safetensors", "train_state.json", "history.csv", MARKER}
    assert {p.name for p in last.folder.iterdir()} == files
    assert artifact_kind(last.folder) == "checkpoint"  # written by io.atomic_folder
    # The top-level copies are the last checkpoint's files.
    for name in ("model.safetensors", "train_state.json", "history.csv"):
        assert (tiny_run.path / name).read_bytes() == (last.folder / name).read_bytes()
    leftovers = [n for n in names if n.endswith(".tmp") or (n.startswith(".") and n != ".lock")]
    assert not leftovers  # no leftovers of atomic writes (.lock is the run's advisory lock file)
    config = read_json(tiny_run.path / "config.json")
    assert set(config) == {"model", "train", "data"}
    assert ModelConfig(**config["model"]) == tiny_run.model_config
    state = tiny_run.train_state()
    assert (state["epochs_done"], state["n_images"], state["n_train"], state["n_val"]) == (3, 400, 300, 100)
    split = tiny_run.split()
    assert split.dtype == np.int8 and set(np.unique(split)) == {0, 1} and int(split.sum()) == 100
    assert state["best_val_loss"] == pytest.approx(tiny_run.history()["val_loss"].min())


# ----------------------------------------------------------------------------- determinism and resume


def test_same_seed_gives_identical_weights(tmp_path):
    _micro_train(tmp_path / "a", epochs=2)
    _micro_train(tmp_path / "b", epochs=2)
    _micro_train(tmp_path / "c", epochs=1, seed=1)
    _assert_same_tensors(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    assert np.array_equal(np.load(tmp_path / "a" / "split.npy"), np.load(tmp_path / "b" / "split.npy"))
    other = _weights(tmp_path / "c")
    assert not torch.equal(_weights(tmp_path / "a")["encoder.to_latent.weight"], other["encoder.to_latent.weight"])


def test_resume_equals_uninterrupted_training(tmp_path):
    _micro_train(tmp_path / "straight", epochs=4)
    _micro_train(tmp_path / "resumed", epochs=2)
    assert read_json(tmp_path / "resumed" / "train_state.json")["epochs_done"] == 2
    _micro_train(tmp_path / "resumed", epochs=4, resume=True)
    for name in ("model.safetensors", "optimizer.safetensors"):
        _assert_same_tensors(_weights(tmp_path / "straight", name), _weights(tmp_path / "resumed", name))
    straight = read_history(tmp_path / "straight" / "checkpoints" / "epoch-0004" / "history.csv")
    resumed = read_history(tmp_path / "resumed" / "checkpoints" / "epoch-0004" / "history.csv")
    assert [r["epoch"] for r in resumed] == [1, 2, 3, 4]
    assert [r["val_loss"] for r in resumed] == [r["val_loss"] for r in straight]


def test_resume_when_already_done_changes_nothing(tmp_path):
    _micro_train(tmp_path / "run", epochs=1)
    before = _weights(tmp_path / "run")
    _micro_train(tmp_path / "run", epochs=1, resume=True)
    _assert_same_tensors(before, _weights(tmp_path / "run"))


# ----------------------------------------------------------------------------- refusals, before any write


def test_refuses_to_overwrite_a_trained_run(tiny_run_copy):
    before = _weights(tiny_run_copy.path)
    with pytest.raises(LatentAtlasError, match="already holds a trained model; use --resume"):
        train(
            tiny_run_copy.path,
            tiny_run_copy.data_config,
            tiny_run_copy.model_config,
            TrainConfig(epochs=1),
            progress=False,
        )
    _assert_same_tensors(before, _weights(tiny_run_copy.path))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"model": {"latent_dim": 12}}, "different architecture"),
        ({"model": {"batch_norm": False}}, "different architecture"),
        ({"data": {"synthetic_count": 120}}, "different data"),
        ({"train": {"seed": 5}}, "different seed"),
        ({"train": {"val_fraction": 0.5}}, "different val_fraction"),
    ],
)
def test_resume_with_different_settings_is_refused(tiny_run_copy, change, message):
    model = ModelConfig(**{**tiny_run_copy.model_config.to_dict(), **change.get("model", {})})
    data = DataConfig(**{**tiny_run_copy.data_config.to_dict(), **change.get("data", {})})
    config = TrainConfig(**{**tiny_run_copy.train_config.to_dict(), "epochs": 5, **change.get("train", {})})
    before = (tiny_run_copy.path / "train_state.json").read_text()
    with pytest.raises(LatentAtlasError, match=message):
        train(tiny_run_copy.path, data, model, config, resume=True, progress=False)
    assert (tiny_run_copy.path / "train_state.json").read_text() == before


def test_resume_without_checkpoint_is_refused(tmp_path):
    with pytest.raises(LatentAtlasError, match="cannot resume"):
        _micro_train(tmp_path / "nothing", epochs=2, resume=True)
    assert not (tmp_path / "nothing").exists()


@pytest.mark.parametrize(
    "data, model, message",
    [
        (DataConfig(source="/no/such/folder", image_size=32), MICRO_MODEL, "not found"),
        (DataConfig(image_size=64, synthetic_count=20), MICRO_MODEL, "differs from the model"),
        (DataConfig(image_size=32, synthetic_count=1), MICRO_MODEL, "at least 2 images"),
    ],
)
def test_bad_data_writes_nothing(tmp_path, data, model, message):
    with pytest.raises(LatentAtlasError, match=message):
        train(tmp_path / "run", data, model, TrainConfig(epochs=1), progress=False)
    assert not (tmp_path / "run").exists()


def test_empty_folder_writes_nothing(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LatentAtlasError, match="no images"):
        train(
            tmp_path / "run",
            DataConfig(source=str(tmp_path / "empty"), image_size=32),
            MICRO_MODEL,
            TrainConfig(epochs=1),
        )
    assert not (tmp_path / "run").exists()
