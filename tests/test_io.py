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
    assert sorted(p.name for p in target.iterdir()) == [".artifact.json", "a.txt"]
    with atomic_folder(target) as tmp:
        (tmp / "c.txt").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == [".artifact.json", "c.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_folder_refuses_a_folder_of_another_kind_and_touches_nothing(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").write_bytes(b"weights")
    with pytest.raises(LatentAtlasError, match="refusing to replace .*not an output of latentatlas"):
        with atomic_folder(run, kind="samples") as tmp:
            (tmp / "grid.png").write_bytes(b"png")
    assert sorted(p.name for p in run.iterdir()) == ["model.safetensors"]
    with atomic_folder(tmp_path / "s", kind="samples") as tmp:
        (tmp / "z.npy").write_bytes(b"1")
    with pytest.raises(LatentAtlasError, match="it is a samples output, not a previous path output"):
        with atomic_folder(tmp_path / "s", kind="path"):
            pass
    with atomic_folder(tmp_path / "s", kind="samples") as tmp:  # same kind: replaced as a whole
        (tmp / "y.npy").write_bytes(b"2")
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [".artifact.json", "y.npy"]


def test_atomic_folder_swap_leaves_old_or_new_never_a_mix(tmp_path, monkeypatch):
    from latentatlas import io

    target = tmp_path / "out"
    with atomic_folder(target, kind="k") as tmp:
        (tmp / "old.txt").write_text("old")
    monkeypatch.setattr(io, "_exchange", lambda a, b: False)  # the two-rename fallback
    with atomic_folder(target, kind="k") as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == [".artifact.json", "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_stale_temps_of_dead_writers_are_cleaned_and_live_ones_kept(tmp_path):
    import subprocess
    import sys

    from latentatlas.io import clean_stale_temps

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    (tmp_path / f".zpoints.npy.{dead_pid}.0123abcd.tmp.npy").write_bytes(b"x" * 100)
    (tmp_path / f".samples.{dead_pid}.89abcdef.tmp").mkdir()
    live = tmp_path / f".other.npy.{os.getpid()}.0123abcd.tmp.npy"
    live.write_bytes(b"y")
    (tmp_path / ".hidden-user-file").write_text("keep")
    removed = clean_stale_temps(tmp_path)
    assert len(removed) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden-user-file", live.name]
    write_text(tmp_path / "a.txt", "a")  # every atomic write cleans its folder too
    assert live.exists()


def test_atomic_path_onto_a_folder_or_unwritable_place_is_one_line(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(LatentAtlasError, match="a folder of that name exists"):
        write_text(tmp_path / "d", "x")
    with pytest.raises(LatentAtlasError, match="cannot write /proc/x.png"):
        write_text("/proc/x.png", "x")


def test_folder_lock_makes_a_second_process_wait_then_give_up(tmp_path):
    import subprocess
    import sys

    from latentatlas.io import folder_lock

    script = (
        "import sys\nfrom latentatlas.io import folder_lock\nfrom latentatlas.errors import LatentAtlasError\n"
        "try:\n    folder_lock(sys.argv[1], timeout=0.3).acquire()\nexcept LatentAtlasError as e:\n"
        "    print(e); sys.exit(2)\n"
    )
    with folder_lock(tmp_path):
        with folder_lock(tmp_path):  # reentrant within a process
            other = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True)
    assert other.returncode == 2
    assert "is in use by another latentatlas command; waiting" in other.stderr
    assert "still in use by another latentatlas command after 0.3 s" in other.stdout
    free = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True)
    assert free.returncode == 0, free.stdout
