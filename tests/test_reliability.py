"""Issue 22's defects in sampling, analysis, argument handling, memory and data loading: each case ends in
a correct result or in one clear line with exit status 2, never a traceback, a warning dump or a lost file.
(The kill cases are in test_checkpoint.py, next to the other fault injections.)"""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_helpers import exit_status
from latentatlas import checks
from latentatlas.data import DataConfig, decode, load_images
from latentatlas.io import save_npy

TINY = ["--image-size", "32", "--channels", "8,16", "--latent-dim", "8", "--batch-size", "16", "--epochs", "1"]


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LATENTATLAS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _one_line_error(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("latentatlas: error: ") and "Traceback" not in err, err
    return lines[0]


# --------------------------------------------------------------------------- item 5: sample --subset


def test_a_val_sample_does_not_replace_the_train_sample(tiny_run_copy, capsys) -> None:
    run = tiny_run_copy
    assert exit_status(["sample", str(run.path), "--sampler", "gaussian", "-n", "8"]) == 0
    train_vectors = np.load(run.path / "samples" / "gaussian-seed0" / "z.npy")
    assert exit_status(["sample", str(run.path), "--sampler", "gaussian", "-n", "8", "--subset", "val"]) == 0
    assert str(run.path / "samples" / "gaussian-val-seed0") in capsys.readouterr().out
    assert sorted(p.name for p in (run.path / "samples").iterdir()) == ["gaussian-seed0", "gaussian-val-seed0"]
    # the train sample is untouched, and the val one was fitted on the val z-points
    np.testing.assert_array_equal(np.load(run.path / "samples" / "gaussian-seed0" / "z.npy"), train_vectors)
    assert not np.array_equal(np.load(run.path / "samples" / "gaussian-val-seed0" / "z.npy"), train_vectors)


# --------------------------------------------------------------------------- item 6: the tracebacks


def test_analyze_on_all_equal_z_points_is_one_line(tiny_run_copy, capsys) -> None:
    z = np.load(tiny_run_copy.path / "zpoints" / "zpoints.npy")
    save_npy(tiny_run_copy.path / "zpoints" / "zpoints.npy", np.repeat(z[:1], len(z), axis=0))
    assert exit_status(["analyze", str(tiny_run_copy.path)]) == 2
    line = _one_line_error(capsys)
    assert "z-points of run" in line and "are all equal (no variance in any of the 16 components)" in line
    assert not (tiny_run_copy.path / "analysis").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--data", "synthetic-faces", "--out", "a\0b"], r"argument --out: 'a\x00b' contains a NUL"),
        (["train", "--data", "/tmp/x\0y", "--out", "{tmp}/run"], r"argument --data: '/tmp/x\x00y' contains a NUL"),
        (["train", "--config", "a\0.toml", "--out", "{tmp}/run"], "argument --config: 'a\\x00.toml' contains a NUL"),
        (["train", "--config", "{tmp}/nul.toml", "--out", "{tmp}/run"], "[data] source '/tmp/x\\x00y' contains a NUL"),
        (["encode", "R\0"], "argument RUN: 'R\\x00' contains a NUL"),
        (["analyze", "R\0"], "argument RUN: 'R\\x00' contains a NUL"),
        (["sample", "R\0", "--sampler", "gaussian"], "argument RUN: 'R\\x00' contains a NUL"),
        (["sample", "{tmp}/run", "--sampler", "gaussian", "--out", "s\0"], "argument --out: 's\\x00' contains a NUL"),
    ],
)
def test_nul_characters_in_paths_are_one_line(argv, message, tmp_path, capsys) -> None:
    """The fuzz cases of issue 22 that ended in `ValueError: embedded null byte`."""
    (tmp_path / "nul.toml").write_text('[data]\nsource = "/tmp/x\\u0000y"\n')
    assert exit_status([arg.replace("{tmp}", str(tmp_path)) for arg in argv]) == 2
    assert message in _one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_a_data_source_with_a_nul_character_is_refused_by_the_config() -> None:
    with pytest.raises(checks.LatentAtlasError, match="data source '/tmp/x\\\\x00y' contains a NUL character"):
        DataConfig(source="/tmp/x\0y")


def test_training_that_cannot_fit_in_memory_is_refused_before_allocating(tmp_path, monkeypatch, capsys) -> None:
    """`train --image-size 4096` on a small machine ended in `RuntimeError: can't allocate memory` inside
    Adam; the model and one batch are now counted against the memory available first."""
    monkeypatch.setattr(checks, "available_memory", lambda: 2**28)
    out = tmp_path / "run"
    argv = ["train", "--data", "synthetic-faces", "--synthetic-count", "2", "--out", str(out), "--device", "cpu"]
    assert exit_status([*argv, "--image-size", "1024", "--channels", "8,16", "--latent-dim", "8"]) == 2
    line = _one_line_error(capsys)
    assert "training 1024 px images in batches of 1 would need about 0.6 GiB of memory, 0.2 GiB is available" in line
    assert "use a smaller --image-size" in line and not (out / "checkpoints").exists()
    # the same run at 32 px fits in the same 256 MiB
    assert exit_status([*argv, *TINY]) == 0


def test_available_memory_counts_the_address_space_limit(monkeypatch) -> None:
    monkeypatch.setattr(checks.resource, "getrlimit", lambda kind: (6 * 2**30, checks.resource.RLIM_INFINITY))
    monkeypatch.setattr(checks, "_proc_kib", lambda path, key: 2**30 if key == "VmSize" else 64 * 2**30)
    assert checks.available_memory() == 5 * 2**30
    with pytest.raises(checks.LatentAtlasError, match="would need about 6.0 GiB of memory, 5.0 GiB is available"):
        checks.memory(6 * 2**30, "it")


# --------------------------------------------------------------------------- item 7: data


def _png(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_pillows_bomb_warning_is_silenced_and_its_bombs_listed(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40 * 40)  # Pillow warns above this, refuses above twice it
    folder = tmp_path / "pictures"
    folder.mkdir()
    (folder / "a.png").write_bytes(_png(20, 20))
    (folder / "warned.png").write_bytes(_png(50, 50))  # 2500 pixels: Pillow's multi-line warning
    (folder / "refused.png").write_bytes(_png(60, 60))  # 3600 pixels: Pillow's own error
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning reaching the terminal fails the test
        loaded = load_images(DataConfig(source=str(folder), image_size=16), progress=False)
    assert loaded.meta["path"].tolist() == ["a.png", "warned.png"]
    assert loaded.skipped == ["refused.png (3,600 pixels is more than the 50,000,000 decoded per image)"]
    err = capsys.readouterr().err
    assert "DecompressionBomb" not in err and err.count("\n") == 1


def test_images_over_the_pixel_cap_are_listed_with_the_reason(tmp_path) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    (folder / "small.png").write_bytes(_png(20, 20))
    (folder / "large.png").write_bytes(_png(8000, 8000, "L"))
    loaded = load_images(DataConfig(source=str(folder), image_size=16), progress=False)
    assert loaded.meta["path"].tolist() == ["small.png"]
    assert loaded.skipped == ["large.png (8000 x 8000 pixels is more than the 50,000,000 decoded per image)"]


def test_a_zip_member_name_held_twice_is_one_row_and_listed(tmp_path, capsys) -> None:
    archive = tmp_path / "pictures.zip"
    with warnings.catch_warnings(), zipfile.ZipFile(archive, "w") as zf:
        warnings.simplefilter("ignore", UserWarning)  # zipfile's own "Duplicate name" warning
        zf.writestr("a.png", _png(20, 20))
        zf.writestr("b.png", _png(20, 20))
        zf.writestr("b.png", _png(24, 24))
    loaded = load_images(DataConfig(source=str(archive), image_size=16), progress=False)
    assert loaded.meta["path"].tolist() == ["a.png", "b.png"] and len(loaded.images) == 2
    assert loaded.skipped == ["b.png (1 more zip member(s) of this name; the last one is used)"]
    assert "skipped 1 file(s): b.png (1 more zip member" in capsys.readouterr().err


def test_decode_errors_name_the_file_not_a_buffer() -> None:
    with pytest.raises(Image.UnidentifiedImageError, match=r"^photo\.jpg is not an image, or a damaged one$"):
        decode.decode_image(b"not an image", 16, None, name="photo.jpg")
    with pytest.raises(Image.UnidentifiedImageError) as caught:
        decode.decode_image(b"not an image", 16, None)
    assert "BytesIO" not in str(caught.value) and str(caught.value) == "not an image, or a damaged one"


def test_path_from_an_image_file_that_is_not_one_names_it(tiny_run_copy, tmp_path, capsys) -> None:
    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"not a png")
    argv = ["path", str(tiny_run_copy.path), "--kind", "between", "--from-image", str(bad), "--to", "1"]
    assert exit_status(argv) == 2
    line = _one_line_error(capsys)
    assert f"cannot read image {bad}: not an image, or a damaged one" in line and "BytesIO" not in line
