"""The seed's claims as data: verdicts that follow the numbers, and flip when z-points contradict the seed."""

from __future__ import annotations

import numpy as np
import pytest

from latentatlas import analysis as an
from latentatlas.analysis import registry
from latentatlas.analysis.dominant import dominant_finding
from latentatlas.analysis.origin import origin_finding
from latentatlas.analysis.parts import AnalysisPart, Context
from latentatlas.errors import LatentAtlasError
from latentatlas.findings import Finding, grade

N_POINTS, DIM = 4000, 32


def seed_like(rng: np.random.Generator) -> np.ndarray:
    """Two dominant components far off the origin, strongly correlated pairs: every claim of the seed holds."""
    mixing = np.eye(DIM)
    for k in range(2, DIM - 1, 2):
        mixing[k + 1, k] = 1.5  # r = 1.5 / sqrt(1 + 1.5^2) = 0.83 within each pair
    z = rng.standard_normal((N_POINTS, DIM)) @ mixing.T
    z[:, 0] = 2 * z[:, 0] + 12
    z[:, 1] = 2 * z[:, 1] - 12
    return z


def centred(rng: np.random.Generator) -> np.ndarray:
    """An isotropic Gaussian around the origin: origin deep inside, nothing dominant, no correlations."""
    return rng.standard_normal((N_POINTS, DIM))


def many_dominant(rng: np.random.Generator) -> np.ndarray:
    """Half the components offset by 1.5 std: many dominant components, the origin neither inside nor at the border."""
    z = rng.standard_normal((N_POINTS, DIM))
    z[:, : DIM // 2] += 1.5
    return z


def uniform_cube(rng: np.random.Generator) -> np.ndarray:
    """Uniform [-1, 1]^N: flat marginals, and the uniform comparison vectors sit right inside it."""
    return rng.uniform(-1.0, 1.0, (N_POINTS, DIM))


EXPECTED = {
    "seed_like": dict.fromkeys(
        [
            "origin-position",
            "dominant-components",
            "gaussian-marginals",
            "strong-correlations",
            "uniform-shell-misses-bulk",
            "bulk-off-centre",
        ],
        "agrees",
    ),
    "centred": {
        "origin-position": "disagrees",
        "dominant-components": "disagrees",
        "gaussian-marginals": "agrees",
        "strong-correlations": "disagrees",
        "uniform-shell-misses-bulk": "disagrees",
        "bulk-off-centre": "disagrees",
    },
    "many_dominant": {
        "origin-position": "mixed",  # d^2 = 16 x 1.5^2 = 36: closer than ~70 % of chi2(32) points
        "dominant-components": "disagrees",
        "gaussian-marginals": "agrees",
        "strong-correlations": "disagrees",
        "uniform-shell-misses-bulk": "agrees",
        "bulk-off-centre": "agrees",
    },
    "uniform_cube": {
        "origin-position": "disagrees",
        "dominant-components": "disagrees",
        "gaussian-marginals": "disagrees",
        "strong-correlations": "disagrees",
        "uniform-shell-misses-bulk": "disagrees",
        "bulk-off-centre": "disagrees",
    },
}


@pytest.mark.parametrize("make", [seed_like, centred, many_dominant, uniform_cube], ids=lambda f: f.__name__)
def test_seed_verdicts_follow_the_points(make) -> None:
    z = make(np.random.default_rng(0))
    analysis = an.LatentAnalysis(mcd_samples=1000, simulate=1000, ks_samples=4000).fit(z)
    verdicts = {f.key: f.verdict for f in analysis.findings_ if f.key in EXPECTED[make.__name__]}
    assert verdicts == EXPECTED[make.__name__]
    findings = analysis.to_dict()["findings"]
    assert [Finding.from_dict(f) for f in findings] == analysis.findings_
    # the evidence quotes this run's numbers
    origin = next(f for f in analysis.findings_ if f.key == "origin-position")
    assert f"{analysis.origin_.percentile_:.1f} % of the z-points lie closer" in origin.evidence
    dominant = next(f for f in analysis.findings_ if f.key == "dominant-components")
    assert dominant.evidence.startswith(f"{len(analysis.dominant_.components_)} of N = {DIM} components")


@pytest.mark.parametrize(
    "percentile,verdict", [(99.9, "agrees"), (90.0, "agrees"), (75.0, "mixed"), (50.0, "disagrees"), (3.0, "disagrees")]
)
def test_origin_verdict_thresholds(percentile: float, verdict: str) -> None:
    assert origin_finding(percentile, 4.0).verdict == verdict


@pytest.mark.parametrize(
    "count,verdict", [(0, "disagrees"), (1, "agrees"), (25, "agrees"), (40, "mixed"), (65, "disagrees")]
)
def test_dominant_verdict_counts_against_n(count: int, verdict: str) -> None:
    assert dominant_finding(count, 256, "rule").verdict == verdict


# ----------------------------------------------------------------------------- the registry of parts

SERIES = [
    "origin-position",
    "dominant-components",
    "gaussian-marginals",
    "strong-correlations",
    "uniform-shell-misses-bulk",
    "bulk-off-centre",
    "normal-core",
    "henze-zirkler-power",
    "one-compact-region",
]


def _small(rng: np.random.Generator) -> np.ndarray:
    return seed_like(rng)[:1500, :8]


def _fit_small() -> an.LatentAnalysis:
    return an.LatentAnalysis(mcd_samples=500, simulate=500, ks_samples=1000, normality_sizes=(300,)).fit(
        _small(np.random.default_rng(1))
    )


def test_findings_and_sections_follow_the_registry() -> None:
    analysis = _fit_small()
    result = analysis.to_dict()
    keys = [f["key"] for f in result["findings"]]
    assert keys == SERIES
    fitted = [analysis.parts_[part.name] for part in registry.PARTS]
    assert None not in fitted
    assert keys == [f.key for part in fitted if part is not None for f in part.findings()]
    sections = [k for part in fitted if part is not None for k in part.to_dict()]
    assert [k for k in result if k not in ("n_points", "latent_dim", "findings")] == sections
    assert sections[:4] == ["origin", "normality", "dominant", "components"]


def test_reordering_the_registry_reorders_the_findings(monkeypatch) -> None:
    by_name = {part.name: part for part in registry.PARTS}
    order = ["regions", "core_normality", "dominant", "origin", "radii", "bulk", "correlations", "distributions"]
    order += ["robust", "slices"]
    monkeypatch.setattr(registry, "PARTS", tuple(by_name[name] for name in order))
    keys = [f["key"] for f in _fit_small().to_dict()["findings"]]
    assert keys == [SERIES[i] for i in (8, 6, 7, 1, 0, 4, 5, 3, 2)]


class Spread:
    """A part registered by the test: the total variance against the mean radius (it reads `radii`)."""

    def __init__(self, total_variance: float, mean_radius: float):
        self.total_variance_ = total_variance
        self.mean_radius_ = mean_radius

    @classmethod
    def from_context(cls, context: Context) -> Spread:
        return cls(float(np.trace(context.statistics.cov_)), context.part("radii").mean_)

    def to_dict(self) -> dict:
        return {"spread": {"total_variance": self.total_variance_, "mean_radius": self.mean_radius_}}

    def findings(self) -> list[Finding]:
        share = self.total_variance_ / self.mean_radius_**2
        return [Finding("spread", "the spread dominates the radius", grade(share, 0.9, 0.5), f"share {share:.3f}")]


def test_a_registered_part_shows_up_with_its_finding(monkeypatch) -> None:
    monkeypatch.setattr(registry, "PARTS", (*registry.PARTS, AnalysisPart("spread", Spread.from_context)))
    analysis = _fit_small()
    result = analysis.to_dict()
    z = _small(np.random.default_rng(1))
    assert result["spread"]["total_variance"] == pytest.approx(np.trace(np.cov(z, rowvar=False)))
    assert result["spread"]["mean_radius"] == pytest.approx(np.linalg.norm(z, axis=1).mean())
    assert isinstance(analysis.spread_, Spread)  # pyright: ignore[reportAttributeAccessIssue]
    assert [f["key"] for f in result["findings"]] == [*SERIES, "spread"]
    share = result["spread"]["total_variance"] / result["spread"]["mean_radius"] ** 2
    assert result["findings"][-1]["evidence"] == f"share {share:.3f}"


def _too_few(context: Context) -> Spread:
    raise LatentAtlasError(f"needs 10^6 z-points, got {context.view.n}")


def test_a_part_too_few_points_cannot_support_is_skipped_only_when_it_says_so(monkeypatch) -> None:
    skippable = AnalysisPart("huge", _too_few, skipped_section="huge_part")
    monkeypatch.setattr(registry, "PARTS", (*registry.PARTS, skippable))
    analysis = _fit_small()
    assert analysis.to_dict()["huge_part"] == {"skipped": "needs 10^6 z-points, got 1500"}
    assert analysis.parts_["huge"] is None and [f.key for f in analysis.findings_] == SERIES
    monkeypatch.setattr(registry, "PARTS", (*registry.PARTS[:-1], AnalysisPart("huge", _too_few)))
    with pytest.raises(LatentAtlasError, match="needs 10\\^6 z-points, got 1500"):
        _fit_small()


def test_a_part_read_before_it_is_fitted_names_the_registry(monkeypatch) -> None:
    monkeypatch.setattr(registry, "PARTS", (AnalysisPart("spread", Spread.from_context), *registry.PARTS))
    with pytest.raises(KeyError, match="'radii' is not fitted before this one"):
        _fit_small()


@pytest.mark.parametrize("name", ["radii", "statistics"])
def test_a_part_name_is_unique_and_not_the_analysis_own(monkeypatch, name: str) -> None:
    monkeypatch.setattr(registry, "PARTS", (*registry.PARTS, AnalysisPart(name, Spread.from_context)))
    with pytest.raises(ValueError, match=f"names must be unique and not one of .*'{name}'"):
        _fit_small()
