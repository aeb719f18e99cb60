"""Data-parallel training (DDP, gloo on the CPU): 2 processes track 1, resume is exact, one process is unchanged."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cli_helpers import exit_status
from latentatlas import distributed
from latentatlas.config import DataConfig, TrainConfig
from latentatlas.model import ModelConfig
from latentatlas.store import Run
from latentatlas.train import epoch_generator, train

SRC = Path(__file__).resolve().parents[1] / "src"
MODEL = ["--image-size", "16", "--channels", "8,16", "--latent-dim", "8"]
DATA = ["--data", "synthetic-faces", "--synthetic-count", "240"]
SETTINGS = ["--val-fraction", "0.25", "--lr", "2e-3", "--seed", "0"]
BATCH = 16  # the one-process batch; each of the 2 ranks takes BATCH // 2


def _cli(*argv: str, torchrun: bool = False) -> subprocess.CompletedProcess:
    """`python -m latentatlas ...` (or under torchrun with 2 processes) in a child process, 1 thread per rank."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"] if torchrun else []
    command = [sys.executable, *launcher, "-m", "latentatlas", *argv]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def _train_two(out: Path, epochs: int, *extra: str, torchrun: bool = False) -> subprocess.CompletedProcess:
    argv = ["train", *DATA, *MODEL, *SETTINGS, "--epochs", str(epochs), "--batch-size", str(BATCH // 2)]
    argv += ["--out", str(out), *extra]
    return _cli(*argv, *([] if torchrun else ["--devices", "2"]), torchrun=torchrun)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(Run(run).weights_path("last")))


def _history(run: Path) -> list[dict]:
    return Run(run).history().to_dict("records")


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp") / "run"
    done = _train_two(out, 3)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.mark.slow
def test_two_processes_at_half_batch_track_one_process(two_process_run, tmp_path):
    one = train(
        tmp_path / "one",
        DataConfig(source="synthetic-faces", image_size=16, synthetic_count=240),
        ModelConfig(image_size=16, channels=(8, 16), latent_dim=8),
        TrainConfig(epochs=3, batch_size=BATCH, val_fraction=0.25, lr=2e-3, seed=0),
        progress=False,
        device="cpu",
    )
    single, double = _history(one)[-1], _history(two_process_run)[-1]
    assert double["epoch"] == single["epoch"] == 3
    assert abs(double["val_loss"] - single["val_loss"]) <= 0.03 * single["val_loss"], (single, double)
    first = _history(one)[0]["val_loss"]
    assert single["val_loss"] < 0.7 * first  # it learned: the comparison is not between two untrained models
    state = Run(two_process_run).train_state()
    assert state["world_size"] == 2 and state["n_train"] == 180 and state["epochs_done"] == 3


@pytest.mark.slow
def test_resume_of_a_two_process_run_is_exact(two_process_run, tmp_path):
    out = tmp_path / "resumed"
    first = _train_two(out, 2)
    assert first.returncode == 0, first.stderr[-2000:]
    resumed = _train_two(out, 3, "--resume", torchrun=True)  # the same world size, launched by torchrun itself
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight, again = _weights(two_process_run), _weights(out)
    assert straight.keys() == again.keys()
    for name in straight:
        assert torch.equal(straight[name], again[name]), name
    for column in ("train_loss", "val_loss"):  # every epoch's losses too, not only the final weights
        expected = [row[column] for row in _history(two_process_run)]
        assert [row[column] for row in _history(out)] == expected, column


@pytest.mark.slow
def test_resume_with_another_world_size_is_refused(two_process_run, tmp_path, capsys):
    run = Path(shutil.copytree(two_process_run, tmp_path / "run"))
    before = Run(run).weights_path("last").read_bytes()
    assert exit_status(["train", "--out", str(run), "--resume", "--epochs", "4"]) == 2
    err = capsys.readouterr().err
    assert "trained by 2 process(es), this run has 1; resume with --devices 2" in err and err.count("\n") == 1
    assert Run(run).weights_path("last").read_bytes() == before


@pytest.mark.parametrize("world", [2, 3])
def test_rank_shards_make_up_the_one_process_batches(monkeypatch, world):
    order = torch.randperm(103, generator=epoch_generator(0, 1))
    per_rank = 4
    shards = []
    for rank in range(world):
        monkeypatch.setattr(distributed, "world_size", lambda: world)
        monkeypatch.setattr(distributed, "rank", lambda rank=rank: rank)
        shards.append(distributed.shard(order))
    usable = len(order) - len(order) % world
    assert all(len(s) == usable // world for s in shards)  # equal step counts: DDP needs them
    for start in range(0, usable // world, per_rank):
        together = torch.cat([s[start : start + per_rank] for s in shards])
        expected = order[start * world : start * world + len(together)]
        assert sorted(together.tolist()) == sorted(expected.tolist())


def test_one_process_runs_without_a_process_group(tmp_path):
    out = train(
        tmp_path / "run",
        DataConfig(source="synthetic-faces", image_size=16, synthetic_count=40),
        ModelConfig(image_size=16, channels=(8, 16), latent_dim=8),
        TrainConfig(epochs=1, batch_size=8, val_fraction=0.25, seed=0),
        progress=False,
        device="cpu",
    )
    assert not torch.distributed.is_initialized()
    assert Run(out).train_state()["world_size"] == 1
    order = torch.arange(10)
    assert distributed.shard(order) is order and distributed.average(0.25) == 0.25


def test_devices_below_one_is_refused(tmp_path, capsys):
    argv = ["train", *DATA, *MODEL, "--epochs", "1", "--devices", "0", "--out", str(tmp_path / "r")]
    assert exit_status(argv) == 2
    assert "--devices must be >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
