"""A sampler is one module: its options give the CLI flags, its class attributes the capabilities that
analysis, evaluation and the CLI read, and samplers saved by earlier code still load and draw the same."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import exit_status
from latentatlas import checks
from latentatlas.cli import build_parser
from latentatlas.cli.common import sampler_options_given
from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.table import REAL_ROW, EvaluationRow, Score
from latentatlas.evaluation.verdicts import evaluation_findings
from latentatlas.samplers import SAMPLERS, Sampler, load_sampler, make_sampler, sampler_options
from latentatlas.samplers.options import option

SAVED = Path(__file__).parent / "data" / "samplers-v1"


class Jitter(Sampler):
    """Every component on its own: the data's mean plus a uniform offset in [-spread, spread].

    Attributes
    ----------
    mean_ : ndarray (N,)
    """

    name = "jitter-test"
    independent_components = True
    _learned_arrays = ("mean_",)

    spread: float = option(0.5, help="half-width of the offset", parse=float, check=checks.positive_number)

    def _fit(self, z: np.ndarray) -> None:
        self.mean_ = np.asarray(z).mean(axis=0)

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.mean_ + rng.uniform(-self.spread, self.spread, size=(n, self.n_features_))


@pytest.fixture
def registered(monkeypatch):
    """The registry with `Jitter` added: what its one registry line does."""
    monkeypatch.setitem(SAMPLERS, Jitter.name, Jitter)
    return Jitter


def _sample_args(*flags: str):
    return build_parser().parse_args(["sample", "RUN", *flags])


def _help() -> str:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices["sample"].format_help()  # type: ignore[union-attr]


def test_a_registered_sampler_gets_its_flag_validation_and_save_load(registered, tmp_path):
    args = _sample_args("--sampler", "jitter-test", "--spread", "0.25")
    assert sampler_options_given(args, ["jitter-test"]) == {"jitter-test": {"spread": 0.25}}
    assert "jitter-test: half-width of the offset" in " ".join(_help().split())
    with pytest.raises(
        LatentAtlasError, match=r"^--spread does not apply to sampler gaussian \(its options: --temperature\)$"
    ):
        sampler_options_given(_sample_args("--sampler", "gaussian", "--spread", "1"), ["gaussian"])
    with pytest.raises(LatentAtlasError, match="spread must be a finite number > 0"):
        make_sampler("jitter-test", spread=0.0)
    with pytest.raises(TypeError):
        Jitter(0.25)  # type: ignore[misc]  # keyword-only, as every sampler
    assert sampler_options("jitter-test") == ["spread"]

    z = np.random.default_rng(0).standard_normal((50, 3))
    fitted = make_sampler("jitter-test", spread=0.25).fit(z)
    assert fitted.get_params() == {"spread": 0.25} and repr(fitted) == "Jitter(spread=0.25)"
    draw = fitted.sample(20, seed=1)
    assert np.abs(draw - z.mean(axis=0)).max() <= 0.25
    np.testing.assert_array_equal(load_sampler(fitted.save(tmp_path / "s")).sample(20, seed=1), draw)
    assert not fitted.defines_density and not fitted.full_covariance and not fitted.neural


def _row(name: str, precision: tuple[float, float, float], kind: str = "sampler") -> EvaluationRow:
    return EvaluationRow(name=name, kind=kind, n=100, scores={"precision": Score(*precision)})  # type: ignore[arg-type]


def _independent_finding(rows: list[EvaluationRow]):
    return next(f for f in evaluation_findings(rows) if f.key == "independent-components-miss")


def test_verdicts_read_independent_components_from_the_registry(registered, monkeypatch):
    rows = [
        _row(REAL_ROW, (0.9, 0.85, 0.95), kind="reference"),
        _row("gaussian", (0.8, 0.75, 0.85)),
        _row("diagonal-gaussian", (0.1, 0.05, 0.15)),
        _row("component-box", (0.2, 0.15, 0.25)),
        _row("jitter-test", (0.9, 0.85, 0.95)),
    ]
    finding = _independent_finding(rows)
    assert finding.verdict == "mixed"  # the registered sampler is tested by the claim: it lands in the bulk
    assert finding.evidence.index("diagonal-gaussian") < finding.evidence.index("component-box")
    assert finding.evidence.index("component-box") < finding.evidence.index("jitter-test precision 0.9")
    monkeypatch.setattr(registered, "independent_components", False)
    assert _independent_finding(rows).verdict == "agrees"
    assert "jitter-test" not in _independent_finding(rows).evidence


def test_capabilities_are_the_ones_the_name_lists_held():
    def having(capability: str) -> list[str]:
        return [name for name, cls in SAMPLERS.items() if getattr(cls, capability)]

    assert having("independent_components") == ["component-box", "diagonal-gaussian"]
    # analysis.conditions.FULL_COVARIANCE_SAMPLERS before it read the attribute
    assert set(having("full_covariance")) == {"gaussian", "robust-gaussian", "ellipsoid", "gmm"}
    assert having("neural") == ["flow", "two-stage", "diffusion"]
    assert having("defines_density") == [
        "diagonal-gaussian",
        "gaussian",
        "robust-gaussian",
        "gmm",
        "gmm-bic",
        "regions",
        "flow",
        "two-stage",
        "diffusion",
    ]


def test_a_shared_option_is_one_flag_and_a_clash_is_refused(monkeypatch):
    help_text = " ".join(_help().split())
    assert (
        help_text.count("--epochs EPOCHS ") == 1 and "flow, two-stage, diffusion: at most this many epochs" in help_text
    )
    assert "ellipsoid, planar-ellipses: confidence level" in help_text

    class OtherEpochs(Sampler):
        """A sampler whose epochs option is not NeuralSampler's."""

        name = "other-epochs"
        epochs: int = option(5, help="something else", parse=int)

        def _fit(self, z: np.ndarray) -> None:
            return None

        def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
            return np.zeros((n, self.n_features_))

    monkeypatch.setitem(SAMPLERS, OtherEpochs.name, OtherEpochs)
    with pytest.raises(TypeError, match="declare option 'epochs' differently"):
        build_parser()


def test_a_flagged_option_needs_a_parser():
    with pytest.raises(TypeError, match="needs parse="):
        option(1, help="a flag without a way to read it")


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (["--percentiles", "5"], "latentatlas: error: --percentiles needs two numbers like 1,99, got [5.0]"),
        (["--percentiles", "1,x"], "argument --percentiles: expected comma-separated numbers, got '1,x'"),
        (["--epochs", "x"], "argument --epochs: invalid int value: 'x'"),
        (["--confidence", "high"], "argument --confidence: invalid float value: 'high'"),
        (["--b", "wide"], "argument --b: expected a number or 'matched', got 'wide'"),
        (["--jitter", "silverman"], "argument --jitter: expected a number or 'scott', got 'silverman'"),
        (["--criterion", "aic"], "argument --criterion: invalid choice: 'aic' (choose from 'bic', 'heldout')"),
        (["--candidates", "1,two"], "argument --candidates: expected comma-separated integers, got '1,two'"),
    ],
)
def test_sampler_flag_errors_keep_their_one_line_messages(flags, line, tmp_path, capsys):
    sampler = "gmm-bic" if flags[0] in ("--criterion", "--candidates") else "component-box"
    assert exit_status(["sample", str(tmp_path / "no-run"), "--sampler", sampler, *flags]) == 2
    err = capsys.readouterr().err
    assert line in err and err.count("\n") == 1


def test_flag_values_reach_the_sampler_with_the_parameter_types():
    args = _sample_args("--sampler", "gmm-bic", "--candidates", "1,2", "--criterion", "heldout")
    assert sampler_options_given(args, ["gmm-bic"]) == {"gmm-bic": {"candidates": (1, 2), "criterion": "heldout"}}
    args = _sample_args("--sampler", "component-box", "--percentiles=-1,99", "--k-sigma", "2")
    assert sampler_options_given(args, ["component-box"]) == {
        "component-box": {"percentiles": (-1.0, 99.0), "k_sigma": 2.0}
    }
    args = _sample_args("--sampler", "uniform-box", "--b", "matched", "--epochs", "3")
    given = sampler_options_given(args, ["uniform-box", "flow", "two-stage"])
    assert given == {"uniform-box": {"b": "matched"}, "flow": {"epochs": 3}, "two-stage": {"epochs": 3}}


# ----------------------------------------------------------------------------- samplers saved by earlier code


def _fixture_points() -> np.ndarray:
    """The z-points tests/data/samplers-v1/make_fixture.py fitted the saved samplers on."""
    rng = np.random.default_rng(7)
    mix = np.array([[1.0, 0.5, 0, 0], [0, 1.0, 0.3, 0], [0, 0, 0.6, 0.2], [0, 0, 0, 0.4]])
    return (rng.standard_normal((200, 4)) @ mix).astype(np.float32)


def test_the_saved_set_covers_every_sampler():
    assert {p.name for p in SAVED.iterdir() if p.is_dir()} == set(SAMPLERS)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_a_sampler_saved_by_earlier_code_loads_and_draws_the_same(name):
    folder = SAVED / name
    sampler = load_sampler(folder / "sampler")
    saved_params = json.loads((folder / "sampler" / "sampler.json").read_text())["params"]
    params = sampler.get_params()
    # parameters added since take their defaults, under which the draws are the same: the temperature (1), and
    # the flow's passes (16 blocks: at the fixture's 4 dimensions one per dimension, fully autoregressive as saved)
    added = {key: params[key] for key in params if key not in saved_params}
    assert added in ({}, {"temperature": 1.0}, {"passes": 16, "temperature": 1.0})
    # the same parameters; the flow lists patience among its own options since it set its own default
    assert sorted(key for key in params if key not in added) == sorted(saved_params)
    assert json.loads(json.dumps({k: v for k, v in params.items() if k not in added})) == saved_params
    # the draws are float32; a tolerance far below their precision only forgives another CPU's last bits
    np.testing.assert_allclose(sampler.sample(5, seed=3), np.load(folder / "draw.npy"), rtol=1e-6, atol=1e-7)
    assert sampler.defines_density == (folder / "score.npy").is_file()
    if sampler.defines_density:
        scores = sampler.score_samples(np.load(SAVED / "held.npy"))
        np.testing.assert_allclose(scores, np.load(folder / "score.npy"), rtol=1e-6)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_fitting_with_the_saved_options_draws_what_earlier_code_drew(name):
    folder = SAVED / name
    params = json.loads((folder / "sampler" / "sampler.json").read_text())["params"]
    params = {key: tuple(value) if isinstance(value, list) else value for key, value in params.items()}
    fitted = make_sampler(name, **params).fit(_fixture_points())
    # the networks of flow and two-stage train in float32: the same weights up to the machine's rounding
    rtol, atol = (1e-4, 1e-5) if fitted.neural else (1e-6, 1e-7)
    np.testing.assert_allclose(fitted.sample(5, seed=3), np.load(folder / "draw.npy"), rtol=rtol, atol=atol)
