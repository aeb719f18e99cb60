"""The temperature of the samplers (the quality-novelty frontier): T = 1 draws bit for bit what the samplers
drew before it existed, T scales the base noise, and `evaluate` gives one row per temperature."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from latentatlas.cli import main
from latentatlas.errors import LatentAtlasError
from latentatlas.pipelines.evaluate import evaluate_run, sampler_steps
from latentatlas.samplers import SAMPLERS, load_sampler, make_sampler, sampler_options
from latentatlas.stats import gaussian_factor

TEMPERED = ["diagonal-gaussian", "gaussian", "robust-gaussian", "gmm", "gmm-bic", "regions", "flow"]
OPTIONS = {
    "gmm": {"components": 3},
    "gmm-bic": {"candidates": (1, 2)},
    "regions": {"max_regions": 3, "pca_dims": 3},
    "flow": {"epochs": 2, "transforms": 1, "hidden": 8},
}


@pytest.fixture(scope="module")
def z() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.concatenate([rng.standard_normal((150, 5)) - 2, rng.standard_normal((150, 5)) + 2]) * [1, 2, 1, 0.5, 1]


@pytest.fixture(scope="module")
def fitted(z) -> dict:
    return {name: make_sampler(name, **OPTIONS.get(name, {})).fit(z) for name in TEMPERED}


def _untempered(sampler, n: int, seed: int) -> np.ndarray:
    """The draw as the samplers made it before they had a temperature (their `_sample` of then)."""
    rng = np.random.default_rng(seed)
    if sampler.name == "diagonal-gaussian":
        out = sampler.mean_ + rng.standard_normal((n, sampler.n_features_)) * sampler.std_
    elif sampler.name in ("gaussian", "robust-gaussian"):
        out = sampler.mean_ + rng.standard_normal((n, sampler.n_features_)) @ gaussian_factor(sampler.cov_).T
    elif sampler.name == "flow":
        noise = torch.as_tensor(rng.standard_normal((n, sampler.n_features_)), dtype=torch.float32)
        with torch.no_grad():
            x = sampler.module_().transform.inv(noise).double().numpy()
        out = sampler.mean_ + (x * sampler.scales_) @ sampler.components_
    else:
        labels = rng.choice(len(sampler.weights_), size=n, p=sampler.weights_)
        noise = rng.standard_normal((n, sampler.n_features_))
        out = np.empty((n, sampler.n_features_))
        for k in range(len(sampler.weights_)):
            rows = labels == k
            if rows.any():
                out[rows] = sampler.means_[k] + noise[rows] @ gaussian_factor(sampler.covariances_[k]).T
    return np.ascontiguousarray(out, dtype=np.float32)


def test_the_samplers_with_a_temperature():
    having = sorted(name for name in SAMPLERS if "temperature" in sampler_options(name))
    assert set(TEMPERED) <= set(having)
    # truncations and boxes have their own knob (confidence, b), resample its jitter: no temperature
    assert {"ellipsoid", "planar-ellipses", "uniform-box", "component-box", "resample"}.isdisjoint(having)


@pytest.mark.parametrize("name", TEMPERED)
def test_temperature_one_draws_bit_for_bit_the_untempered_samples(fitted, name):
    sampler = fitted[name]
    assert sampler.temperature == 1.0
    assert np.array_equal(sampler.sample(40, seed=3), _untempered(sampler, 40, 3))


@pytest.mark.parametrize("name", [n for n in TEMPERED if n != "flow"])
def test_temperature_scales_each_gaussian_around_its_mean(fitted, name):
    sampler = fitted[name]
    one = sampler.sample(200, seed=5).astype(np.float64)
    cooled = make_sampler(name, **{**OPTIONS.get(name, {}), "temperature": 0.5})
    cooled.__dict__.update({k: v for k, v in sampler.__dict__.items() if k.endswith("_")})
    half = cooled.sample(200, seed=5).astype(np.float64)
    # the same noise and component labels: half - 0.5 * one = 0.5 * (the mean of each draw's Gaussian)
    centres = 2 * (half - 0.5 * one)
    means = getattr(sampler, "means_", None)
    means = np.atleast_2d(sampler.mean_) if means is None else means
    gap = np.min(np.linalg.norm(centres[:, None, :] - means[None], axis=2), axis=1)
    assert gap.max() < 1e-4


def test_temperature_narrows_the_flow_and_survives_saving(fitted, tmp_path):
    flow = fitted["flow"]
    flow.temperature = 0.5
    try:
        narrow = flow.sample(300, seed=0)
        loaded = load_sampler(flow.save(tmp_path / "flow"))
    finally:
        flow.temperature = 1.0
    assert loaded.temperature == 0.5 and np.array_equal(loaded.sample(300, seed=0), narrow)
    assert narrow.std(axis=0).mean() < 0.8 * flow.sample(300, seed=0).std(axis=0).mean()


@pytest.mark.parametrize(("value", "message"), [(0, "temperature must be a finite number > 0"), (200, "at most 100")])
def test_a_bad_temperature_is_refused(value, message):
    with pytest.raises(LatentAtlasError, match=message):
        make_sampler("gaussian", temperature=value)


def test_sampler_steps_one_row_per_temperature_where_there_is_one():
    steps = sampler_steps(["gaussian", "resample"], {"resample": {"jitter": 0.2}}, [0.7, 1.0, 0.7])
    assert [(s.label, s.sampler, s.options) for s in steps] == [
        ("gaussian T=0.7", "gaussian", {"temperature": 0.7}),
        ("gaussian", "gaussian", {}),  # T = 1: the plain row, the same entry as without --temperature
        ("resample", "resample", {"jitter": 0.2}),
    ]
    with pytest.raises(LatentAtlasError, match="--temperature applies to none of the samplers resample"):
        sampler_steps(["resample"], {}, [0.7])
    with pytest.raises(LatentAtlasError, match="temperature must be a finite number > 0, got -1"):
        sampler_steps(["gaussian"], {}, [-1.0])


def test_evaluate_keeps_the_rows_of_every_temperature_apart(tiny_run_copy, monkeypatch):
    from latentatlas.pipelines import evaluate

    fits = []
    real_fit = evaluate.fitted_sampler
    monkeypatch.setattr(evaluate, "fitted_sampler", lambda *a, **k: fits.append(a[1]) or real_fit(*a, **k))
    common = {"samplers": ["gaussian", "resample"], "n": 30, "k": 3, "instruments": "quick", "progress": False}
    first = evaluate_run(tiny_run_copy, faces=False, temperatures=[0.7, 1.0], **common)
    assert [row.name for row in first.rows][2:] == ["gaussian T=0.7", "gaussian", "resample"]
    assert fits == ["gaussian", "resample"]  # fitted once per sampler, whatever the temperatures
    cooled, plain = first.row("gaussian T=0.7"), first.row("gaussian")
    assert cooled.sampler == plain.sampler == "gaussian" and cooled.temperature == 0.7 and plain.temperature == 1.0
    assert cooled.scores["precision"].value >= plain.scores["precision"].value  # nearer the mode: more precise
    second = evaluate_run(tiny_run_copy, faces=False, temperatures=[0.85], **{**common, "samplers": ["gaussian"]})
    names = [row.name for row in second.rows]
    assert names[2:] == ["gaussian T=0.7", "gaussian", "resample", "gaussian T=0.85"]  # none overwritten
    assert second.row("gaussian T=0.7").scores == cooled.scores
    entries = sorted(p.name for p in (tiny_run_copy.path / "evaluation-entries").glob("gaussian*.json"))
    assert entries == ["gaussian-n30-seed0.json", "gaussian_T=0.7-temperature=0.7-n30-seed0.json",
                       "gaussian_T=0.85-temperature=0.85-n30-seed0.json"]  # fmt: skip
    data = json.loads((tiny_run_copy.path / "evaluation" / "evaluation.json").read_text())
    record = next(r for r in data["rows"] if r["name"] == "gaussian T=0.85")
    assert record["sampler"] == "gaussian" and record["options"] == {"temperature": 0.85}


def test_evaluate_takes_a_temperature_list_and_sample_one_value(tiny_run_copy, capsys):
    arguments = ["--samplers", "diagonal-gaussian", "-n", "20", "--k", "3", "--instruments", "quick", "--no-faces"]
    assert main(["evaluate", str(tiny_run_copy.path), *arguments, "--temperature", "0.5,1"]) == 0
    assert "| diagonal-gaussian T=0.5 |" in capsys.readouterr().out
    assert main(["sample", str(tiny_run_copy.path), "--sampler", "gaussian", "-n", "4", "--temperature", "0.9"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:  # argparse refuses a list where one value is taken
        main(["sample", str(tiny_run_copy.path), "--sampler", "gaussian", "-n", "4", "--temperature", "0.5,1"])
    assert exit_.value.code == 2 and "argument --temperature: invalid float value" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--samplers", "resample", "--temperature", "0.7"], "--temperature applies to none of the samplers resample"),
        (["--samplers", "gaussian", "--temperature", "0,1"], "temperature must be a finite number > 0, got 0"),
        (["--samplers", "gaussian", "--temperature", "x"], "argument --temperature: invalid float list value"),
    ],
)
def test_evaluate_refuses_bad_temperatures_in_one_line(tiny_run, capsys, arguments, message):
    try:
        code = main(["evaluate", str(tiny_run.path), *arguments, "--no-fid", "--no-faces"])
    except SystemExit as exit_:  # argparse's own refusal
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
