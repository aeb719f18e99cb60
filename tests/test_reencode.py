"""Re-encoding draws (z <- encode(decode(z))): `sample --reencode K` and `evaluate --reencode K,...`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import exit_status
from latentatlas.errors import LatentAtlasError
from latentatlas.io import read_json
from latentatlas.pipelines.evaluate import evaluate_run, sampler_steps
from latentatlas.pipelines.reencode import MAX_ROUNDS, Reencoded, check_rounds, reencode
from latentatlas.pipelines.sample import sample_run
from latentatlas.samplers import make_sampler
from latentatlas.store import Run


def test_reencode_carries_vectors_through_the_autoencoder_onto_its_range(tiny_run):
    z = np.asarray(make_sampler("gaussian").fit(np.asarray(tiny_run.zpoints("train"))).sample(64, seed=1))
    np.testing.assert_array_equal(reencode(tiny_run, z, 0), z.astype(np.float32))
    once, twice = reencode(tiny_run, z, 1), reencode(tiny_run, z, 2)
    np.testing.assert_allclose(once, tiny_run.encode(tiny_run.decode(z)), rtol=0, atol=1e-5)
    np.testing.assert_allclose(twice, tiny_run.encode(tiny_run.decode(once)), rtol=0, atol=1e-5)
    # the first round moves a draw towards the encoder's range; a second round moves it less (3-epoch model: 0.65x)
    first_step = np.linalg.norm(once - z, axis=1).mean()
    second_step = np.linalg.norm(twice - once, axis=1).mean()
    assert second_step < 0.8 * first_step, (first_step, second_step)


def test_a_reencoded_sampler_draws_by_seed_and_defines_no_density(tiny_run):
    fitted = make_sampler("gaussian").fit(np.asarray(tiny_run.zpoints("train")))
    wrapped = Reencoded(fitted, tiny_run, 1)
    np.testing.assert_array_equal(wrapped.sample(10, seed=3), wrapped.sample(10, seed=3))
    np.testing.assert_allclose(wrapped.sample(10, seed=3), reencode(tiny_run, fitted.sample(10, seed=3), 1), atol=0)
    assert wrapped.name == "gaussian" and not wrapped.defines_density and not hasattr(wrapped, "score_samples")


@pytest.mark.parametrize(
    ("rounds", "message"),
    [(-1, "must be an integer >= 0, got -1"), (MAX_ROUNDS + 1, f"<= {MAX_ROUNDS}"), (1.5, "got 1.5"), (True, "True")],
)
def test_bad_rounds_are_refused(rounds, message):
    with pytest.raises(LatentAtlasError, match=message):
        check_rounds(rounds)


def test_sampler_steps_one_row_per_round_for_every_row():
    steps = sampler_steps(["gaussian", "resample"], {}, [0.7, 1.0], [0, 2, 0])
    assert [(s.label, s.options) for s in steps] == [
        ("gaussian T=0.7", {"temperature": 0.7}),
        ("gaussian T=0.7 reencode=2", {"temperature": 0.7, "reencode": 2}),
        ("gaussian", {}),  # 0 rounds: the plain row, the same entry as without --reencode
        ("gaussian reencode=2", {"reencode": 2}),
        ("resample", {}),
        ("resample reencode=2", {"reencode": 2}),
    ]
    with pytest.raises(LatentAtlasError, match="give at least one number of rounds"):
        sampler_steps(["gaussian"], {}, None, [])


def test_evaluate_scores_reencoded_rows_beside_the_plain_ones(tiny_run_copy, monkeypatch):
    from latentatlas.pipelines import evaluate

    fits = []
    real_fit = evaluate.fitted_sampler
    monkeypatch.setattr(evaluate, "fitted_sampler", lambda *a, **k: fits.append(a[1]) or real_fit(*a, **k))
    result = evaluate_run(
        tiny_run_copy, samplers=["gaussian"], n=30, k=3, instruments="quick", faces=False, progress=False,
        reencodes=[0, 1],
    )  # fmt: skip
    assert [row.name for row in result.rows][2:] == ["gaussian", "gaussian reencode=1"]
    assert fits == ["gaussian"]  # one fit; re-encoding changes only the draw
    plain, moved = result.row("gaussian"), result.row("gaussian reencode=1")
    assert moved.sampler == "gaussian" and moved.options == {"reencode": 1}
    assert "log_likelihood" in plain.scores and "log_likelihood" not in moved.scores  # no density after it
    assert moved.scores["mahalanobis_median_pct"].value != plain.scores["mahalanobis_median_pct"].value
    entries = sorted(p.name for p in (tiny_run_copy.path / "evaluation-entries").glob("gaussian*.json"))
    assert entries == ["gaussian-n30-seed0.json", "gaussian_reencode=1-reencode=1-n30-seed0.json"]
    data = json.loads((tiny_run_copy.path / "evaluation" / "evaluation.json").read_text())
    assert data["settings"]["reencodes"] == [0, 1]


def test_sample_writes_the_reencoded_draws_and_names_them(tiny_run_copy):
    plain = sample_run(tiny_run_copy, "gaussian", n=12, seed=2)
    moved = sample_run(tiny_run_copy, "gaussian", n=12, seed=2, reencode=2)
    assert moved["path"].endswith("gaussian-reencode2-seed2") and moved["reencode"] == 2 and plain["reencode"] == 0
    expected = reencode(tiny_run_copy, np.load(f"{plain['path']}/z.npy"), 2)
    np.testing.assert_allclose(np.load(f"{moved['path']}/z.npy"), expected, rtol=0, atol=1e-5)
    assert "re-encoded 2×" in read_json(f"{moved['path']}/info.json")["figures"][0]["caption"]


EVALUATE = ["evaluate", "RUN", "--samplers", "gaussian", "--no-fid", "--no-faces", "--reencode"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*EVALUATE, "-1"], "--reencode (rounds of z <- encode(decode(z))) must be an integer >= 0, got -1"),
        ([*EVALUATE, "0,9"], f"must be an integer <= {MAX_ROUNDS}, got 9"),
        ([*EVALUATE, "x"], "argument --reencode: expected comma-separated integers"),
        (["sample", "RUN", "--sampler", "gaussian", "--reencode", "99"], f"must be an integer <= {MAX_ROUNDS}, got 99"),
        (["sample", "RUN", "--sampler", "gaussian", "--reencode", "1,2"], "argument --reencode: invalid int value"),
    ],
)
def test_bad_reencode_flags_are_refused_in_one_line(tiny_run, capsys, argv, message):
    assert exit_status([str(tiny_run.path) if arg == "RUN" else arg for arg in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not list((tiny_run.path / "samples").glob("gaussian-reencode*"))


def test_a_run_without_an_encoder_cannot_reencode(tiny_run, tmp_path, capsys):
    out = tmp_path / "imported"
    argv = ["import", str(out), "--zpoints", str(tiny_run.zpoints_file("zpoints.npy"))]
    assert exit_status([*argv, "--split", str(tiny_run.path / "split.npy")]) == 0
    with pytest.raises(LatentAtlasError, match="--reencode needs the run's encoder and decoder; .* without its enc"):
        check_rounds(1, Run(out))
    assert check_rounds(0, Run(out)) == 0  # no rounds: nothing needed
    capsys.readouterr()
    argv = ["evaluate", str(out), "--samplers", "gaussian", "--instruments", "quick", "--no-faces", "--reencode", "1"]
    assert exit_status(argv) == 2
    assert "--reencode needs the run's encoder" in capsys.readouterr().err
    assert not (out / "evaluation").exists()


def test_the_frontier_names_a_reencoded_operating_point_and_draws_it_apart(tmp_path):
    from latentatlas.evaluation.frontier import best_operating_points, frontier_lines
    from latentatlas.evaluation.score import Score
    from latentatlas.evaluation.table import EvaluationRow
    from latentatlas.pipelines.evaluate_figures import write_figures

    def row(name: str, kind: str, options: dict, fid: tuple, ct: tuple | None = None) -> EvaluationRow:
        scores = {"fid": Score(*fid), **({"latent_ct": Score(*ct)} if ct else {})}
        return EvaluationRow(name, kind, 100, scores, 1.0, options, 0, name.split(" ")[0] if kind == "sampler" else "")

    rows = [
        row("real (held-out)", "reference", {}, (10, 9, 11)),
        row("reconstruction", "reference", {}, (100, 98, 102)),
        row("diffusion T=0.95", "sampler", {"temperature": 0.95}, (115, 113, 117), (0.1, -0.2, 0.4)),
        row("diffusion T=0.95 reencode=2", "sampler", {"temperature": 0.95, "reencode": 2}, (108, 106, 110),
            (0.3, 0.1, 0.5)),
    ]  # fmt: skip
    assert [(p.row, p.reencode) for p in best_operating_points(rows)] == [("diffusion T=0.95 reencode=2", 2)]
    assert frontier_lines(rows)[0].startswith("diffusion: T = 0.95, re-encoded 2× (diffusion T=0.95 reencode=2): FID")
    figure = next(f for f in write_figures(tmp_path, rows, {}) if f["file"] == "frontier.png")
    assert "diffusion: T = 0.95, re-encoded 2×" in figure["caption"]
