"""Damaged run files and out-of-range numbers: one line naming the file or the option, exit status 2."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from cli_helpers import exit_status
from latentatlas.checkpoint import latest_checkpoint


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("latentatlas: error: ") and "Traceback" not in err
    return lines[0]


def _damage(path, how: str) -> None:
    data = path.read_bytes()
    if how == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "bad header":
        path.write_bytes(struct.pack("<Q", 60) + b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 99]}}')
    elif how == "pickle":
        path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    elif how == "nan":
        tensors = load_file(str(path))
        name = next(k for k, v in tensors.items() if v.is_floating_point())
        tensors[name] = torch.full_like(tensors[name], float("nan"))
        save_file(tensors, str(path))


@pytest.mark.parametrize("how", ["random", "empty", "truncated", "bad header", "pickle", "nan"])
@pytest.mark.parametrize("command", [["encode"], ["reconstruct"], ["export", "--decoder", "{tmp}/d.pt"]])
def test_a_damaged_model_file_is_one_line_naming_it(tiny_run_copy, tmp_path, capsys, how, command):
    weights = tiny_run_copy.weights_path("best")
    _damage(weights, how)
    argv = [command[0], str(tiny_run_copy.path), *[a.format(tmp=tmp_path) for a in command[1:]]]
    assert exit_status(argv) == 2
    line = _one_line_error(capsys)
    assert str(weights) in line
    assert ("NaN or infinite" if how == "nan" else "corrupt model checkpoint") in line


@pytest.mark.parametrize("how", ["random", "empty", "truncated", "bad header", "pickle"])
def test_a_damaged_optimizer_file_is_one_line_on_resume(tiny_run_copy, capsys, how):
    optimizer = latest_checkpoint(tiny_run_copy.path).optimizer_path
    _damage(optimizer, how)
    assert exit_status(["train", "--out", str(tiny_run_copy.path), "--resume", "--epochs", "4"]) == 2
    line = _one_line_error(capsys)
    assert "corrupt optimizer checkpoint" in line and str(optimizer) in line
    assert latest_checkpoint(tiny_run_copy.path).epoch == 3  # nothing written


@pytest.mark.parametrize("content", [b"", b"PAR1 this is not parquet", b"\x00" * 100])
def test_garbage_metadata_parquet_is_one_line(tiny_run_copy, capsys, content):
    (tiny_run_copy.zpoints_file("zpoints.parquet")).write_bytes(content)
    assert exit_status(["sample", str(tiny_run_copy.path), "--sampler", "gaussian", "-n", "4"]) == 2
    line = _one_line_error(capsys)
    assert "corrupt z-point metadata" in line and "zpoints.parquet" in line


@pytest.mark.parametrize(
    "options, message",
    [
        (["--seed", "-1"], "seed must be an integer >= 0, got -1"),
        (["--seed", str(2**64)], "seed must be an integer <= 4294967295"),
        (["--latent-dim", "1000000000"], "the model would need"),
        (["--channels", "100000,100000"], "the model would need"),
        (["--partition", "train"], "applies to CelebA sources only"),
        (["--patience", "0"], "patience must be an integer >= 1"),
        (["--lr-schedule", "linear"], "invalid choice"),
        (["--device", "tpu"], "device must be cpu, cuda or cuda:N"),
        (["--data", ""], "the data source is empty"),
    ],
)
def test_out_of_range_training_options(tmp_path, capsys, options, message):
    out = tmp_path / "run"
    argv = ["train", "--data", "synthetic-faces", "--synthetic-count", "20", "--out", str(out), *options]
    assert exit_status(argv) == 2
    assert message in _one_line_error(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    "options, message",
    [
        (["--seed", "-1"], "seed must be an integer >= 0, got -1"),
        (["--seed", str(2**64)], "seed must be an integer <= 4294967295"),
        (["-n", "0"], "the number of images must be an integer >= 1"),
        (["--weights", "first"], "invalid choice"),
    ],
)
def test_out_of_range_reconstruct_options(tiny_run_copy, capsys, options, message):
    assert exit_status(["reconstruct", str(tiny_run_copy.path), *options]) == 2
    assert message in _one_line_error(capsys)
    assert not (tiny_run_copy.path / "reconstructions.png").exists()


def test_a_huge_image_cache_is_refused_before_writing(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--data", "synthetic-faces", "--synthetic-count", str(10**9), "--out", str(out)]
    assert exit_status(argv) == 2
    assert "GiB in the image cache" in _one_line_error(capsys)
    assert not out.exists()
