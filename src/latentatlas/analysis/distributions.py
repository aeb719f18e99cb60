"""Per-component number distributions: histograms, Gaussian fits, half widths, KS distances (seed part II).

Section "components"; finding "gaussian-marginals".
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from latentatlas import checks
from latentatlas.analysis.parts import Context
from latentatlas.findings import Finding, grade
from latentatlas.stats import DEFAULT_CHUNK, BulkStatistics, ZView, as_view, one_blas_thread

# a marginal is "close to a Gaussian" when its KS distance is below the larger of this and the 1 % critical value
KS_CLOSE = 0.03


def measure_hwhm(centres: np.ndarray, counts: np.ndarray) -> float:
    """Half width at half maximum of a histogram (lightly smoothed), by linear interpolation."""
    counts = np.asarray(counts, dtype=np.float64)
    if len(counts) >= 3:
        padded = np.concatenate([[counts[0]], counts, [counts[-1]]])
        counts = 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]
    peak = int(np.argmax(counts))
    half = counts[peak] / 2.0
    if half <= 0:
        return float("nan")

    def crossing(step: int) -> float:
        k = peak
        while 0 <= k + step < len(counts) and counts[k + step] > half:
            k += step
        if not 0 <= k + step < len(counts):
            return float(centres[k])
        c_in, c_out = counts[k], counts[k + step]
        t = (c_in - half) / (c_in - c_out) if c_in != c_out else 0.0
        return float(centres[k] + t * (centres[k + step] - centres[k]))

    return (crossing(1) - crossing(-1)) / 2.0


class ComponentDistributions:
    """Per-component histograms, Gaussian fits, measured half widths and KS distances.

    The Gaussian fit of a component is its mean and standard deviation; `hwhm_` is measured from a
    histogram of `display_bins` bins (default: 2 n^(1/3), 15..80) over the component's 0.5..99.5 %
    range, to compare with `hwhm_gaussian_` = std sqrt(2 ln 2). `ks_` is the Kolmogorov-Smirnov
    distance to the fitted Gaussian on a random subsample of `ks_samples` rows.

    Attributes
    ----------
    edges_, counts_ : ndarray (N, bins + 1), (N, bins)
        The display histograms.
    mean_, std_, skewness_, kurtosis_, lower_, upper_ : ndarray (N,)
        From `BulkStatistics` (kurtosis is the excess kurtosis; lower, upper: its percentile interval).
    hwhm_, hwhm_gaussian_ : ndarray (N,)
        Measured half width at half maximum and the Gaussian's std sqrt(2 ln 2).
    ks_ : ndarray (N,)
        Kolmogorov-Smirnov distance to the fitted Gaussian.
    ks_samples_ : int
        Rows of the KS subsample.
    """

    def __init__(
        self,
        *,
        display_bins: int | None = None,
        ks_samples: int = 20000,
        random_state: int = 0,
        chunk_size: int = DEFAULT_CHUNK,
        progress: bool = False,
    ):
        self.display_bins = display_bins
        self.ks_samples = ks_samples
        self.random_state = random_state
        self.chunk_size = chunk_size
        self.progress = progress

    @one_blas_thread
    def fit(self, z: np.ndarray | ZView, statistics: BulkStatistics | None = None) -> ComponentDistributions:
        view = as_view(z)
        # stats' fits take a ZView as well (they call as_view) although annotated ndarray
        stats_ = statistics or BulkStatistics(chunk_size=self.chunk_size, progress=self.progress).fit(
            view  # pyright: ignore[reportArgumentType]
        )
        ks_samples = checks.positive_int(self.ks_samples, "ks_samples", 2)
        n = stats_.n_samples_
        bins = self.display_bins or int(np.clip(round(2 * n ** (1 / 3)), 15, 80))
        bins = checks.positive_int(bins, "display_bins", 3)
        lo, hi = stats_.percentile(0.5), stats_.percentile(99.5)
        hi = np.where(hi > lo, hi, lo + 1.0)
        self.edges_ = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, bins + 1)[None, :]
        self.counts_ = np.stack([stats_.histogram(j, self.edges_[j]) for j in range(stats_.n_features_)])
        centres = (self.edges_[:, 1:] + self.edges_[:, :-1]) / 2
        self.mean_ = stats_.mean_
        self.std_ = stats_.std_
        self.hwhm_ = np.array([measure_hwhm(centres[j], self.counts_[j]) for j in range(stats_.n_features_)])
        self.hwhm_gaussian_ = self.std_ * math.sqrt(2 * math.log(2))
        self.skewness_ = stats_.skewness_
        self.kurtosis_ = stats_.kurtosis_
        self.lower_, self.upper_ = stats_.lower_, stats_.upper_
        sample = view.subsample(min(ks_samples, view.n), self.random_state)
        self.ks_ = ks_distance_normal(sample, self.mean_, self.std_)
        self.ks_samples_ = len(sample)
        return self

    @classmethod
    def from_context(cls, context: Context) -> ComponentDistributions:
        return cls(ks_samples=context.options["ks_samples"], random_state=context.random_state, **context.common).fit(
            context.view, context.statistics
        )

    def to_dict(self) -> dict:
        """The analysis.json "components" section: one row per component."""
        rows = [
            {
                "index": j,
                "mean": self.mean_[j],
                "std": self.std_[j],
                "lower": self.lower_[j],
                "upper": self.upper_[j],
                "hwhm": self.hwhm_[j],
                "hwhm_gaussian": self.hwhm_gaussian_[j],
                "hwhm_ratio": self.hwhm_[j] / self.hwhm_gaussian_[j] if self.hwhm_gaussian_[j] > 0 else None,
                "skewness": self.skewness_[j],
                "excess_kurtosis": self.kurtosis_[j],
                "ks_statistic": self.ks_[j],
            }
            for j in range(len(self.mean_))
        ]
        return {"components": rows}

    def findings(self) -> list[Finding]:
        return [marginals_finding(self.ks_, self.ks_samples_)]


def marginals_finding(ks: np.ndarray, n_samples: int) -> Finding:
    """The seed's "every marginal is close to a Gaussian", from the KS distances of the components."""
    threshold = max(KS_CLOSE, 1.63 / math.sqrt(max(n_samples, 1)))
    share = float(np.mean(np.asarray(ks) < threshold))
    return Finding(
        key="gaussian-marginals",
        claim="every component's number distribution is close to a Gaussian",
        verdict=grade(share, 0.9, 0.5),
        evidence=f"{100 * share:.1f} % of the components have a Kolmogorov-Smirnov distance below {threshold:.3f} "
        f"to their fitted Gaussian ({n_samples} points; median distance {float(np.median(ks)):.3f})",
    )


def ks_distance_normal(sample: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Per-column Kolmogorov-Smirnov distance between a sample (m, N) and Normal(mean_j, std_j)."""
    m = len(sample)
    ordered = np.sort(sample, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cdf = special.ndtr((ordered - mean) / np.where(std > 0, std, 1.0))
    steps = np.arange(1, m + 1)[:, None] / m
    return np.maximum((steps - cdf).max(axis=0), (cdf - (steps - 1.0 / m)).max(axis=0))
