"""Output files a user already has are not overwritten: report --out, export --decoder, reconstruct --out
(issue 22, item 3). An earlier output of the same command is replaced; anything else needs --force."""

from __future__ import annotations

import pytest

from latentatlas.cli import main
from latentatlas.errors import LatentAtlasError
from latentatlas.io import check_output_file, output_mark

USER_TEXT = "my own notes, not latentatlas's\n"


def test_check_output_file_refuses_foreign_files_and_accepts_its_own(tmp_path):
    check_output_file(tmp_path / "new.html", "report")  # absent: fine
    mine = tmp_path / "notes.html"
    mine.write_text(USER_TEXT)
    with pytest.raises(LatentAtlasError, match=r"refusing to overwrite .*notes.html.*latentatlas report.*--force"):
        check_output_file(mine, "report")
    check_output_file(mine, "report", force=True)
    ours = tmp_path / "old.html"
    ours.write_text(f'<meta name="generator" content="{output_mark("report")}">')
    check_output_file(ours, "report")
    with pytest.raises(LatentAtlasError, match="latentatlas export"):  # another command's output is not its own
        check_output_file(ours, "export")
    with pytest.raises(LatentAtlasError, match="a folder of that name exists"):
        check_output_file(tmp_path, "report", force=True)


def _refused(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "refusing to overwrite" in err and "--force" in err
    return err


def test_report_out_keeps_a_users_file_and_replaces_its_own(tiny_run_copy, tmp_path, capsys):
    notes = tmp_path / "notes.html"
    notes.write_text(USER_TEXT)
    _refused(capsys, ["report", str(tiny_run_copy.path), "--no-umap", "--out", str(notes)])
    assert notes.read_text() == USER_TEXT and sorted(p.name for p in tmp_path.iterdir()) == ["notes.html", "run"]
    fresh = tmp_path / "r.html"
    assert main(["report", str(tiny_run_copy.path), "--no-umap", "--out", str(fresh)]) == 0
    assert main(["report", str(tiny_run_copy.path), "--no-umap", "--out", str(fresh)]) == 0  # its own: replaced
    assert main(["report", str(tiny_run_copy.path), "--no-umap", "--out", str(notes), "--force"]) == 0
    assert notes.read_text().startswith("<!doctype html>")


def test_export_decoder_keeps_a_users_file(tiny_run_copy, tmp_path, capsys):
    model = tmp_path / "model.pt"
    model.write_bytes(b"someone else's weights")
    _refused(capsys, ["export", str(tiny_run_copy.path), "--decoder", str(model)])
    assert model.read_bytes() == b"someone else's weights"
    decoder = tmp_path / "decoder.pt"
    assert main(["export", str(tiny_run_copy.path), "--decoder", str(decoder)]) == 0
    assert main(["export", str(tiny_run_copy.path), "--decoder", str(decoder)]) == 0
    assert main(["export", str(tiny_run_copy.path), "--decoder", str(model), "--force"]) == 0


def test_reconstruct_keeps_a_users_picture_and_the_json_beside_it(tiny_run_copy, tmp_path, capsys):
    png, json_file = tmp_path / "holiday.png", tmp_path / "holiday.json"
    json_file.write_text('{"trip": "alps"}')
    _refused(capsys, ["reconstruct", str(tiny_run_copy.path), "-n", "4", "--out", str(png)])
    assert not png.exists() and json_file.read_text() == '{"trip": "alps"}'  # nothing written
    json_file.unlink()
    png.write_bytes(b"\x89PNG holiday")
    _refused(capsys, ["reconstruct", str(tiny_run_copy.path), "-n", "4", "--out", str(png)])
    assert png.read_bytes() == b"\x89PNG holiday" and not json_file.exists()
    grid = tmp_path / "grid.png"
    for _ in range(2):  # the second run replaces its own PNG and JSON
        assert main(["reconstruct", str(tiny_run_copy.path), "-n", "4", "--out", str(grid)]) == 0
    assert main(["reconstruct", str(tiny_run_copy.path), "-n", "4", "--out", str(png), "--force"]) == 0
    # the run's own default file is always replaceable, even one written before outputs carried a mark
    (tiny_run_copy.path / "reconstructions.png").write_bytes(b"old")
    assert main(["reconstruct", str(tiny_run_copy.path), "-n", "4"]) == 0
