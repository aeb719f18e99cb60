import json
import os

import numpy as np
import pytest

from latentatlas.errors import LatentAtlasError
from latentatlas.io import atomic_folder, atomic_path, load_npy, read_json, save_npy, write_json, write_text


def test_failed_write_leaves_previous_file_and_no_temp(tmp_path):
    target = tmp_path / "result.txt"
    write_text(target, "first")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half written")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.txt"]


def test_written_files_get_normal_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    write_text(tmp_path / "a.txt", "x")
    assert os.stat(tmp_path / "a.txt").st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("value", [np.float64("nan"), float("inf"), np.float32("-inf")])
def test_json_turns_non_finite_numbers_into_null(tmp_path, value):
    write_json(tmp_path / "x.json", {"v": value, "arr": np.array([1.0, value])})
    assert json.loads((tmp_path / "x.json").read_text()) == {"v": None, "arr": [1.0, None]}


def test_json_converts_numpy_types(tmp_path):
    write_json(tmp_path / "x.json", {"i": np.int64(3), "f": np.float32(0.5), "a": np.arange(3)})
    assert read_json(tmp_path / "x.json") == {"i": 3, "f": 0.5, "a": [0, 1, 2]}


def test_read_json_errors_are_one_line(tmp_path):
    with pytest.raises(LatentAtlasError, match="missing file"):
        read_json(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(LatentAtlasError, match="corrupt JSON"):
        read_json(tmp_path / "bad.json")


def test_npy_round_trip_is_memory_mapped(tmp_path):
    data = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    save_npy(tmp_path / "z.npy", data)
    loaded = load_npy(tmp_path / "z.npy")
    assert isinstance(loaded, np.memmap)
    np.testing.assert_array_equal(loaded, data)


def test_load_npy_never_unpickles(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(LatentAtlasError, match="corrupt array file"):
        load_npy(tmp_path / "objects.npy", mmap=False)


def test_atomic_folder_replaces_whole_folder_or_nothing(tmp_path):
    target = tmp_path / "out"
    with atomic_folder(target) as tmp:
        (tmp / "a.txt").write_text("1")
    assert (target / "a.txt").read_text() == "1"
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as tmp:
            (tmp / "b.txt").write_text("2")
            raise RuntimeError("crash")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    with atomic_folder(target) as tmp:
        (tmp / "c.txt").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["c.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
