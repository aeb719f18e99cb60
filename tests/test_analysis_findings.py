"""The seed's claims as data: verdicts that follow the numbers, and flip when z-points contradict the seed."""

from __future__ import annotations

import numpy as np
import pytest

from latentatlas import analysis as an
from latentatlas.findings import Finding

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
    assert an.seed_claims.origin_finding(percentile, 4.0).verdict == verdict


@pytest.mark.parametrize(
    "count,verdict", [(0, "disagrees"), (1, "agrees"), (25, "agrees"), (40, "mixed"), (65, "disagrees")]
)
def test_dominant_verdict_counts_against_n(count: int, verdict: str) -> None:
    assert an.seed_claims.dominant_finding(count, 256, "rule").verdict == verdict
