"""`latentatlas import` / `export`: another model's z-points (and TorchScript decoder) become a run."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from cli_helpers import exit_status
from latentatlas.io import read_json
from latentatlas.pipelines.importer import import_run
from latentatlas.store import Run


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    """The tiny run's decoder as TorchScript, and an imported run holding its z-points, split and decoder."""
    folder = tmp_path_factory.mktemp("import")
    decoder = folder / "decoder.pt"
    assert exit_status(["export", str(tiny_run.path), "--decoder", str(decoder)]) == 0
    meta = folder / "meta.csv"
    tiny_run.metadata()[["image_id", "skin_tone"]].to_csv(meta, index=False)
    argv = ["import", str(folder / "imported"), "--zpoints", str(tiny_run.zpoints_file("zpoints.npy"))]
    argv += ["--meta", str(meta), "--decoder", str(decoder), "--split", str(tiny_run.path / "split.npy")]
    assert exit_status([*argv, "--image-size", "32"]) == 0
    return decoder, Run(folder / "imported")


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_exported_decoder_is_plain_torchscript_equal_to_the_trained_one(tiny_run, exported):
    decoder, _ = exported
    scripted = torch.jit.load(str(decoder))
    z = torch.from_numpy(np.array(tiny_run.zpoints()[:5]))
    with torch.no_grad():
        expected = tiny_run.load_model("cpu").decode(z)
        assert torch.equal(scripted(z), expected)


def test_imported_run_holds_the_zpoints_split_and_metadata(tiny_run, exported):
    _, run = exported
    assert run.imported and run.latent_dim == 16 and run.image_size == 32
    np.testing.assert_array_equal(run.zpoints(), tiny_run.zpoints())
    np.testing.assert_array_equal(run.split(), tiny_run.split())
    meta = run.metadata()
    assert list(meta.columns) == ["index", "subset", "image_id", "skin_tone"]
    assert (meta["subset"] == tiny_run.metadata()["subset"]).all()
    np.testing.assert_allclose(meta["skin_tone"], tiny_run.metadata()["skin_tone"], rtol=1e-6)  # via CSV text
    assert read_json(run.path / "imported.json")["decoder"] == "decoder.pt"


def test_imported_decoder_decodes_identically(tiny_run, exported):
    _, run = exported
    z = np.asarray(tiny_run.zpoints()[:20])
    np.testing.assert_array_equal(run.decode(z), tiny_run.decode(z))


@pytest.mark.parametrize("sampler", ["gaussian", "uniform-box"])
def test_samples_of_the_imported_run_equal_the_original(tiny_run, exported, sampler, tmp_path):
    from latentatlas.pipelines.sample import sample_run

    _, imported = exported
    original = sample_run(tiny_run, sampler, n=12, seed=3, out=tmp_path / "a")
    again = sample_run(imported, sampler, n=12, seed=3, out=tmp_path / "b")
    for name in ("z.npy", "grid.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert original["fitted_on"] == again["fitted_on"] == 300


def test_commands_work_on_an_imported_run(exported, tmp_path):
    _, imported = exported
    run = tmp_path / "run"
    shutil.copytree(imported.path, run)
    assert exit_status(["analyze", str(run), "--no-figures", "--mcd-samples", "200"]) == 0
    analysis = read_json(run / "analysis" / "analysis.json")
    assert analysis["subset"] == "train"
    assert exit_status(["path", str(run), "--kind", "origin-to-centre", "--steps", "4"]) == 0
    assert len(list((run / "paths").iterdir())) == 1
    assert exit_status(["evaluate", str(run), "--samplers", "gaussian", "-n", "60", "--instruments", "quick"]) == 0
    evaluation = read_json(run / "evaluation" / "evaluation.json")
    assert evaluation["settings"]["real_images"] == "decoded z-points (imported run)"
    # without real images the table says so beside the scores, in the Markdown and in the report
    markdown = (run / "evaluation" / "evaluation.md").read_text(encoding="utf-8")
    assert markdown.startswith("No real images: this run was imported from z-points alone")
    assert exit_status(["report", str(run)]) == 0
    html = (run / "report.html").read_text(encoding="utf-8")
    assert "gaussian" in html and html.count("No real images: this run was imported") >= 2


def test_a_run_without_decoder_does_latent_work_and_names_what_is_missing(tiny_run, tmp_path, capsys):
    run_dir = tmp_path / "plain"
    run = import_run(run_dir, tiny_run.zpoints_file("zpoints.npy"), val_fraction=0.2)
    assert (run.split() == 1).sum() == 80
    assert exit_status(["analyze", str(run_dir), "--no-figures", "--mcd-samples", "200"]) == 0
    argv = ["evaluate", str(run_dir), "--samplers", "gaussian", "-n", "50", "--no-fid", "--no-faces"]
    assert exit_status(argv) == 0
    capsys.readouterr()
    assert exit_status(["sample", str(run_dir), "--sampler", "gaussian", "-n", "4"]) == 2
    assert "imported without a decoder" in capsys.readouterr().err
    assert exit_status(["evaluate", str(run_dir), "--samplers", "gaussian", "-n", "50", "--no-fid"]) == 2
    assert "--no-fid --no-faces" in capsys.readouterr().err
    assert exit_status(["reconstruct", str(run_dir)]) == 2
    assert "imported from z-points" in capsys.readouterr().err


def _save(path, array):
    np.save(path, array)
    return path


@pytest.mark.parametrize(
    "case, message",
    [
        ("nan", "NaN"),
        ("three_d", "2-D array"),
        ("one_d", "2-D array"),
        ("meta_rows", "has 399 rows, the z-points 400"),
        ("decoder_size", "returns 32x32 images, the declared image size is 64"),
        ("decoder_dim", "failed on"),
        ("not_torchscript", "is not a TorchScript decoder"),
        ("split_values", "one 0 (train) or 1 (held out) per z-point"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tiny_run, exported, tmp_path, capsys, case, message):
    decoder, _ = exported
    z = np.asarray(tiny_run.zpoints())
    zpoints = _save(tmp_path / "z.npy", z)
    argv = ["--zpoints", str(zpoints)]
    if case == "nan":
        bad = z.copy()
        bad[7, 3] = np.nan
        argv = ["--zpoints", str(_save(tmp_path / "nan.npy", bad))]
    elif case == "three_d":
        argv = ["--zpoints", str(_save(tmp_path / "z3.npy", z.reshape(400, 4, 4)))]
    elif case == "one_d":
        argv = ["--zpoints", str(_save(tmp_path / "z1.npy", z[:, 0]))]
    elif case == "meta_rows":
        pd.DataFrame({"label": np.arange(399)}).to_parquet(tmp_path / "m.parquet")
        argv += ["--meta", str(tmp_path / "m.parquet")]
    elif case == "decoder_size":
        argv += ["--decoder", str(decoder), "--image-size", "64"]
    elif case == "decoder_dim":
        argv = ["--zpoints", str(_save(tmp_path / "z8.npy", z[:, :8])), "--decoder", str(decoder)]
    elif case == "not_torchscript":
        (tmp_path / "fake.pt").write_bytes(b"not a zip archive")
        argv += ["--decoder", str(tmp_path / "fake.pt")]
    elif case == "split_values":
        argv += ["--split", str(_save(tmp_path / "s.npy", np.full(400, 2)))]
    out = tmp_path / "out"
    assert exit_status(["import", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_import_refuses_to_replace_a_trained_run(tiny_run_copy, capsys):
    argv = ["import", str(tiny_run_copy.path), "--zpoints", str(tiny_run_copy.zpoints_file("zpoints.npy"))]
    assert exit_status(argv) == 2
    assert "refusing to replace" in capsys.readouterr().err
    assert tiny_run_copy.weights_path().is_file()
