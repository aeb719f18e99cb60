"""A run's configuration as a whole: the three sections of RUN/config.json (`RunConfig`), read back checked
by type and range, and the check that a resumed training asks for the run it continues."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from latentatlas.checkpoint import Checkpoint, latest_checkpoint
from latentatlas.config import DataConfig, TrainConfig
from latentatlas.errors import LatentAtlasError
from latentatlas.io import read_json
from latentatlas.model import ModelConfig


@dataclass(frozen=True)
class RunConfig:
    """The three sections of a run's config.json."""

    model: ModelConfig
    train: TrainConfig
    data: DataConfig

    def to_dict(self) -> dict:
        return {"model": self.model.to_dict(), "train": self.train.to_dict(), "data": self.data.to_dict()}


def read_run_config(run_dir: str | os.PathLike) -> RunConfig:
    """RUN/config.json, every section checked by type and range; one clear line naming the file if not."""
    path = Path(run_dir) / "config.json"
    document = read_json(path)
    if not isinstance(document, dict) or set(document) != {"model", "train", "data"}:
        raise LatentAtlasError(f"{path} must hold exactly the sections model, train and data")
    try:
        return RunConfig(
            model=ModelConfig.from_dict(document["model"]),
            train=TrainConfig.from_dict(document["train"]),
            data=DataConfig.from_dict(document["data"]),
        )
    except LatentAtlasError as exc:
        raise LatentAtlasError(f"invalid {path}: {exc}") from None


def describe_difference(old: dict, new: dict) -> str:
    keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return ", ".join(f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in keys)


def check_resume(run_dir: Path, data: DataConfig, model: ModelConfig, config: TrainConfig) -> Checkpoint:
    """Compare the request with the saved run; returns its last committed checkpoint."""
    last = latest_checkpoint(run_dir) if (run_dir / "config.json").is_file() else None
    if last is None:
        raise LatentAtlasError(f"cannot resume: {run_dir} holds no checkpoint; train without --resume first")
    saved = read_run_config(run_dir)
    saved_model = saved.model.to_dict()
    if saved_model != model.to_dict():
        raise LatentAtlasError(
            f"cannot resume {run_dir} with a different architecture "
            f"({describe_difference(saved_model, model.to_dict())})"
        )
    saved_data = saved.data.to_dict()
    if saved_data != data.to_dict():
        raise LatentAtlasError(
            f"cannot resume {run_dir} with different data ({describe_difference(saved_data, data.to_dict())})"
        )
    for name in ("seed", "val_fraction"):  # both decide the split, which must not move
        if getattr(saved.train, name) != getattr(config, name):
            raise LatentAtlasError(
                f"cannot resume {run_dir} with a different {name} "
                f"({getattr(saved.train, name)} -> {getattr(config, name)})"
            )
    for path in (last.model_path, last.optimizer_path, run_dir / "split.npy"):
        if not path.is_file():
            raise LatentAtlasError(f"cannot resume: {path} is missing")
    return last


__all__ = ["RunConfig", "check_resume", "describe_difference", "read_run_config"]
