"""Hostile data folders and archives: symbolic links, loops, non-UTF-8 names, bombs, wrong partitions."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_helpers import exit_status
from latentatlas.data import DataConfig, decode, load_images, sources
from latentatlas.errors import LatentAtlasError


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LATENTATLAS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _pictures(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def test_symbolic_links_are_followed_once_and_the_rest_listed(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "pictures"
    _pictures(folder / "real", 4)
    (folder / "real" / "loop").symlink_to(folder)  # a directory loop: pictures/real/loop -> pictures
    (folder / "again").symlink_to(folder / "real")  # a second way into the same folder
    (folder / "alias.png").symlink_to(folder / "real" / "0.png")  # a second link to one file
    (folder / "dangling.png").symlink_to(folder / "missing.png")
    (folder / "self.png").symlink_to(folder / "self.png")  # a file link loop
    loaded = load_images(DataConfig(source=str(folder), image_size=16), progress=False)
    # Four real images, each once, under the first name the walk meets (files of a folder before its
    # subfolders, both in sorted order): no image can land on both sides of the split.
    assert len(loaded) == 4
    assert sorted(loaded.meta["path"]) == ["again/1.png", "again/2.png", "again/3.png", "alias.png"]
    assert sorted(loaded.skipped) == [
        "again/0.png (a second link)",
        "again/loop/ (a folder already listed: symbolic link loop)",
        "dangling.png (No such file or directory)",
        "real/ (a folder already listed: symbolic link loop)",
        "self.png (Too many levels of symbolic links)",
    ]
    assert "skipped 5 file(s)" in capsys.readouterr().err


def test_non_utf8_file_names_are_skipped_and_listed(tmp_path: Path) -> None:
    folder = tmp_path / "pictures"
    _pictures(folder, 2)
    os.rename(os.fsencode(folder / "1.png"), os.fsencode(folder) + b"/caf\xe9.png")
    loaded = load_images(DataConfig(source=str(folder), image_size=16), progress=False)
    assert loaded.meta["path"].tolist() == ["0.png"]
    assert loaded.skipped == ["caf\ufffd.png (file name is not UTF-8)"]


def test_only_unusable_files_is_one_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    (folder / "dangling.png").symlink_to(folder / "missing.png")
    with pytest.raises(LatentAtlasError, match=r"no images .* found in .*pictures \(1 skipped, e.g. dangling.png"):
        load_images(DataConfig(source=str(folder), image_size=16), progress=False)


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_decompression_bombs_are_refused_from_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode, "MAX_DECODE_PIXELS", 100 * 100)
    assert decode.decode_image(_png(100, 100), 16, None).shape == (16, 16, 3)
    with pytest.raises(Image.DecompressionBombError, match="101 x 100 pixels is more than the 10,000"):
        decode.decode_image(_png(101, 100), 16, None)


@pytest.mark.parametrize("form", ["folder", "zip"])
def test_oversized_files_and_bomb_members_are_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str):
    monkeypatch.setattr(decode, "MAX_DECODE_PIXELS", 64 * 64)
    monkeypatch.setattr(sources, "MAX_FILE_BYTES", 50_000)
    files = {"a.png": _png(20, 20), "bomb.png": _png(300, 300), "huge.bmp": b"BM" + b"\0" * 60_000}
    if form == "folder":
        source = tmp_path / "pictures"
        source.mkdir()
        for name, blob in files.items():
            (source / name).write_bytes(blob)
    else:
        source = tmp_path / "pictures.zip"
        with zipfile.ZipFile(source, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, blob in files.items():
                archive.writestr(name, blob)  # the 60 kB member packs into a few hundred bytes
    loaded = load_images(DataConfig(source=str(source), image_size=16), progress=False)
    assert loaded.meta["path"].tolist() == ["a.png"] and loaded.skipped == [
        "bomb.png (300 x 300 pixels is more than the 4,096 decoded per image)",
        "huge.bmp (0.1 MiB, more than the 0.0 MiB read per image)",
    ]


@pytest.mark.parametrize("partition", ["train", "valid", "test"])
def test_a_partition_for_a_source_without_partitions_is_an_error(tmp_path: Path, partition: str) -> None:
    with pytest.raises(LatentAtlasError, match=f"partition '{partition}' applies to CelebA sources only"):
        DataConfig(source="synthetic-faces", partition=partition)
    _pictures(tmp_path / "pictures", 2)
    with pytest.raises(LatentAtlasError, match=f"partition '{partition}' applies to CelebA sources only"):
        load_images(DataConfig(source=str(tmp_path / "pictures"), image_size=16, partition=partition))


def test_an_empty_data_source_is_an_error_not_the_working_directory(tmp_path: Path, capsys) -> None:
    assert exit_status(["train", "--data", "", "--out", str(tmp_path / "run")]) == 2
    assert "the data source is empty" in capsys.readouterr().err
    with pytest.raises(LatentAtlasError, match="data source is empty"):
        DataConfig(source="")
