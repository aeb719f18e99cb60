"""The core commands (train, encode, reconstruct) in-process: a working round trip, and user mistakes
answered with one line on stderr, exit status 2, no traceback and nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from latentatlas.cli import main
from latentatlas.store import Run

TINY_OPTIONS = ["--image-size", "32", "--channels", "8,16", "--latent-dim", "8", "--batch-size", "16"]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("latentatlas: error: ") and "Traceback" not in err
    return lines[0]


def test_train_encode_reconstruct_round_trip(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["train", "--data", "synthetic-faces", "--synthetic-count", "64", "--out", str(out), *TINY_OPTIONS]
    assert main([*common, "--epochs", "1", "--val-fraction", "0.25"]) == 0
    assert "trained" in capsys.readouterr().out
    # Resume takes the architecture and data from the run; only the new total is given.
    assert main(["train", "--out", str(out), "--resume", "--epochs", "2"]) == 0
    run = Run(out)
    assert run.train_state()["epochs_done"] == 2 and list(run.history()["epoch"]) == [1, 2]
    assert run.model_config.channels == (8, 16) and run.data_config.synthetic_count == 64

    assert main(["encode", str(out)]) == 0
    assert "64 z-points of dimension 8" in capsys.readouterr().out
    assert run.zpoints().shape == (64, 8)
    assert run.metadata()["subset"].value_counts().to_dict() == {"train": 48, "val": 16}

    split = np.load(out / "split.npy")
    images = np.asarray(run.images().images)
    png = tmp_path / "grid.png"
    assert main(["reconstruct", str(out), "-n", "6", "--out", str(png)]) == 0
    summary = json.loads((tmp_path / "grid.json").read_text())
    assert (summary["n"], summary["subset"], summary["figures"][0]["file"]) == (6, "val", "grid.png")
    originals, recon = grid_rows(png, 6)
    assert originals.shape == recon.shape == (6, 32, 32, 3)
    # the originals are distinct held-out images, in the order of the source; the MSE is theirs
    assert rows_of(originals, images) == sorted(set(rows_of(originals, images)))
    assert all(split[row] == 1 for row in rows_of(originals, images))
    mse = np.mean((originals / 255.0 - recon / 255.0) ** 2)
    assert summary["mse"] == pytest.approx(mse, rel=1e-5) and f"MSE {mse:.5f}" in summary["figures"][0]["caption"]
    assert main(["reconstruct", str(out), "-n", "4", "--subset", "train"]) == 0
    originals, recon = grid_rows(out / "reconstructions.png", 4)
    assert all(split[row] == 0 for row in rows_of(originals, images)) and len(originals) == 4
    summary = json.loads((out / "reconstructions.json").read_text())
    mse = np.mean((originals / 255.0 - recon / 255.0) ** 2)
    assert summary["subset"] == "train" and summary["mse"] == pytest.approx(mse, rel=1e-5)


def grid_rows(path, n: int, size: int = 32, pad: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The (originals, reconstructions) tiles of a one-block reconstruction grid of n columns, drawn twice
    as large: the originals on the first row, their reconstructions below."""
    with Image.open(path) as picture:
        pixels = np.asarray(picture.convert("RGB"))
    cell = size + pad
    assert pixels.shape == (2 * (2 * cell + pad), 2 * (n * cell + pad), 3)
    grid = pixels[::2, ::2]
    rows = [[grid[pad + r * cell :][:size, pad + c * cell :][:, :size] for c in range(n)] for r in range(2)]
    return np.stack(rows[0]), np.stack(rows[1])


def rows_of(tiles: np.ndarray, images: np.ndarray) -> list[int]:
    """The source row of each tile (each must be exactly one image of the source)."""
    rows = []
    for tile in tiles:
        matches = np.flatnonzero((images == tile).all(axis=(1, 2, 3)))
        assert len(matches) == 1
        rows.append(int(matches[0]))
    return rows


def test_source_paths_are_stored_absolute(tmp_path, monkeypatch):
    images = np.random.default_rng(0).integers(0, 256, (6, 40, 40, 3), dtype=np.uint8)
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i}.png")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "pictures", "--out", "run", "--epochs", "1", *TINY_OPTIONS]) == 0
    assert Run(tmp_path / "run").data_config.source == str(folder.resolve())


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--data", "{tmp}/missing"], "not found"),
        (["--data", "synthetic-faces", "--image-size", "40"], "multiple of 16"),
        (["--data", "synthetic-faces", "--latent-dim", "0"], "latent dimension"),
        (["--data", "synthetic-faces", "--epochs", "0"], "epochs"),
        (["--data", "synthetic-faces", "--val-fraction", "1.5"], "validation fraction"),
        (["--data", "{tmp}/empty"], "no images"),
        (["--data", "{tmp}/empty.zip"], "zip"),
        ([], "--data is required"),
        (["--resume"], "cannot resume"),
    ],
)
def test_train_mistakes(tmp_path, capsys, arguments, message):
    (tmp_path / "empty").mkdir()
    import zipfile

    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as archive:
        archive.writestr("readme.txt", "no pictures here")
    out = tmp_path / "run"
    arguments = [a.replace("{tmp}", str(tmp_path)) for a in arguments]
    assert main(["train", "--out", str(out), "--synthetic-count", "20", *arguments]) == 2
    assert message in _one_line_error(capsys)
    assert not out.exists()  # validated before writing anything


def test_train_into_a_trained_run_is_refused(tiny_run_copy, capsys):
    before = (tiny_run_copy.path / "model.safetensors").read_bytes()
    assert main(["train", "--data", "synthetic-faces", "--out", str(tiny_run_copy.path), "--epochs", "1"]) == 2
    assert "already holds a trained model; use --resume or another --out" in _one_line_error(capsys)
    assert (tiny_run_copy.path / "model.safetensors").read_bytes() == before


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--latent-dim", "32"], "different architecture (latent_dim 16 -> 32)"),
        (["--channels", "16,32,64"], "different architecture"),
        (["--activation", "relu"], "different architecture"),
        (["--synthetic-count", "50"], "different data"),
        (["--seed", "3"], "different seed"),
    ],
)
def test_resume_with_other_settings(tiny_run_copy, capsys, arguments, message):
    before = (tiny_run_copy.path / "train_state.json").read_text()
    assert main(["train", "--out", str(tiny_run_copy.path), "--resume", "--epochs", "5", *arguments]) == 2
    assert message in _one_line_error(capsys)
    assert (tiny_run_copy.path / "train_state.json").read_text() == before


@pytest.mark.parametrize("command", ["encode", "reconstruct"])
def test_commands_on_a_folder_without_model(tiny_run_copy, capsys, command):
    import shutil

    shutil.rmtree(tiny_run_copy.path / "checkpoints")  # a training killed before its first commit
    (tiny_run_copy.path / "model.safetensors").unlink()
    assert main([command, str(tiny_run_copy.path)]) == 2
    assert "no trained model" in _one_line_error(capsys)


@pytest.mark.parametrize("command", ["encode", "reconstruct"])
def test_commands_on_a_folder_that_is_not_a_run(tmp_path, capsys, command):
    assert main([command, str(tmp_path)]) == 2
    assert "not a latentatlas run folder" in _one_line_error(capsys)
    assert main([command, str(tmp_path / "missing")]) == 2
    assert "does not exist" in _one_line_error(capsys)


def test_encode_another_source_marks_it_external(tiny_run_copy, capsys):
    assert main(["encode", str(tiny_run_copy.path), "--data", "synthetic-faces", "--synthetic-count", "12"]) == 0
    run = Run(tiny_run_copy.path)
    assert run.zpoints().shape == (12, 16) and set(run.metadata()["subset"]) == {"external"}


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["-n", "0"], "the number of images must be an integer >= 1, got 0"),
        (["--out", "{run}/grid.jpg"], "ending in .png"),
        (["--columns", "0"], "--columns"),
    ],
)
def test_reconstruct_mistakes(tiny_run_copy, capsys, arguments, message):
    arguments = [a.replace("{run}", str(tiny_run_copy.path)) for a in arguments]
    assert main(["reconstruct", str(tiny_run_copy.path), *arguments]) == 2
    assert message in _one_line_error(capsys)
    assert not (tiny_run_copy.path / "reconstructions.png").exists()


def test_encode_on_a_run_without_split_names_train(tiny_run_copy, capsys):
    (tiny_run_copy.path / "split.npy").unlink()
    assert main(["encode", str(tiny_run_copy.path)]) == 2
    assert "latentatlas train" in _one_line_error(capsys)


@pytest.mark.slow
def test_demo_runs_every_step_and_is_rerunnable(tmp_path, capsys):
    from latentatlas.io import read_json
    from latentatlas.samplers import SAMPLERS

    out = tmp_path / "demo"
    options = [
        "--out",
        str(out),
        "--synthetic-count",
        "160",
        "--image-size",
        "32",
        "--latent-dim",
        "8",
        "--channels",
        "8,16",
        "--epochs",
        "2",
        "-n",
        "20",
        "--grid",
        "4",
        "--no-fid",
    ]
    assert main(["demo", *options]) == 0
    printed = capsys.readouterr().out
    assert "| uniform-box |" in printed and "report:" in printed
    assert "radii.png:" in printed and "projections.png:" in printed  # the analysis figures are listed
    run = Run(out)
    assert run.zpoints().shape == (160, 8)
    assert (out / "analysis" / "analysis.json").is_file() and (out / "report.html").is_file()
    sampled = {read_json(p)["sampler"] for p in (out / "samples").glob("*/info.json")}
    assert sampled == set(SAMPLERS)
    assert len(list((out / "paths").glob("*/grid.png"))) == 3
    rows = {row["name"] for row in read_json(out / "evaluation" / "evaluation.json")["rows"]}
    assert set(SAMPLERS) <= rows
    # A second demo reuses the trained run instead of refusing the existing folder.
    assert main(["demo", *options]) == 0
    assert run.train_state()["epochs_done"] == 2


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["analyze", "{run}", "--radius-b", "-1,2"], "number > 0"),
        (["analyze", "{run}", "--slice-b", "-1.5"], "number > 0"),
        (["path", "{run}", "--kind", "traverse", "--component", "0", "--range", "-3,-5", "--steps", "2"], ""),
    ],
)
def test_negative_comma_lists_reach_the_command(tiny_run_copy, capsys, arguments, message):
    # argparse alone would call "-1,2" an unknown option ("expected one argument"); every command must
    # see it as a value and answer with its own validation.
    status = main([a.format(run=tiny_run_copy.path) for a in arguments])
    if message:
        assert status == 2 and message in _one_line_error(capsys)
    else:
        assert status == 0


def test_train_from_a_config_file_with_flags_overriding_it(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text(
        "[model]\nimage_size = 32\nchannels = [8, 16]\nlatent_dim = 6\n\n"
        "[train]\nepochs = 1\nbatch_size = 16\nval_fraction = 0.25\nlr = 2e-3\n\n"
        '[data]\nsource = "synthetic-faces"\nsynthetic_count = 32\n'
    )
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(out), "--latent-dim", "4"]) == 0
    run = Run(out)
    assert run.model_config.latent_dim == 4  # the flag wins over the file
    assert run.model_config.channels == (8, 16) and run.train_config.lr == 2e-3
    assert run.data_config.synthetic_count == 32 and run.data_config.image_size == 32
    # Not a terminal: the per-epoch line still reaches stderr.
    err = capsys.readouterr().err
    assert "epoch 1/1: train loss " in err and "images/s" in err


@pytest.mark.parametrize(
    "text, message",
    [
        ("[model]\nlatent_dim = 16.0\n", "model.latent_dim must be an integer, got 16.0"),
        ('[model]\nbatch_norm = "no"\n', "model.batch_norm must be true or false"),
        ("[train]\nepochs = 2\nlearning_rate = 1\n", "unknown train config keys: learning_rate"),
    ],
)
def test_bad_config_files_are_one_line(tmp_path, capsys, text, message):
    config = tmp_path / "run.toml"
    config.write_text(text)
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--data", "synthetic-faces", "--out", str(out)]) == 2
    assert message in _one_line_error(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["path", "R", "--range", "-3,3"], ["path", "R", "--range=-3,3"]),
        (["analyze", "R", "--radius-b", "-1,2", "--seed", "3"], ["analyze", "R", "--radius-b=-1,2", "--seed", "3"]),
        (["x", "-p", "-1.5,2"], ["x", "-p-1.5,2"]),
        (["x", "--slice-b", "-1.5"], ["x", "--slice-b", "-1.5"]),  # one negative number: argparse handles it
        (["x", "--range=-3,3"], ["x", "--range=-3,3"]),
        (["x", "--", "--range", "-3,3"], ["x", "--", "--range", "-3,3"]),
    ],
)
def test_negative_comma_lists_are_attached_to_their_flag(argv, expected):
    from latentatlas.cli.common import _attach_negative_lists

    assert _attach_negative_lists(argv) == expected


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["sample", "RUN", "--sampler", "uniform-box", "--b", "1e308", "-n", "4"], r"b must be at most 1e\+12"),
        (["sample", "RUN", "--sampler", "gaussian", "-n", "1000000000000"], r"would need .* GiB \(limit 8 GiB\)"),
        (["path", "RUN", "--kind", "origin-to-centre", "--steps", "100000000000"], "steps must be an integer <= 10000"),
        (["path", "RUN", "--kind", "plane", "--plane", "1,2", "--angle", "1e308"], "angle must be a finite number"),
        (["sample", "RUN", "--sampler", "gaussian", "--seed", "18446744073709551616"], "seed must be an integer <="),
        (["sample", "RUN", "--sampler", "gaussian", "-n", "4", "--out", "RUN"], "refusing to replace .*choose another"),
        (["sample", "RUN", "--sampler", "gaussian", "-n", "4", "--out", "/proc/x"], "cannot write /proc/x"),
    ],
)
def test_out_of_range_numbers_and_outputs_are_one_line(tiny_run_copy, capsys, arguments, message):
    import re

    before = sorted(p.name for p in tiny_run_copy.path.iterdir())
    argv = [str(tiny_run_copy.path) if a == "RUN" else a for a in arguments]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0]), err
    assert sorted(p.name for p in tiny_run_copy.path.iterdir() if p.name != ".lock") == [
        n for n in before if n != ".lock"
    ]
