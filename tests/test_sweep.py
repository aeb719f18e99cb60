"""`latentatlas sweep`: one run per (latent dim, batch norm), their bulk numbers tabulated from analysis.json."""

from __future__ import annotations

import pandas as pd
import pytest

from cli_helpers import exit_status
from latentatlas.io import read_json
from latentatlas.store import Run


@pytest.mark.slow
def test_sweep_trains_analyses_and_tabulates_each_model(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", "--out", str(out), "--latent-dims", "4,12", "--image-size", "16", "--channels", "8,16"]
    argv += ["--epochs", "1", "--synthetic-count", "120"]
    assert exit_status(argv) == 0
    table = pd.read_csv(out / "sweep.csv")
    assert table[["latent_dim", "batch_norm"]].values.tolist() == [[4, True], [4, False], [12, True], [12, False]]
    for record in table.itertuples():
        run = Run(out / record.run)
        analysis = read_json(run.path / "analysis" / "analysis.json")
        assert run.model_config.latent_dim == record.latent_dim and run.model_config.batch_norm == record.batch_norm
        assert record.participation_ratio == pytest.approx(analysis["pca"]["participation_ratio"])
        assert record.b_match == pytest.approx(analysis["radii"]["b_match"])
        assert record.n_dominant == len(analysis["dominant"]["components"])
        assert 1 <= record.participation_ratio <= record.latent_dim
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert "| synthetic | 12 | False |" in capsys.readouterr().out
    before = Run(out / "synthetic-z4-bn").weights_path("last").stat().st_mtime_ns
    assert exit_status(argv) == 0  # a finished model is reused, not trained again
    assert Run(out / "synthetic-z4-bn").weights_path("last").stat().st_mtime_ns == before


def test_sweep_refuses_a_bad_latent_dim(tmp_path, capsys):
    assert exit_status(["sweep", "--out", str(tmp_path / "s"), "--latent-dims", "0"]) == 2
    assert "latent dim must be an integer >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
