"""Lengths of the z-points against uniform [-b, b]^N vectors on their thin shell (seed part II).

Section "radii"; finding "uniform-shell-misses-bulk".
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import integrate

from latentatlas import checks
from latentatlas.analysis.parts import Context
from latentatlas.findings import Finding, grade
from latentatlas.stats import DEFAULT_CHUNK, Mahalanobis, ZView, as_view, one_blas_thread

# the uniform shell "misses" the bulk when this share of its vectors lies beyond the 99th percentile of
# the z-points' Mahalanobis distances
SHELL_MISS_SHARE = 0.9
SHELL_VECTORS = 2000


def uniform_radius_moments(dim: int, b: float = 1.0) -> tuple[float, float]:
    """Exact mean and standard deviation of |x| for x uniform in [-b, b]^dim.

    E|x| = b/(2 sqrt(pi)) * integral_0^inf (1 - phi(t)^dim) t^(-3/2) dt with phi(t) = E exp(-t u^2) for
    u ~ U[-1, 1] (from sqrt(s) = 1/(2 sqrt(pi)) integral (1 - e^(-ts)) t^(-3/2) dt); E|x|^2 = dim b^2 / 3.
    For large dim the mean tends to b sqrt(dim/3) (1 - 1/(10 dim)) and the spread to b/sqrt(15).
    """
    dim = checks.positive_int(dim, "dim")
    b = checks.positive_number(b, "b")

    def integrand(u: float) -> float:  # t = u^2 removes the t^(-1/2) singularity at 0
        if u == 0.0:
            return 2.0 * dim / 3.0
        t = u * u
        phi = math.sqrt(math.pi) / (2.0 * u) * math.erf(u)
        return 2.0 * -math.expm1(dim * math.log(phi)) / t

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        value, _ = integrate.quad(integrand, 0.0, np.inf, limit=400, epsabs=1e-13, epsrel=1e-12)
    mean1 = value / (2.0 * math.sqrt(math.pi))
    std1 = math.sqrt(max(dim / 3.0 - mean1**2, 0.0))
    return b * mean1, b * std1


def uniform_box(n: int, dim: int, b: float, seed: int = 0) -> np.ndarray:
    """n float32 vectors with independent components uniform in [-b, b] (the seed's artificial points)."""
    return np.random.default_rng(seed).uniform(-b, b, size=(n, dim)).astype(np.float32)


class Radii:
    """Lengths |z| of the z-points against vectors uniform in [-b, b]^N (theory and simulation).

    `b_match_` solves E|x| = mean radius exactly; `b_overlap_` is the b-range whose uniform radii
    (mean +- 4 sd, both linear in b) intersect the data's [min, max] radius range.

    Attributes
    ----------
    radii_ : ndarray (n,)
    mean_, std_, min_, max_ : float
    unit_mean_, unit_std_ : float
        E|x| and sd|x| for b = 1.
    b_match_, b_match_approx_ : float
    b_overlap_ : (float, float)
    uniform_ : list of dict
        One row per b (theory, b sqrt(N/3) approximation, simulation, data fraction within 4 sd).
    shell_beyond_share_ : float or None
        Share of SHELL_VECTORS uniform vectors at b_match that lie beyond the 99th percentile of the points'
        squared Mahalanobis distances; None when `fit` got no `mahalanobis` (then there is no finding).
    """

    def __init__(
        self,
        *,
        b_values: Sequence[float] = (0.5, 1.0, 1.5, 2.0, 5.0),
        simulate: int = 20000,
        random_state: int = 0,
        chunk_size: int = DEFAULT_CHUNK,
        progress: bool = False,
    ):
        self.b_values = b_values
        self.simulate = simulate
        self.random_state = random_state
        self.chunk_size = chunk_size
        self.progress = progress

    @one_blas_thread
    def fit(self, z: np.ndarray | ZView, mahalanobis: Mahalanobis | None = None) -> Radii:
        """`mahalanobis`, fitted on the same points, places the uniform shell against the bulk."""
        view = as_view(z)
        b_values = [checks.positive_number(b, "a radius b") for b in self.b_values]
        simulate = checks.positive_int(self.simulate, "simulate", 2)
        chunk_size = checks.positive_int(self.chunk_size, "chunk_size")
        dim = view.dim
        parts = [np.sqrt(np.einsum("ij,ij->i", c, c)) for c in view.chunks(chunk_size, "radii", self.progress)]
        self.radii_ = np.concatenate(parts)
        r = self.radii_
        self.mean_, self.std_ = float(r.mean()), float(r.std(ddof=1)) if len(r) > 1 else 0.0
        self.min_, self.max_ = float(r.min()), float(r.max())
        unit_mean, unit_std = uniform_radius_moments(dim, 1.0)
        self.unit_mean_, self.unit_std_ = unit_mean, unit_std
        self.b_match_ = self.mean_ / unit_mean
        self.b_match_approx_ = self.mean_ / math.sqrt(dim / 3.0)
        low = self.min_ / (unit_mean + 4 * unit_std)
        high = self.max_ / (unit_mean - 4 * unit_std) if unit_mean > 4 * unit_std else math.inf
        self.b_overlap_ = (low, high)
        rows = []
        for k, b in enumerate(b_values):
            simulated = np.linalg.norm(
                uniform_box(simulate, dim, b, seed=self.random_state + k).astype(np.float64), axis=1
            )
            mean_b, std_b = b * unit_mean, b * unit_std
            inside = np.mean((r >= mean_b - 4 * std_b) & (r <= mean_b + 4 * std_b))
            rows.append(
                {
                    "b": b,
                    "theory_mean": mean_b,
                    "theory_std": std_b,
                    "approx_mean": b * math.sqrt(dim / 3.0),
                    "approx_std": b / math.sqrt(15.0),
                    "simulated_mean": float(simulated.mean()),
                    "simulated_std": float(simulated.std(ddof=1)),
                    "data_fraction_within_4_sigma": float(inside),
                    "simulated_radii": simulated,
                }
            )
        self.uniform_ = rows
        self.shell_beyond_share_ = None
        if mahalanobis is not None:
            shell = uniform_box(SHELL_VECTORS, dim, self.b_match_, seed=int(self.random_state))
            p99 = float(np.quantile(mahalanobis.sq_distances_, 0.99))
            self.shell_beyond_share_ = float(np.mean(mahalanobis.sq_distance(shell) > p99))
        return self

    @classmethod
    def from_context(cls, context: Context) -> Radii:
        o = context.options
        return cls(
            b_values=o["radius_b"], simulate=o["simulate"], random_state=context.random_state, **context.common
        ).fit(context.view, context.mahalanobis)

    @property
    def rms_(self) -> float:
        """Root mean square radius."""
        return math.sqrt(float(np.mean(self.radii_**2)))

    def to_dict(self) -> dict:
        """The analysis.json "radii" section (the simulated radii stay in `uniform_`, for the figure)."""
        r = self.radii_
        data = {
            "mean": self.mean_,
            "std": self.std_,
            "min": self.min_,
            "max": self.max_,
            "p1": float(np.percentile(r, 1)),
            "p50": float(np.median(r)),
            "p99": float(np.percentile(r, 99)),
        }
        low, high = self.b_overlap_
        return {
            "radii": {
                "data": data,
                "uniform": [{k: v for k, v in row.items() if k != "simulated_radii"} for row in self.uniform_],
                "b_match": self.b_match_,
                "b_match_approx": self.b_match_approx_,
                "b_overlap": [low, high if math.isfinite(high) else None],
            }
        }

    def findings(self) -> list[Finding]:
        if self.shell_beyond_share_ is None:
            return []
        return [shell_finding(self.shell_beyond_share_, self.b_match_)]


def shell_finding(beyond_share: float, b_match: float) -> Finding:
    """The seed's "uniform vectors miss the bulk", from the share of a matched shell beyond the bulk's 99 %."""
    return Finding(
        key="uniform-shell-misses-bulk",
        claim="vectors uniform in [-b, b]^N lie on a thin shell that misses the bulk",
        verdict=grade(beyond_share, SHELL_MISS_SHARE, 0.5),
        evidence=f"{100 * beyond_share:.1f} % of {SHELL_VECTORS} uniform vectors at b_match = {b_match:.3f} (same mean "
        "radius as the z-points) lie farther from the centre than 99 % of the z-points (Mahalanobis)",
    )
