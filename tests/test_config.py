"""The one config policy: typed fields, strict keys, dict round trips and TOML/JSON config files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from latentatlas.config import DataConfig, TrainConfig, read_config_file
from latentatlas.errors import LatentAtlasError
from latentatlas.model import ModelConfig


@pytest.mark.parametrize(
    "cls, values, message",
    [
        (ModelConfig, {"latent_dim": 16.0}, "model.latent_dim must be an integer, got 16.0"),
        (ModelConfig, {"latent_dim": True}, "model.latent_dim must be an integer, got True"),
        (ModelConfig, {"batch_norm": "no"}, "model.batch_norm must be true or false, got 'no'"),
        (ModelConfig, {"batch_norm": 1}, "model.batch_norm must be true or false, got 1"),
        (ModelConfig, {"channels": [8, 16.5]}, "model.channels entries must be an integer, got 16.5"),
        (ModelConfig, {"channels": 8}, "model.channels must be a list, got 8"),
        (ModelConfig, {"activation": 3}, "model.activation must be a string, got 3"),
        (TrainConfig, {"epochs": "3"}, "train.epochs must be an integer, got '3'"),
        (TrainConfig, {"lr": None}, "train.lr must be a number, got None"),
        (TrainConfig, {"seed": -1}, "seed must be an integer >= 0"),
        (TrainConfig, {"seed": 2**64}, "seed must be an integer <= "),
        (DataConfig, {"limit": "7"}, "data.limit must be an integer, got '7'"),
        (DataConfig, {"source": 5}, "data.source must be a string, got 5"),
    ],
)
def test_values_are_checked_by_their_type(cls, values, message) -> None:
    with pytest.raises(LatentAtlasError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cls.from_dict(values)


@pytest.mark.parametrize(
    "cls, values, message",
    [
        (TrainConfig, {"epochs": 0}, "epochs must be an integer >= 1, got 0"),
        (TrainConfig, {"batch_size": -2}, "batch size must be an integer >= 1, got -2"),
        (TrainConfig, {"patience": 0}, "patience must be an integer >= 1, got 0"),
        (TrainConfig, {"lr": 0.0}, "learning rate must be a finite number > 0, got 0.0"),
        (TrainConfig, {"lr": float("inf")}, "learning rate must be a finite number > 0, got inf"),
        (TrainConfig, {"val_fraction": 1.0}, "validation fraction must be in [0, 1), got 1.0"),
        (TrainConfig, {"val_fraction": -0.1}, "validation fraction must be in [0, 1), got -0.1"),
        (DataConfig, {"image_size": 40}, "image size must be a positive multiple of 16, got 40"),
        (ModelConfig, {"image_size": 40}, "image size must be a positive multiple of 16, got 40"),
        (DataConfig, {"synthetic_count": 0}, "synthetic count must be an integer >= 1, got 0"),
        (DataConfig, {"limit": 0}, "limit must be an integer >= 1, got 0"),
    ],
)
def test_values_are_checked_by_their_range_with_the_shared_validators(cls, values, message) -> None:
    with pytest.raises(LatentAtlasError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        cls.from_dict(values)


def test_the_range_edges_are_accepted() -> None:
    config = TrainConfig(epochs=1, batch_size=1, patience=1, val_fraction=0.0, lr=1e-9)
    assert (config.epochs, config.batch_size, config.patience, config.val_fraction) == (1, 1, 1, 0.0)
    assert DataConfig(image_size=16, synthetic_count=1, limit=1).image_size == 16


def test_lists_become_tuples_and_optional_accepts_none() -> None:
    assert ModelConfig.from_dict({"channels": [8, 16]}).channels == (8, 16)
    assert ModelConfig(channels=(8, 16)).to_dict()["channels"] == [8, 16]
    assert DataConfig.from_dict({"limit": None}).limit is None
    assert TrainConfig.from_dict({"lr": 1}).lr == 1.0 and isinstance(TrainConfig.from_dict({"lr": 1}).lr, float)


@pytest.mark.parametrize("cls", [ModelConfig, TrainConfig, DataConfig])
def test_every_config_round_trips_and_refuses_unknown_keys(cls) -> None:
    default = cls()
    assert cls.from_dict(json.loads(json.dumps(default.to_dict()))) == default
    with pytest.raises(LatentAtlasError, match=f"unknown {cls.section} config keys: bogus, extra"):
        cls.from_dict({**default.to_dict(), "extra": 1, "bogus": 2})


def test_toml_and_json_files_give_the_same_sections(tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text("[model]\nlatent_dim = 8\nchannels = [8, 16]\n\n[train]\nlr = 2e-3\n\n[data]\nlimit = 10\n")
    sections = read_config_file(toml)
    assert sections == {"model": {"latent_dim": 8, "channels": [8, 16]}, "train": {"lr": 2e-3}, "data": {"limit": 10}}
    as_json = tmp_path / "run.json"
    as_json.write_text(json.dumps(sections))
    assert read_config_file(as_json) == sections


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("a.toml", "[model\n", "cannot parse config file"),
        ("a.json", "{", "cannot parse config file"),
        ("a.yaml", "model: {}", "must end in .toml or .json"),
        ("a.toml", "[optimizer]\nlr = 1\n", "unknown sections optimizer"),
        ("a.toml", "model = 3\n", r"\[model\] must be a table"),
        ("a.json", "[1, 2]", "must hold sections"),
    ],
)
def test_bad_config_files(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(LatentAtlasError, match=message):
        read_config_file(path)
    with pytest.raises(LatentAtlasError, match="does not exist"):
        read_config_file(tmp_path / "missing.toml")


def test_the_example_config_file_builds_every_config() -> None:
    from latentatlas.config import CONFIG_SECTIONS

    sections = read_config_file(Path(__file__).resolve().parents[1] / "examples" / "run.toml")
    assert set(sections) == set(CONFIG_SECTIONS)
    assert ModelConfig.from_dict(sections["model"]) == ModelConfig()
    train = TrainConfig.from_dict(sections["train"])
    assert (train.lr_schedule, train.patience) == ("cosine", 4)
    assert DataConfig.from_dict(sections["data"]).synthetic_count == 3000
