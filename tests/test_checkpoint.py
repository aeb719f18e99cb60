"""Checkpoints as one atomic unit: a kill at any write resumes to the uninterrupted weights; divergence,
best/last weights, early stopping, learning-rate schedules, weights ids and the TorchScript export."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from latentatlas import checkpoint
from latentatlas import train as train_module
from latentatlas.checkpoint import find_checkpoint, latest_checkpoint, weights_id, write_checkpoint
from latentatlas.cli import main
from latentatlas.config import DataConfig, TrainConfig
from latentatlas.errors import LatentAtlasError
from latentatlas.model import ModelConfig
from latentatlas.store import Run
from latentatlas.train import learning_rate_factor, train

MICRO_MODEL = ModelConfig(image_size=32, channels=(8, 16), latent_dim=8)
MICRO_DATA = DataConfig(image_size=32, synthetic_count=48)
STEPS = (
    "model",
    "optimizer",
    "history",
    "state",
    "commit",
    "prune",
    "publish train_state.json",
    "publish history.csv",
    "publish model.safetensors",
)


class Killed(BaseException):
    """Stands for a kill -9: nothing below it catches a BaseException."""


def _train(path: Path, epochs: int = 3, resume: bool = False, **train_options) -> Path:
    options = {"batch_size": 16, "val_fraction": 0.25, "lr_schedule": "cosine", **train_options}
    config = TrainConfig(epochs=epochs, **options)
    return train(path, MICRO_DATA, MICRO_MODEL, config, resume=resume, progress=False, device="cpu")


def _last_weights(path: Path) -> dict[str, torch.Tensor]:
    last = latest_checkpoint(path)
    assert last is not None
    return load_file(str(last.model_path))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    return _last_weights(_train(tmp_path_factory.mktemp("straight") / "run"))


@pytest.mark.slow
@pytest.mark.parametrize("epoch", [1, 2])
@pytest.mark.parametrize("step", STEPS)
def test_a_kill_at_any_checkpoint_write_resumes_to_identical_weights(tmp_path, monkeypatch, uninterrupted, epoch, step):
    calls = []

    def written(name: str) -> None:
        calls.append(name)
        if name == step and len(calls) > (epoch - 1) * len(STEPS):
            raise Killed

    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(checkpoint, "_written", written)
        with pytest.raises(Killed):
            _train(run_dir)
    committed = latest_checkpoint(run_dir)
    if committed is None:  # killed inside the first checkpoint, before its commit: start again
        with pytest.raises(LatentAtlasError, match="holds no checkpoint; train without --resume"):
            _train(run_dir, resume=True)
        _train(run_dir)
    else:
        assert committed.epoch in (epoch - 1, epoch)
        _train(run_dir, resume=True)
    resumed = _last_weights(run_dir)
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")]  # temporaries cleaned


def test_stale_temporary_folders_are_not_checkpoints_and_are_cleaned(tmp_path):
    run_dir = _train(tmp_path / "run", epochs=1)
    stale = run_dir / "checkpoints" / ".epoch-0002.abc.tmp"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    assert latest_checkpoint(run_dir).epoch == 1
    _train(run_dir, epochs=2, resume=True)
    assert not stale.exists() and latest_checkpoint(run_dir).epoch == 2


def test_a_diverging_run_stops_with_one_line_and_keeps_the_last_finite_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["train", "--data", "synthetic-faces", "--synthetic-count", "48", "--out", str(out)]
    tiny = ["--image-size", "32", "--channels", "8,16", "--latent-dim", "8", "--batch-size", "16"]
    assert main([*common, *tiny, "--epochs", "1"]) == 0
    before = _last_weights(out)
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume", "--epochs", "3", "--lr", "1e9"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    error = [line for line in lines if line.startswith("latentatlas: error:")]
    assert len(error) == 1 and "training diverged in epoch 2" in error[0]
    assert "the checkpoint of epoch 1 is kept" in error[0]
    assert "Traceback" not in "\n".join(lines)
    after = _last_weights(out)
    assert latest_checkpoint(out).epoch == 1 and all(torch.equal(before[k], after[k]) for k in before)
    assert all(torch.isfinite(t).all() for t in after.values())


def test_a_run_diverging_in_its_first_epoch_writes_no_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--data", "synthetic-faces", "--synthetic-count", "48", "--out", str(out), "--lr", "1e9"]
    assert main([*argv, "--image-size", "32", "--channels", "8,16", "--latent-dim", "8", "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "training diverged in epoch 1" in err and "nothing was saved" in err
    assert latest_checkpoint(out) is None


def _scripted_validation(monkeypatch, losses: list[float]) -> None:
    """Replace the validation loss by a script, so best epoch, patience and plateau are exact to test."""
    script = iter(losses)
    monkeypatch.setattr(train_module, "evaluate_loss", lambda *args, **kwargs: next(script))


def test_best_and_last_checkpoints_and_early_stopping(tmp_path, monkeypatch, capsys):
    _scripted_validation(monkeypatch, [0.5, 0.3, 0.4, 0.45, 0.2, 0.1])
    run_dir = tmp_path / "run"
    train(run_dir, MICRO_DATA, MICRO_MODEL, TrainConfig(epochs=6, batch_size=16, patience=2), device="cpu")
    assert "early stop after epoch 4: no better validation loss for 2 epochs (best 0.30000 at epoch 2)" in (
        capsys.readouterr().err
    )
    run = Run(run_dir)
    assert list(run.history()["epoch"]) == [1, 2, 3, 4]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["epoch-0002", "epoch-0004"]
    assert run.weights_path("best").parent.name == "epoch-0002" and run.weights_path("last").parent.name == "epoch-0004"
    for which in ("best", "last"):  # the id recorded at the commit is the id of the tensors in the file
        assert run.weights_id(which) == weights_id(run.weights_path(which))
    assert run.weights_id("best") != run.weights_id("last")
    best = run.load_model("cpu", weights="best").state_dict()
    stored = load_file(str(run_dir / "checkpoints" / "epoch-0002" / "model.safetensors"))
    assert all(torch.equal(best[k], stored[k]) for k in stored)
    with pytest.raises(LatentAtlasError, match="weights must be one of best, last, got 'first'"):
        run.weights_path("first")


def test_plateau_halves_the_learning_rate_after_two_flat_epochs(tmp_path, monkeypatch):
    _scripted_validation(monkeypatch, [0.5, 0.6, 0.7, 0.4, 0.45, 0.46])
    run_dir = tmp_path / "run"
    config = TrainConfig(epochs=6, batch_size=16, lr=1e-3, lr_schedule="plateau")
    train(run_dir, MICRO_DATA, MICRO_MODEL, config, progress=False, device="cpu")
    assert list(Run(run_dir).history()["lr"]) == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4])


def test_cosine_factor_decays_from_one_towards_zero():
    config = TrainConfig(epochs=4, lr_schedule="cosine")
    factors = [learning_rate_factor(config, epoch, 1.0) for epoch in range(1, 5)]
    assert factors == pytest.approx(
        [1.0, 0.5 + 0.5 * math.cos(math.pi / 4), 0.5, 0.5 + 0.5 * math.cos(3 * math.pi / 4)]
    )
    assert learning_rate_factor(TrainConfig(lr_schedule="none"), 3, 0.25) == 1.0
    assert learning_rate_factor(TrainConfig(lr_schedule="plateau"), 3, 0.25) == 0.25


@pytest.mark.parametrize(
    "options, message",
    [
        ({"lr_schedule": "linear"}, "lr schedule must be one of none, cosine, plateau, got 'linear'"),
        ({"patience": 0}, "patience must be an integer >= 1, got 0"),
    ],
)
def test_bad_schedule_options(options, message):
    with pytest.raises(LatentAtlasError, match=message):
        TrainConfig(**options)


def test_prune_keeps_only_the_new_and_the_kept_epochs(tmp_path):
    net = torch.nn.Linear(2, 2)
    net.config = MICRO_MODEL  # save_model records the config in the file's metadata
    optimizer = torch.optim.Adam(net.parameters())
    for epoch in (1, 2, 3):
        state = {"epochs_done": epoch, "best_epoch": 1}
        write_checkpoint(tmp_path, net, optimizer, [], state, keep=lambda e: e == 1)  # type: ignore[arg-type]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["epoch-0001", "epoch-0003"]
    assert find_checkpoint(tmp_path, "best").epoch == 1 and find_checkpoint(tmp_path, "last").epoch == 3


@pytest.mark.parametrize("legacy", [False, True])
def test_rewriting_an_epoch_replaces_its_folder_whole(tmp_path, legacy):
    """A run rolled back to an earlier epoch writes epochs that exist already: the new folder replaces
    the old one (also one written before checkpoint folders carried an artifact marker)."""
    net = torch.nn.Linear(2, 2)
    net.config = MICRO_MODEL  # save_model records the config in the file's metadata
    optimizer = torch.optim.Adam(net.parameters())
    write_checkpoint(tmp_path, net, optimizer, [], {"epochs_done": 1, "train_loss": 1.0})  # type: ignore[arg-type]
    old = tmp_path / "checkpoints" / "epoch-0001"
    (old / "stray.txt").write_text("from the rolled-back run")
    if legacy:
        (old / ".artifact.json").unlink()
    write_checkpoint(tmp_path, net, optimizer, [], {"epochs_done": 1, "train_loss": 0.5})  # type: ignore[arg-type]
    last = latest_checkpoint(tmp_path)
    assert last is not None and last.state["train_loss"] == 0.5
    assert not (old / "stray.txt").exists()
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["epoch-0001"]


def test_export_decoder_as_torchscript(tiny_run_copy, tmp_path, capsys):
    out = tmp_path / "decoder.pt"
    assert main(["export", str(tiny_run_copy.path), "--decoder", str(out)]) == 0
    assert "TorchScript decoder" in capsys.readouterr().out
    extra = {"latentatlas.json": ""}
    decoder = torch.jit.load(str(out), _extra_files=extra)
    info = json.loads(extra["latentatlas.json"])
    assert info["latent_dim"] == 16 and info["weights_id"] == tiny_run_copy.weights_id("best")
    z = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    with torch.no_grad():
        images = decoder(torch.from_numpy(z)).clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1)
    assert np.array_equal(images.numpy(), tiny_run_copy.decode(z, device="cpu"))
    assert main(["export", str(tiny_run_copy.path), "--decoder", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_zpoints_and_reconstructions_record_their_weights(tiny_run_copy, capsys):
    assert main(["encode", str(tiny_run_copy.path), "--weights", "last", "--device", "cpu"]) == 0
    info = Run(tiny_run_copy.path).zpoints_info()
    assert info["weights"] == "last" and info["weights_id"] == tiny_run_copy.weights_id("last")
    assert main(["reconstruct", str(tiny_run_copy.path), "-n", "4", "--device", "cpu"]) == 0
    summary = json.loads((tiny_run_copy.path / "reconstructions.json").read_text())
    assert summary["weights_id"] == tiny_run_copy.weights_id("best")


@pytest.mark.parametrize(
    "device, message",
    [("tpu", "device must be cpu, cuda or cuda:N, got 'tpu'"), ("cuda:banana", "device must be cpu, cuda or cuda:N")],
)
def test_bad_devices_are_one_line(tiny_run_copy, capsys, device, message):
    assert main(["encode", str(tiny_run_copy.path), "--device", device]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_a_run_killed_in_its_first_checkpoint_can_be_restarted_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--data", "synthetic-faces", "--synthetic-count", "48", "--out", str(out), "--epochs", "1"]
    tiny = ["--image-size", "32", "--channels", "8,16", "--latent-dim", "8"]
    assert main([*argv, *tiny]) == 0
    shutil.rmtree(out / "checkpoints")  # as if killed before the first commit: config and split are there
    assert main(["train", "--out", str(out), "--resume", "--epochs", "2"]) == 2
    assert "holds no checkpoint; train without --resume first" in capsys.readouterr().err
    assert main([*argv, *tiny]) == 0


def test_weights_id_depends_on_the_tensors_not_on_the_file_bytes(tmp_path):
    import torch
    from safetensors.torch import save_file

    from latentatlas.checkpoint import weights_id

    tensors = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2)}
    save_file(tensors, str(tmp_path / "x.safetensors"), metadata={"k1": "1", "k2": "2"})
    save_file(
        dict(reversed(tensors.items())), str(tmp_path / "y.safetensors"), metadata={"k2": "2", "k1": "1", "z": "3"}
    )
    assert weights_id(tmp_path / "x.safetensors") == weights_id(tmp_path / "y.safetensors")
    tensors["b"][0] = 2.0
    save_file(tensors, str(tmp_path / "z.safetensors"))
    assert weights_id(tmp_path / "z.safetensors") != weights_id(tmp_path / "x.safetensors")


@pytest.mark.parametrize("step", ["commit", "prune", "publish train_state.json", "publish history.csv"])
def test_a_kill_in_the_last_epoch_leaves_no_stale_top_level_copies_after_resume(tmp_path, monkeypatch, step):
    """Killed after the last epoch's commit (or between its top-level copies), a resume with the same total
    trains nothing but must still leave model.safetensors, history.csv and train_state.json at the top
    equal to the last checkpoint's (issue 22, item 2)."""
    calls = []

    def written(name: str) -> None:
        calls.append(name)
        if name == step and len(calls) > len(STEPS):  # in epoch 2, the last one
            raise Killed

    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(checkpoint, "_written", written)
        with pytest.raises(Killed):
            _train(run_dir, epochs=2)
    last = latest_checkpoint(run_dir)
    assert last is not None and last.epoch == 2
    stale = json.loads((run_dir / "train_state.json").read_text())
    assert stale["epochs_done"] == (2 if step.startswith("publish") else 1)  # the state is published first
    _train(run_dir, epochs=2, resume=True)
    for name in ("model.safetensors", "history.csv", "train_state.json"):
        assert (run_dir / name).read_bytes() == (last.folder / name).read_bytes(), name
    state = json.loads((run_dir / "train_state.json").read_text())
    assert state["epochs_done"] == 2 and state["weights_id"] == weights_id(run_dir / "model.safetensors")
    assert [row["epoch"] for row in checkpoint.read_history(run_dir / "history.csv")] == [1, 2]
    assert checkpoint.publish_latest(run_dir) == []  # consistent now: nothing left to re-publish
