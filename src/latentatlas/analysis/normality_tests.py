"""Normality tests on one sample, each with its p-value: per component, joint, and the law of d^2.

Per component Shapiro-Wilk (n <= 5000, its p-values' valid range) or D'Agostino-Pearson K^2 (larger n),
Holm-corrected (pingouin.multicomp); Henze-Zirkler (pingouin) and Mardia's skewness (O(n^2 N), chunked);
Mardia's kurtosis with its exact finite-n moments; and the KS test of the sample's squared Mahalanobis
distances against their exact finite-n law (a scaled Beta that tends to chi2_N). A trimmed sample (the share
`kept` of a normal) gets the truncated reference laws. `CoreNormality` (normality.py) runs them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pingouin
from scipy import stats

SHAPIRO_MAX = 5000  # scipy's Shapiro-Wilk p-values are accurate up to here
ALPHA = 0.05
# a sample "passes" when at most this share of components is rejected after the Holm correction
COMPONENT_PASS_SHARE = 0.95


@dataclass(frozen=True)
class NormalityTests:
    """Every test on one sample (the trimmed core or all points) of one size; p-values are None when skipped."""

    n: int
    component_test: str
    component_pass_share: float
    component_min_p_holm: float
    henze_zirkler: float | None
    henze_zirkler_p: float | None
    mardia_skewness: float | None
    mardia_skewness_p: float | None
    mardia_kurtosis: float
    mardia_kurtosis_p: float
    sq_distance_ks: float
    sq_distance_p: float

    def to_dict(self) -> dict:
        return asdict(self)

    def joint_p_values(self) -> dict[str, float]:
        """The joint tests that ran, by name."""
        named = {
            "Henze-Zirkler": self.henze_zirkler_p,
            "Mardia skewness": self.mardia_skewness_p,
            "Mardia kurtosis": self.mardia_kurtosis_p,
            "law of d^2": self.sq_distance_p,
        }
        return {name: p for name, p in named.items() if p is not None}

    def threshold(self, alpha: float = ALPHA) -> float:
        """Bonferroni level over the joint tests that ran (an exact normal would otherwise fail one in five)."""
        return alpha / max(len(self.joint_p_values()), 1)

    def passes(self, alpha: float = ALPHA) -> bool:
        """At most 5 % of the components rejected (Holm) and no joint test below the Bonferroni level."""
        level = self.threshold(alpha)
        joint = self.joint_p_values().values()
        return self.component_pass_share >= COMPONENT_PASS_SHARE and all(p >= level for p in joint)


def whiten(x: np.ndarray) -> np.ndarray:
    """Rows centred on their mean and multiplied by the inverse square root of their covariance (bias=True).

    A singular covariance keeps only its range (the pseudo-inverse square root), so the result has rank columns.
    """
    centred = x - x.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov(centred, rowvar=False, bias=True).reshape(x.shape[1], x.shape[1]))
    keep = values > 1e-10 * max(float(values.max()), 1e-300)
    return centred @ (vectors[:, keep] / np.sqrt(values[keep]))


def mardia(y: np.ndarray, skewness: bool = True, kept: float | None = None) -> dict:
    """Mardia's multivariate skewness and kurtosis tests (Mardia 1970, 1974) on whitened rows `y`.

    With g_ij = y_i . y_j: b1 = sum g_ij^3 / n^2 (summed in row blocks) and n b1 / 6 ~ chi2 with
    p(p+1)(p+2)/6 dof; b2 = sum g_ii^2 / n with the exact normal mean p(p+2)(n-1)/(n+1) and variance
    8p(p+2)(n-3)(n-p-1)(n-p+1) / ((n+1)^2 (n+3)(n+5)). A core trimmed to the share `kept` of a normal
    (d^2 <= c = chi2_p quantile) has the mean multiplied by (F_p / F_{p+2})^2 F_{p+4} / F_p, F_k the chi2_k
    cdf at c (the trimming also shrinks the covariance by F_{p+2} / F_p).
    """
    n, p = y.shape
    squared = np.einsum("ij,ij->i", y, y)
    b2 = float(np.mean(squared**2))
    expected = p * (p + 2.0) * (n - 1.0) / (n + 1.0)
    if kept is not None:
        c = stats.chi2(p).ppf(kept)
        f_p, f_p2, f_p4 = (stats.chi2(p + k).cdf(c) for k in (0, 2, 4))
        expected *= (f_p / f_p2) ** 2 * f_p4 / f_p
    variance = 8.0 * p * (p + 2.0) * (n - 3.0) * (n - p - 1.0) * (n - p + 1.0)
    variance /= (n + 1.0) ** 2 * (n + 3.0) * (n + 5.0)
    kurtosis = (b2 - expected) / math.sqrt(max(variance, 1e-300))
    result = {
        "kurtosis": float(kurtosis),
        "kurtosis_p": float(2.0 * stats.norm.sf(abs(kurtosis))),
        "skewness": None,
        "skewness_p": None,
    }
    if skewness:
        total = 0.0
        block = max(1, 2**22 // max(n, 1))  # keeps each n x block product near 32 MB
        for start in range(0, n, block):
            total += float(np.sum((y[start : start + block] @ y.T) ** 3))
        statistic = total / n / 6.0  # n b1 / 6
        result["skewness"] = statistic
        result["skewness_p"] = float(stats.chi2(p * (p + 1) * (p + 2) / 6.0).sf(statistic))
    return result


def henze_zirkler(x: np.ndarray) -> tuple[float, float]:
    """Henze-Zirkler statistic and p-value (pingouin.multivariate_normality)."""
    result = pingouin.multivariate_normality(np.asarray(x, dtype=np.float64))
    return float(result.hz), float(result.pval)


def component_tests(x: np.ndarray) -> tuple[str, float, float]:
    """Per-component normality test with the Holm correction: (test name, share not rejected, min corrected p)."""
    n = len(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant components: p = nan, counted as rejected
        if n <= SHAPIRO_MAX:
            name, p_values = "shapiro-wilk", [stats.shapiro(column).pvalue for column in x.T]
        else:
            name, p_values = "dagostino-pearson", stats.normaltest(x, axis=0).pvalue
    p_values = np.nan_to_num(np.asarray(p_values, dtype=np.float64), nan=0.0)
    reject, corrected = pingouin.multicomp(p_values, alpha=ALPHA, method="holm")
    return name, float(1.0 - np.mean(reject)), float(np.min(corrected))


def sq_distance_ks(squared: np.ndarray, dof: int, kept: float | None = None) -> tuple[float, float]:
    """KS test of a sample's squared Mahalanobis distances from its own mean and covariance (1/n).

    For n normal points d_i^2 / (n - 1) ~ Beta(p/2, (n - p - 1)/2) exactly (Gnanadesikan & Kettenring 1972);
    chi2_p is only its limit, and at p/n ~ 0.25 far too wide. A trimmed core keeps the share `kept` of the
    law (its top trimmed off).
    """
    n = len(squared)
    reference = stats.beta(dof / 2.0, (n - dof - 1) / 2.0)
    top = reference.ppf(kept) if kept is not None else 1.0
    scale = reference.cdf(top)
    result = stats.kstest(squared / (n - 1), lambda v: np.minimum(reference.cdf(np.minimum(v, top)) / scale, 1.0))
    return float(result.statistic), float(result.pvalue)


def normality_tests(x: np.ndarray, pairwise: bool, kept: float | None) -> NormalityTests:
    """Every normality test on one sample `x`; `kept` is the share a trimmed core kept (None: untrimmed)."""
    name, share, min_p = component_tests(x)
    hz, hz_p = henze_zirkler(x) if pairwise else (None, None)
    y = whiten(np.asarray(x, dtype=np.float64))
    m = mardia(y, skewness=pairwise, kept=kept)
    ks, ks_p = sq_distance_ks(np.einsum("ij,ij->i", y, y), y.shape[1], kept)
    return NormalityTests(
        n=len(x),
        component_test=name,
        component_pass_share=share,
        component_min_p_holm=min_p,
        henze_zirkler=hz,
        henze_zirkler_p=hz_p,
        mardia_skewness=m["skewness"],
        mardia_skewness_p=m["skewness_p"],
        mardia_kurtosis=m["kurtosis"],
        mardia_kurtosis_p=m["kurtosis_p"],
        sq_distance_ks=ks,
        sq_distance_p=ks_p,
    )


def rejecting(t: NormalityTests) -> str:
    """The tests that rejected the sample, with their numbers."""
    names = []
    if t.component_pass_share < COMPONENT_PASS_SHARE:
        names.append(f"{t.component_test} ({100 * (1 - t.component_pass_share):.0f} % of components)")
    for label, p in t.joint_p_values().items():
        if p < t.threshold():
            names.append(f"{label} (p = {p:.2g})")
    return ", ".join(names)
