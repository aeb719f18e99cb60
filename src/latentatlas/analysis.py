"""Fitted analyses of a z-point set, computed in chunks so that stores of any size fit in memory.

Every analysis follows the scikit-learn convention: ``__init__`` only stores options, ``fit(z)``
returns ``self`` and learned attributes end in ``_``. ``z`` is a float array ``(n, N)``, typically the
run's memory-mapped ``zpoints.npy``; it is read in chunks of ``chunk_size`` rows with float64
accumulators (pass 1: moments and covariance; pass 2: fine per-component histograms from which
percentiles, histograms for figures and half widths are taken; later passes: Mahalanobis distances,
radii, slice counts). Only subsamples (KS test, MCD core, projection plots) are ever loaded whole.

``analyze_run(run)`` / ``latentatlas analyze RUN`` writes ``RUN/analysis/``:

- ``analysis.json`` (schema ``latentatlas.analysis/1``, described below),
- ``mean.npy`` (N,), ``covariance.npy`` (N, N), ``correlation.npy`` (N, N), ``pca_eigenvalues.npy`` (N,),
  ``pca_components.npy`` (N, N; row k = k-th principal axis), ``robust_mean.npy``, ``robust_covariance.npy``,
  ``histogram_counts.npy`` (N, bins) with ``histogram_edges.npy`` (N, bins + 1),
- PNG figures, each listed under ``"figures"``.

analysis.json (all distances in latent units unless named otherwise)::

    schema        "latentatlas.analysis/1"
    run, subset   the run folder and the rows analysed ("train", "val" or "all")
    n_points, latent_dim
    options       every option used (so the analysis can be repeated)
    arrays        {name: file} for the .npy files above
    components    [{index, mean, std, lower, upper, hwhm, hwhm_gaussian, hwhm_ratio, skewness,
                    excess_kurtosis, ks_statistic}] per component; lower/upper at options.percentiles;
                    hwhm measured from the histogram, hwhm_gaussian = std*sqrt(2 ln 2);
                    ks_statistic: Kolmogorov-Smirnov distance to the fitted Gaussian on a subsample
    dominant      {rule: {offset_k, width_threshold, width_rule, combine}, components: [{index, mean, std,
                    offset (|mean|/std), rms (sqrt(mean^2+std^2)), radius_share (rms^2 / E[R^2]),
                    offset_rule, width_rule}] ranked by rms}
    bulk          {centre_norm, total_variance, log_generalized_variance, std_median, std_min, std_max,
                    covariance_rank, condition_number}
    correlations  {strongest: [{pair: [i, j], r}], mean_abs_r, max_abs_r}
    planes        [{plane: [j1, j2], source ("user" | "dominant" | "correlation"), r, ellipses:
                    [{confidence, centre, half_axes (major, minor), angle_deg (major axis vs. the j1 axis)}]}]
    pca           {explained_variance_ratio (first 32), n_components_90, n_components_99, participation_ratio}
    radii         {data: {mean, std, min, max, p1, p50, p99}, uniform: [{b, theory_mean, theory_std,
                    approx_mean (b sqrt(N/3)), approx_std (b/sqrt(15)), simulated_mean, simulated_std,
                    data_fraction_within_4_sigma}], b_match, b_match_approx, b_overlap: [lo, hi | null]}
    origin        {mahalanobis, mahalanobis_sq, percentile, fraction_closer, chi2_percentile,
                    euclidean_distance, euclidean_fraction_closer}
    normality     {dof, mean_sq, expected_mean_sq, ks_statistic, fraction_beyond_chi2_99}
    robust_core   {n_subsample, support_fraction, log_det_plain, log_det_robust, log_generalized_variance_ratio,
                    relative_frobenius, std_ratio: {min, median, max}, mean_shift_mahalanobis}
                    or {skipped: reason} when the subsample has no more than N + 1 rows
    slices        [{plane, b, count, fraction, independent_gaussian_fraction}]
    figures       [{file, caption}]
"""

from __future__ import annotations

import math
import mmap
import operator
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import integrate, special, stats
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from latentatlas.errors import LatentAtlasError

SCHEMA = "latentatlas.analysis/1"
DEFAULT_CHUNK = 16384


def _single_thread_blas():
    """One BLAS thread. N x N decompositions gain nothing from threads, the chunk products little
    (the passes are bound by reading the store); and on a busy machine OpenBLAS's spinning threads
    slow a 256 x 256 eigh or Cholesky down a hundredfold and the chunk products eightfold."""
    return threadpool_limits(limits=1, user_api="blas")


def _one_blas_thread(method):
    """Decorator: run a fit method under `_single_thread_blas`."""
    import functools

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with _single_thread_blas():
            return method(*args, **kwargs)

    return wrapper


# ----------------------------------------------------------------------------- chunked reading


class ZView:
    """Rows of a z-point array (optionally a boolean row selection), read in float64 chunks.

    A selection is applied chunk by chunk, so a subset of a memory-mapped store is never copied whole.
    """

    def __init__(self, z: np.ndarray, rows: np.ndarray | None = None):
        if isinstance(z, ZView):
            z, rows = z.z, z.rows if rows is None else rows
        if not hasattr(z, "ndim") or z.ndim != 2:
            raise LatentAtlasError(f"z-points must be a 2-D array (n, N), got shape {getattr(z, 'shape', None)}")
        if not np.issubdtype(z.dtype, np.floating):
            raise LatentAtlasError(f"z-points must be floating point, got {z.dtype}")
        if rows is not None:
            rows = np.asarray(rows, dtype=bool)
            if rows.shape != (len(z),):
                raise LatentAtlasError(f"row selection has {rows.shape} entries for {len(z)} z-points")
        self.z, self.rows = z, rows
        self.n = int(rows.sum()) if rows is not None else len(z)
        self.dim = int(z.shape[1])

    def chunks(
        self, chunk_size: int = DEFAULT_CHUNK, desc: str | None = None, progress: bool = False
    ) -> Iterator[np.ndarray]:
        total = len(self.z)
        starts = range(0, total, max(1, int(chunk_size)))
        for start in tqdm(starts, desc=desc, disable=None if progress else True, leave=False):
            block = self.z[start : start + chunk_size]
            if self.rows is not None:
                block = block[self.rows[start : start + chunk_size]]
            chunk = np.asarray(block, dtype=np.float64)
            _release_pages(self.z)
            if len(chunk):
                yield chunk

    def take(self, indices: np.ndarray) -> np.ndarray:
        """float64 rows at positions `indices` of the selection (sorted for sequential reads)."""
        indices = np.sort(np.asarray(indices, dtype=np.int64))
        absolute = np.flatnonzero(self.rows)[indices] if self.rows is not None else indices
        out = np.empty((len(absolute), self.dim))
        # in small blocks: each scattered row faults in a whole read-around window of the map (~64 KB),
        # so 20k random rows of a 1 GB store would otherwise make all of it resident at once
        for start in range(0, len(absolute), 256):
            out[start : start + 256] = self.z[absolute[start : start + 256]]
            _release_pages(self.z)
        return out

    def subsample(self, size: int, seed: int) -> np.ndarray:
        if size >= self.n:
            return self.take(np.arange(self.n))
        return self.take(np.random.default_rng(seed).choice(self.n, size, replace=False))


def _release_pages(z: np.ndarray) -> None:
    """Drop already-read pages of a read-only memory map from this process's resident set.

    The pages stay in the OS page cache, but without this a full pass over a 1 GB store counts 1 GB of
    file-backed pages as this process's memory.
    """
    mapping = getattr(z, "_mmap", None)
    if isinstance(mapping, mmap.mmap) and getattr(z, "mode", None) == "r" and hasattr(mapping, "madvise"):
        try:
            mapping.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):
            pass


def _as_view(z: Any) -> ZView:
    return z if isinstance(z, ZView) else ZView(z)


def _check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise LatentAtlasError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_b(b: Any, name: str = "b") -> float:
    try:
        value = float(b)
    except (TypeError, ValueError):
        raise LatentAtlasError(f"{name} must be a number > 0, got {b!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise LatentAtlasError(f"{name} must be a number > 0, got {b!r}")
    return value


def _check_confidence(confidence: Any) -> float:
    try:
        value = float(confidence)
    except (TypeError, ValueError):
        raise LatentAtlasError(f"a confidence level must be a number in (0, 1), got {confidence!r}") from None
    if not 0.0 < value < 1.0:
        raise LatentAtlasError(f"a confidence level must be in (0, 1), got {confidence!r}")
    return value


def check_plane(plane: Sequence[int], dim: int) -> tuple[int, int]:
    """Validate a coordinate plane (two distinct integer axis indices in [0, dim))."""
    try:
        j1, j2 = (operator.index(j) for j in plane)
    except (TypeError, ValueError):
        raise LatentAtlasError(f"a plane is two integer axis indices like (151, 195), got {plane!r}") from None
    for j in (j1, j2):
        if not 0 <= j < dim:
            raise LatentAtlasError(f"plane ({j1}, {j2}): axis {j} is out of range for latent dimension {dim}")
    if j1 == j2:
        raise LatentAtlasError(f"plane ({j1}, {j2}) repeats an axis; give two different axes")
    return j1, j2


# ----------------------------------------------------------------------------- bulk statistics


class BulkStatistics:
    """Mean, covariance, higher moments and fine histograms of every component, in two chunked passes.

    Pass 1 accumulates shifted float64 power sums (shift = the first chunk's mean, which keeps the
    sums well conditioned); pass 2 bins every component into `bins` equal bins between its min and max.
    Percentiles come from those fine histograms (linear within a bin), never from sorting.
    """

    def __init__(
        self,
        percentiles: Sequence[float] = (1.0, 99.0),
        chunk_size: int = DEFAULT_CHUNK,
        bins: int = 4096,
        progress: bool = False,
    ):
        self.percentiles = percentiles
        self.chunk_size = chunk_size
        self.bins = bins
        self.progress = progress

    @_one_blas_thread
    def fit(self, z: np.ndarray) -> BulkStatistics:
        percentiles = [float(p) for p in self.percentiles]
        if len(percentiles) != 2 or not 0.0 <= percentiles[0] < percentiles[1] <= 100.0:
            raise LatentAtlasError(f"percentiles must be two numbers 0 <= lo < hi <= 100, got {self.percentiles!r}")
        chunk_size = _check_positive_int(self.chunk_size, "chunk_size")
        bins = _check_positive_int(self.bins, "bins", 2)
        view = _as_view(z)
        if view.n < 2:
            raise LatentAtlasError(f"need at least 2 z-points to analyse, got {view.n}")
        dim = view.dim
        shift = None
        n = 0
        s1, s3, s4 = np.zeros(dim), np.zeros(dim), np.zeros(dim)
        s2 = np.zeros((dim, dim))
        lo, hi = np.full(dim, np.inf), np.full(dim, -np.inf)
        for chunk in view.chunks(chunk_size, "moments", self.progress):
            if not np.isfinite(chunk).all():
                bad = n + int(np.flatnonzero(~np.isfinite(chunk).all(axis=1))[0])
                raise LatentAtlasError(f"the z-points contain NaN or infinite values (first bad row: {bad})")
            if shift is None:
                shift = chunk.mean(axis=0)
            d = chunk - shift
            n += len(d)
            s1 += d.sum(axis=0)
            s2 += d.T @ d
            d2 = d * d
            s3 += (d2 * d).sum(axis=0)
            s4 += (d2 * d2).sum(axis=0)
            np.minimum(lo, chunk.min(axis=0), out=lo)
            np.maximum(hi, chunk.max(axis=0), out=hi)
        offset = s1 / n
        mean = shift + offset
        cov = (s2 - n * np.outer(offset, offset)) / (n - 1)
        cov = (cov + cov.T) / 2
        # central moments of each component (population normalisation) from the shifted power sums
        m2 = np.diag(s2) / n - offset**2
        m3 = s3 / n - 3 * offset * np.diag(s2) / n + 2 * offset**3
        m4 = s4 / n - 4 * offset * s3 / n + 6 * offset**2 * np.diag(s2) / n - 3 * offset**4
        with np.errstate(divide="ignore", invalid="ignore"):
            skew = np.where(m2 > 0, m3 / np.maximum(m2, 1e-300) ** 1.5, 0.0)
            kurt = np.where(m2 > 0, m4 / np.maximum(m2, 1e-300) ** 2 - 3.0, 0.0)

        # constant components still get a usable (unit) bin range
        width = np.where(hi > lo, hi - lo, 1.0)
        left = np.where(hi > lo, lo, lo - 0.5)
        counts = np.zeros(dim * bins, dtype=np.int64)
        column_offset = np.arange(dim, dtype=np.int64) * bins
        for chunk in view.chunks(chunk_size, "histograms", self.progress):
            index = ((chunk - left) * (bins / width)).astype(np.int64)
            np.clip(index, 0, bins - 1, out=index)
            index += column_offset
            counts += np.bincount(index.ravel(), minlength=dim * bins)
        self.n_samples_ = n
        self.n_features_ = dim
        self.mean_ = mean
        self.cov_ = cov
        self.std_ = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        self.min_, self.max_ = lo, hi
        self.skewness_ = skew
        self.kurtosis_ = kurt  # excess kurtosis: 0 for a Gaussian
        self.hist_counts_ = counts.reshape(dim, bins)
        self.hist_edges_ = left[:, None] + width[:, None] * np.linspace(0.0, 1.0, bins + 1)[None, :]
        self.lower_ = self.percentile(percentiles[0])
        self.upper_ = self.percentile(percentiles[1])
        return self

    def _cdf_at_edges(self) -> np.ndarray:
        cum = np.concatenate([np.zeros((self.n_features_, 1)), np.cumsum(self.hist_counts_, axis=1)], axis=1)
        return cum / self.n_samples_

    def percentile(self, q: float) -> np.ndarray:
        """Per-component q-th percentile (0..100), interpolated within the fine histogram's bins."""
        q = float(q)
        if not 0.0 <= q <= 100.0:
            raise LatentAtlasError(f"a percentile must be in [0, 100], got {q}")
        cdf = self._cdf_at_edges()
        out = np.empty(self.n_features_)
        for j in range(self.n_features_):
            # the first edge where the CDF reaches q, interpolated inside that bin
            k = int(np.searchsorted(cdf[j], q / 100.0, side="left"))
            k = min(max(k, 1), cdf.shape[1] - 1)
            c0, c1 = cdf[j, k - 1], cdf[j, k]
            e0, e1 = self.hist_edges_[j, k - 1], self.hist_edges_[j, k]
            out[j] = e0 if c1 <= c0 else e0 + (e1 - e0) * (q / 100.0 - c0) / (c1 - c0)
        return np.clip(out, self.min_, self.max_)

    def histogram(self, component: int, edges: np.ndarray) -> np.ndarray:
        """Counts of one component between `edges`, re-binned from the fine histogram."""
        cdf = np.interp(edges, self.hist_edges_[component], self._cdf_at_edges()[component], left=0.0, right=1.0)
        return np.diff(cdf) * self.n_samples_


# ----------------------------------------------------------------------------- per-component distributions


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
    """

    def __init__(
        self,
        display_bins: int | None = None,
        ks_samples: int = 20000,
        seed: int = 0,
        chunk_size: int = DEFAULT_CHUNK,
        progress: bool = False,
    ):
        self.display_bins = display_bins
        self.ks_samples = ks_samples
        self.seed = seed
        self.chunk_size = chunk_size
        self.progress = progress

    @_one_blas_thread
    def fit(self, z: np.ndarray, statistics: BulkStatistics | None = None) -> ComponentDistributions:
        view = _as_view(z)
        stats_ = statistics or BulkStatistics(chunk_size=self.chunk_size, progress=self.progress).fit(view)
        ks_samples = _check_positive_int(self.ks_samples, "ks_samples", 2)
        n = stats_.n_samples_
        bins = self.display_bins or int(np.clip(round(2 * n ** (1 / 3)), 15, 80))
        bins = _check_positive_int(bins, "display_bins", 3)
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
        sample = view.subsample(min(ks_samples, view.n), self.seed)
        self.ks_ = ks_distance_normal(sample, self.mean_, self.std_)
        self.ks_samples_ = len(sample)
        return self


def ks_distance_normal(sample: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Per-column Kolmogorov-Smirnov distance between a sample (m, N) and Normal(mean_j, std_j)."""
    m = len(sample)
    ordered = np.sort(sample, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cdf = special.ndtr((ordered - mean) / np.where(std > 0, std, 1.0))
    steps = np.arange(1, m + 1)[:, None] / m
    return np.maximum((steps - cdf).max(axis=0), (cdf - (steps - 1.0 / m)).max(axis=0))


# ----------------------------------------------------------------------------- dominant components


class DominantComponents:
    """The seed's dominant components, made explicit.

    A component is "offset" when |mean| / std >= `offset_k` and "wide" when std >= the width threshold:
    `width` if given (absolute), else `relative_width` x the median std. `combine` = "or" keeps components
    meeting either rule, "and" (the seed's wording: a mean away from 0 and a larger half-width) both.
    Ranked by rms = sqrt(mean^2 + std^2), the component's contribution to the mean squared radius.
    """

    def __init__(
        self, offset_k: float = 1.0, width: float | None = None, relative_width: float = 1.5, combine: str = "or"
    ):
        self.offset_k = offset_k
        self.width = width
        self.relative_width = relative_width
        self.combine = combine

    def fit(self, z: np.ndarray | None = None, statistics: BulkStatistics | None = None) -> DominantComponents:
        if self.combine not in ("or", "and"):
            raise LatentAtlasError(f"combine must be 'or' or 'and', got {self.combine!r}")
        offset_k = _check_b(self.offset_k, "offset_k")
        if statistics is None:
            if z is None:
                raise LatentAtlasError("DominantComponents.fit needs z-points or fitted BulkStatistics")
            statistics = BulkStatistics().fit(z)
        mean, std = statistics.mean_, statistics.std_
        if self.width is not None:
            threshold = _check_b(self.width, "width")
            self.width_rule_ = "absolute"
        else:
            threshold = _check_b(self.relative_width, "relative_width") * float(np.median(std))
            self.width_rule_ = f"{float(self.relative_width):g} x median std"
        with np.errstate(divide="ignore", invalid="ignore"):
            offset = np.where(std > 0, np.abs(mean) / np.where(std > 0, std, 1.0), np.where(mean != 0, np.inf, 0.0))
        is_offset = offset >= offset_k
        is_wide = std >= threshold
        chosen = (is_offset | is_wide) if self.combine == "or" else (is_offset & is_wide)
        rms = np.sqrt(mean**2 + std**2)
        order = np.argsort(-rms, kind="stable")
        self.width_threshold_ = threshold
        self.offset_ = offset
        self.is_offset_ = is_offset
        self.is_wide_ = is_wide
        self.rms_ = rms
        self.radius_share_ = rms**2 / max(float((rms**2).sum()), 1e-300)
        self.components_ = np.array([j for j in order if chosen[j]], dtype=np.int64)
        return self

    def table(self, mean: np.ndarray, std: np.ndarray) -> list[dict]:
        return [
            {
                "index": int(j),
                "mean": float(mean[j]),
                "std": float(std[j]),
                "offset": float(self.offset_[j]),
                "rms": float(self.rms_[j]),
                "radius_share": float(self.radius_share_[j]),
                "offset_rule": bool(self.is_offset_[j]),
                "width_rule": bool(self.is_wide_[j]),
            }
            for j in self.components_
        ]


# ----------------------------------------------------------------------------- correlations, ellipses, PCA


def correlation_matrix(cov: np.ndarray) -> np.ndarray:
    """Pearson correlations from a covariance; components without variance correlate 0 (1 on the diagonal)."""
    std = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    safe = np.where(std > 0, std, 1.0)
    corr = cov / np.outer(safe, safe)
    corr[std == 0, :] = 0.0
    corr[:, std == 0] = 0.0
    np.fill_diagonal(corr, 1.0)
    return np.clip(corr, -1.0, 1.0)


def strongest_pairs(corr: np.ndarray, k: int = 10) -> list[tuple[int, int, float]]:
    """The k coordinate pairs (i < j) with the largest |r|, strongest first."""
    i, j = np.triu_indices(len(corr), k=1)
    r = corr[i, j]
    order = np.argsort(-np.abs(r), kind="stable")[: max(0, int(k))]
    return [(int(i[o]), int(j[o]), float(r[o])) for o in order]


def confidence_ellipse(mean2: np.ndarray, cov2: np.ndarray, confidence: float) -> dict:
    """The ellipse holding `confidence` of a 2-D Gaussian: chi-square with 2 dof, r^2 = -2 ln(1 - confidence).

    Returns {"centre": [x, y], "half_axes": [major, minor], "angle_deg": tilt of the major axis
    against the first axis, in (-90, 90]}.
    """
    confidence = _check_confidence(confidence)
    mean2 = np.asarray(mean2, dtype=np.float64).reshape(-1)
    cov2 = np.asarray(cov2, dtype=np.float64)
    if mean2.shape != (2,) or cov2.shape != (2, 2):
        raise LatentAtlasError(
            f"confidence_ellipse needs a 2-vector and a 2x2 covariance, got {mean2.shape}, {cov2.shape}"
        )
    values, vectors = np.linalg.eigh((cov2 + cov2.T) / 2)
    values = np.clip(values[::-1], 0.0, None)
    major = vectors[:, 1]
    r2 = -2.0 * math.log1p(-confidence)
    angle = math.degrees(math.atan2(major[1], major[0]))
    if angle <= -90.0:
        angle += 180.0
    elif angle > 90.0:
        angle -= 180.0
    return {
        "centre": [float(mean2[0]), float(mean2[1])],
        "half_axes": [float(math.sqrt(r2 * values[0])), float(math.sqrt(r2 * values[1]))],
        "angle_deg": float(angle),
        "confidence": confidence,
    }


class PCA:
    """Eigen-spectrum of a covariance: explained variance, components for 90/99 %, participation ratio."""

    def __init__(self, chunk_size: int = DEFAULT_CHUNK):
        self.chunk_size = chunk_size

    @_one_blas_thread
    def fit(self, z: np.ndarray | None = None, covariance: np.ndarray | None = None) -> PCA:
        if covariance is None:
            if z is None:
                raise LatentAtlasError("PCA.fit needs z-points or a covariance")
            covariance = BulkStatistics(chunk_size=self.chunk_size).fit(z).cov_
        with _single_thread_blas():
            values, vectors = np.linalg.eigh(covariance)
        order = np.argsort(values)[::-1]
        values = np.clip(values[order], 0.0, None)
        total = float(values.sum())
        self.eigenvalues_ = values
        self.components_ = vectors[:, order].T
        self.explained_variance_ratio_ = values / total if total > 0 else np.zeros_like(values)
        cumulative = np.cumsum(self.explained_variance_ratio_)
        self.n_components_90_ = int(np.searchsorted(cumulative, 0.90 - 1e-12) + 1)
        self.n_components_99_ = int(np.searchsorted(cumulative, 0.99 - 1e-12) + 1)
        self.participation_ratio_ = total**2 / float((values**2).sum()) if total > 0 else 0.0
        return self


# ----------------------------------------------------------------------------- Mahalanobis distances


def _log_det(cov: np.ndarray) -> float:
    """log det of a covariance; -inf when singular."""
    with _single_thread_blas():
        sign, logdet = np.linalg.slogdet(cov)
    return float(logdet) if sign > 0 else -math.inf


def precision_matrix(cov: np.ndarray, rcond: float = 1e-10) -> tuple[np.ndarray, int]:
    """Pseudo-inverse of a covariance (eigenvalues below rcond x the largest dropped) and its rank."""
    with _single_thread_blas():
        values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    keep = values > rcond * max(float(values.max()), 1e-300)
    inverse = np.where(keep, 1.0 / np.where(keep, values, 1.0), 0.0)
    return (vectors * inverse) @ vectors.T, int(keep.sum())


class Mahalanobis:
    """Mahalanobis distances from the bulk centre (pseudo-inverse covariance when singular).

    `sq_distances_` holds the sorted squared distances of all fitted points (computed chunkwise);
    `percentile(points)` is the percentage of fitted points strictly closer to the centre.
    """

    def __init__(self, chunk_size: int = DEFAULT_CHUNK, rcond: float = 1e-10, progress: bool = False):
        self.chunk_size = chunk_size
        self.rcond = rcond
        self.progress = progress

    @_one_blas_thread
    def fit(self, z: np.ndarray, mean: np.ndarray | None = None, covariance: np.ndarray | None = None) -> Mahalanobis:
        view = _as_view(z)
        chunk_size = _check_positive_int(self.chunk_size, "chunk_size")
        if mean is None or covariance is None:
            fitted = BulkStatistics(chunk_size=chunk_size, bins=2, progress=self.progress).fit(view)
            mean, covariance = fitted.mean_, fitted.cov_
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.covariance_ = np.asarray(covariance, dtype=np.float64)
        self.precision_, self.rank_ = precision_matrix(self.covariance_, self.rcond)
        parts = [self._sq(chunk) for chunk in view.chunks(chunk_size, "mahalanobis", self.progress)]
        self.sq_distances_ = np.sort(np.concatenate(parts)) if parts else np.zeros(0)
        self.n_samples_ = len(self.sq_distances_)
        return self

    def _sq(self, points: np.ndarray) -> np.ndarray:
        d = points - self.mean_
        return np.maximum(np.einsum("ij,ij->i", d @ self.precision_, d), 0.0)

    def _points(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64)
        if points.ndim == 1:
            points = points[None, :]
        if points.ndim != 2 or points.shape[1] != len(self.mean_):
            raise LatentAtlasError(f"points must have {len(self.mean_)} components, got shape {points.shape}")
        return points

    def sq_distance(self, points: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distances (m,) of points (m, N) or one point (N,)."""
        points = self._points(points)
        return np.concatenate([self._sq(points[i : i + DEFAULT_CHUNK]) for i in range(0, len(points), DEFAULT_CHUNK)])

    def percentile(self, points: np.ndarray) -> np.ndarray:
        """Percentage (0..100) of the fitted points closer to the centre than each point."""
        closer = np.searchsorted(self.sq_distances_, self.sq_distance(points), side="left")
        return 100.0 * closer / max(self.n_samples_, 1)


# ----------------------------------------------------------------------------- radii


def uniform_radius_moments(dim: int, b: float = 1.0) -> tuple[float, float]:
    """Exact mean and standard deviation of |x| for x uniform in [-b, b]^dim.

    E|x| = b/(2 sqrt(pi)) * integral_0^inf (1 - phi(t)^dim) t^(-3/2) dt with phi(t) = E exp(-t u^2) for
    u ~ U[-1, 1] (from sqrt(s) = 1/(2 sqrt(pi)) integral (1 - e^(-ts)) t^(-3/2) dt); E|x|^2 = dim b^2 / 3.
    For large dim the mean tends to b sqrt(dim/3) (1 - 1/(10 dim)) and the spread to b/sqrt(15).
    """
    dim = _check_positive_int(dim, "dim")
    b = _check_b(b)

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
    """

    def __init__(
        self,
        b_values: Sequence[float] = (0.5, 1.0, 1.5, 2.0, 5.0),
        simulate: int = 20000,
        seed: int = 0,
        chunk_size: int = DEFAULT_CHUNK,
        progress: bool = False,
    ):
        self.b_values = b_values
        self.simulate = simulate
        self.seed = seed
        self.chunk_size = chunk_size
        self.progress = progress

    @_one_blas_thread
    def fit(self, z: np.ndarray) -> Radii:
        view = _as_view(z)
        b_values = [_check_b(b, "a radius b") for b in self.b_values]
        simulate = _check_positive_int(self.simulate, "simulate", 2)
        chunk_size = _check_positive_int(self.chunk_size, "chunk_size")
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
            simulated = np.linalg.norm(uniform_box(simulate, dim, b, seed=self.seed + k).astype(np.float64), axis=1)
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
        return self


# ----------------------------------------------------------------------------- robust core


def _fit_gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, Any]:
    """Mean, covariance (bias=True), log det and a squared-distance function, via Cholesky when possible."""
    from scipy import linalg

    location = x.mean(axis=0)
    cov = np.cov(x, rowvar=False, bias=True).reshape(x.shape[1], x.shape[1])
    try:
        lower = linalg.cholesky(cov, lower=True)
    except linalg.LinAlgError:  # singular: pseudo-inverse distances, determinant 0
        precision, _ = precision_matrix(cov)
        return location, cov, -math.inf, lambda y: np.einsum("ij,ij->i", (y - location) @ precision, y - location)
    logdet = 2.0 * float(np.log(np.diag(lower)).sum())

    def sq_distances(y: np.ndarray) -> np.ndarray:
        solved = linalg.solve_triangular(lower, (y - location).T, lower=True, check_finite=False)
        return np.einsum("ij,ij->j", solved, solved)

    return location, cov, logdet, sq_distances


def _c_steps(x: np.ndarray, subset: np.ndarray, h: int, max_iter: int = 50) -> tuple[float, np.ndarray]:
    """Concentration steps of FAST-MCD from one start: refit on the h closest points until the
    covariance determinant stops decreasing. Returns (log det, final subset)."""
    best_logdet, best = math.inf, subset
    for _ in range(max_iter):
        _, _, logdet, sq_distances = _fit_gaussian(x[subset])
        if logdet >= best_logdet - 1e-12:
            break
        best_logdet, best = logdet, subset
        if logdet == -math.inf:
            break
        new = _h_closest(sq_distances(x), h)
        if np.array_equal(new, subset):
            break
        subset = new
    return best_logdet, best


def _h_closest(distances: np.ndarray, h: int) -> np.ndarray:
    return np.sort(np.argpartition(distances, h - 1)[:h])


def min_cov_det(x: np.ndarray, support_fraction: float | None = None) -> dict:
    """Minimum Covariance Determinant with deterministic starts (DetMCD, Hubert, Rousseeuw & Verdonck 2012).

    scikit-learn's MinCovDet draws 500 random (N+1)-point starts and needs minutes at N = 256; DetMCD
    starts instead from the h points closest to the centre under three cheap estimates (classical
    Mahalanobis; median/MAD-standardised Euclidean; Mahalanobis of the ranks), runs C-steps to
    convergence, keeps the lowest determinant, then applies the same consistency correction and
    reweighting (with the consistency factor of Croux & Haesbroeck 1999). Needs more than N + 1 points.
    """
    with _single_thread_blas():
        return _min_cov_det(x, support_fraction)


def _min_cov_det(x: np.ndarray, support_fraction: float | None) -> dict:
    n, p = x.shape
    h = math.ceil((n + p + 1) / 2.0 if support_fraction is None else support_fraction * n)
    h = min(max(h, p + 1), n)
    median = np.median(x, axis=0)
    mad = 1.4826 * np.median(np.abs(x - median), axis=0)
    scaled = (x - median) / np.where(mad > 0, mad, 1.0)
    ranks = stats.rankdata(x, axis=0)
    starts = [
        _fit_gaussian(x)[3](x),  # classical Mahalanobis
        np.einsum("ij,ij->i", scaled, scaled),  # median/MAD-standardised Euclidean
        _fit_gaussian(ranks)[3](ranks),  # Mahalanobis of the ranks (Spearman)
    ]
    best_logdet, best = math.inf, None
    for distances in starts:
        logdet, subset = _c_steps(x, _h_closest(distances, h), h)
        if best is None or logdet < best_logdet:
            best_logdet, best = logdet, subset
    raw_location, raw_cov, _, sq_distances = _fit_gaussian(x[best])
    raw_distances = sq_distances(x)
    # consistency: the squared distances of a Gaussian have median chi2_p(0.5)
    correction = np.median(raw_distances) / stats.chi2(p).isf(0.5)
    raw_cov = raw_cov * correction
    raw_distances = raw_distances / correction
    cutoff = stats.chi2(p).isf(0.025)
    support = raw_distances < cutoff
    location = x[support].mean(axis=0)
    # points inside the 97.5 % ellipsoid of a Gaussian have a smaller covariance by chi2_{p+2}(cutoff) / 0.975
    cov = np.cov(x[support], rowvar=False, bias=True).reshape(p, p) * (0.975 / stats.chi2(p + 2).cdf(cutoff))
    return {
        "location": location,
        "covariance": cov,
        "support": support,
        "h": h,
        "raw_location": raw_location,
        "raw_covariance": raw_cov,
    }


class RobustCore:
    """Covariance of the inner core by Minimum Covariance Determinant on a seeded subsample, vs. the plain one.

    See `min_cov_det` for the estimator. `location_`, `covariance_` are the robust estimates;
    the comparisons with the plain covariance end in `_` too.
    """

    def __init__(self, max_samples: int = 5000, support_fraction: float | None = None, seed: int = 0):
        self.max_samples = max_samples
        self.support_fraction = support_fraction
        self.seed = seed

    @_one_blas_thread
    def fit(self, z: np.ndarray, mean: np.ndarray | None = None, covariance: np.ndarray | None = None) -> RobustCore:
        view = _as_view(z)
        max_samples = _check_positive_int(self.max_samples, "max_samples", 2)
        if self.support_fraction is not None and not 0.5 <= float(self.support_fraction) <= 1.0:
            raise LatentAtlasError(f"support_fraction must be in [0.5, 1], got {self.support_fraction!r}")
        size = min(max_samples, view.n)
        if size < view.dim + 2:
            raise LatentAtlasError(
                f"the robust core needs more than N + 1 = {view.dim + 1} points in its subsample, got {size}"
            )
        if mean is None or covariance is None:
            fitted = BulkStatistics(bins=2).fit(view)
            mean, covariance = fitted.mean_, fitted.cov_
        mean, covariance = np.asarray(mean, dtype=np.float64), np.asarray(covariance, dtype=np.float64)
        sample = view.subsample(size, self.seed)
        mcd = min_cov_det(sample, self.support_fraction)
        self.n_subsample_ = len(sample)
        self.location_ = mcd["location"]
        self.covariance_ = mcd["covariance"]
        self.support_fraction_ = float(mcd["support"].mean())
        plain_std = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
        robust_std = np.sqrt(np.clip(np.diag(self.covariance_), 0.0, None))
        self.std_ratio_ = np.where(plain_std > 0, robust_std / np.where(plain_std > 0, plain_std, 1.0), 1.0)
        self.log_det_plain_ = _log_det(covariance)
        self.log_det_robust_ = _log_det(self.covariance_)
        self.log_generalized_variance_ratio_ = self.log_det_robust_ - self.log_det_plain_
        self.relative_frobenius_ = float(
            np.linalg.norm(self.covariance_ - covariance) / max(float(np.linalg.norm(covariance)), 1e-300)
        )
        precision, _ = precision_matrix(covariance)
        shift = self.location_ - mean
        self.mean_shift_mahalanobis_ = float(math.sqrt(max(float(shift @ precision @ shift), 0.0)))
        return self


# ----------------------------------------------------------------------------- slices


def _violations(chunk: np.ndarray, b: float) -> tuple[np.ndarray, np.ndarray]:
    outside = np.abs(chunk) > b
    return outside, outside.sum(axis=1)


def slice_mask(z: np.ndarray, plane: tuple[int, int], b: float, chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
    """Boolean (n,): True where |z_j| <= b for every component j outside the plane (j1, j2) (a flat cuboid)."""
    view = _as_view(z)
    j1, j2 = check_plane(plane, view.dim)
    b = _check_b(b)
    parts = []
    for chunk in view.chunks(_check_positive_int(chunk_size, "chunk_size")):
        outside, count = _violations(chunk, b)
        parts.append(count - outside[:, j1] - outside[:, j2] == 0)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def slice_fraction(z: np.ndarray, plane: tuple[int, int], b: float, chunk_size: int = DEFAULT_CHUNK) -> float:
    """Fraction of the points inside the flat cuboid of `slice_mask`."""
    mask = slice_mask(z, plane, b, chunk_size)
    return float(mask.mean()) if len(mask) else 0.0


def slice_counts(
    z: np.ndarray,
    planes: Sequence[tuple[int, int]],
    b_values: Sequence[float],
    chunk_size: int = DEFAULT_CHUNK,
    keep_indices: int = 0,
    progress: bool = False,
) -> tuple[np.ndarray, list[list[np.ndarray]]]:
    """Counts (len(b_values), len(planes)) of points in every slice, in one pass.

    With keep_indices > 0 also returns, per b and plane, up to that many row positions inside the slice.
    """
    view = _as_view(z)
    planes = [check_plane(p, view.dim) for p in planes]
    b_values = [_check_b(b) for b in b_values]
    counts = np.zeros((len(b_values), len(planes)), dtype=np.int64)
    kept: list[list[list[np.ndarray]]] = [[[] for _ in planes] for _ in b_values]
    seen = 0
    for chunk in view.chunks(_check_positive_int(chunk_size, "chunk_size"), "slices", progress):
        for bi, b in enumerate(b_values):
            outside, count = _violations(chunk, b)
            for pi, (j1, j2) in enumerate(planes):
                inside = count - outside[:, j1] - outside[:, j2] == 0
                counts[bi, pi] += int(inside.sum())
                if keep_indices and sum(len(k) for k in kept[bi][pi]) < keep_indices:
                    kept[bi][pi].append(seen + np.flatnonzero(inside))
        seen += len(chunk)
    indices = [[np.concatenate(k)[:keep_indices] if k else np.zeros(0, np.int64) for k in row] for row in kept]
    return counts, indices


def independent_gaussian_slice_fraction(mean: np.ndarray, std: np.ndarray, plane: tuple[int, int], b: float) -> float:
    """Slice fraction if the components were independent Gaussians: prod_j P(|x_j| <= b), j outside the plane."""
    mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    j1, j2 = check_plane(plane, len(mean))
    b = _check_b(b)
    safe = np.where(std > 0, std, 1.0)
    p = np.where(
        std > 0,
        special.ndtr((b - mean) / safe) - special.ndtr((-b - mean) / safe),
        (np.abs(mean) <= b).astype(np.float64),
    )
    p = np.delete(p, [j1, j2])
    with np.errstate(divide="ignore"):
        return float(np.exp(np.sum(np.log(np.clip(p, 0.0, 1.0)))))


# ----------------------------------------------------------------------------- default planes


def default_planes(
    dominant: Sequence[int], pairs: Sequence[tuple[int, int, float]], count: int = 4
) -> list[tuple[tuple[int, int], str]]:
    """Planes alternating between pairs of dominant components and the strongest correlations, no repeats."""
    from_dominant = [((int(dominant[i]), int(dominant[i + 1])), "dominant") for i in range(0, len(dominant) - 1, 2)]
    from_pairs = [((i, j), "correlation") for i, j, _ in pairs]
    chosen: list[tuple[tuple[int, int], str]] = []
    seen: set[frozenset[int]] = set()
    for k in range(max(len(from_dominant), len(from_pairs))):
        for source in (from_dominant, from_pairs):
            if k < len(source) and len(chosen) < count and frozenset(source[k][0]) not in seen:
                seen.add(frozenset(source[k][0]))
                chosen.append(source[k])
    return chosen


# ----------------------------------------------------------------------------- the whole analysis


class LatentAnalysis:
    """Every analysis of a z-point set in one fit; `to_dict()` gives analysis.json (without figures).

    Options (all validated before any pass over the data):
      percentiles          value interval per component (lower, upper percentile)
      offset_k, width, relative_width, combine   the dominant-component rule (see DominantComponents)
      top_pairs            number of strongest correlation pairs reported
      planes               coordinate planes [(j1, j2), ...]; None: `n_planes` from dominant components and
                           the strongest correlations
      confidences          confidence levels of the ellipses, each in (0, 1)
      radius_b             b values of the uniform [-b, b]^N comparison vectors
      slice_b              half widths of the flat cuboid slices; None: 1.5 (the seed's) and b_match
      mcd_samples, ks_samples, simulate   subsample sizes (robust core, KS test, simulated uniform radii)
    """

    def __init__(
        self,
        percentiles: Sequence[float] = (1.0, 99.0),
        offset_k: float = 1.0,
        width: float | None = None,
        relative_width: float = 1.5,
        combine: str = "or",
        top_pairs: int = 10,
        planes: Sequence[Sequence[int]] | None = None,
        n_planes: int = 4,
        confidences: Sequence[float] = (0.5, 0.9, 0.99),
        radius_b: Sequence[float] = (0.5, 1.0, 1.5, 2.0, 5.0),
        slice_b: Sequence[float] | None = None,
        mcd_samples: int = 5000,
        ks_samples: int = 20000,
        simulate: int = 20000,
        histogram_bins: int = 4096,
        chunk_size: int = DEFAULT_CHUNK,
        seed: int = 0,
        progress: bool = False,
    ):
        self.percentiles = percentiles
        self.offset_k = offset_k
        self.width = width
        self.relative_width = relative_width
        self.combine = combine
        self.top_pairs = top_pairs
        self.planes = planes
        self.n_planes = n_planes
        self.confidences = confidences
        self.radius_b = radius_b
        self.slice_b = slice_b
        self.mcd_samples = mcd_samples
        self.ks_samples = ks_samples
        self.simulate = simulate
        self.histogram_bins = histogram_bins
        self.chunk_size = chunk_size
        self.seed = seed
        self.progress = progress

    def get_params(self) -> dict:
        """The constructor's options (JSON-ready), as scikit-learn's get_params."""
        import inspect

        names = [n for n in inspect.signature(type(self).__init__).parameters if n != "self"]
        return {n: getattr(self, n) for n in names if n != "progress"}

    def validate(self, dim: int) -> None:
        """Raise LatentAtlasError for any bad option, before touching the data."""
        if dim < 2:
            raise LatentAtlasError(f"the analysis needs a latent dimension of at least 2, got {dim}")
        p = [float(v) for v in self.percentiles]
        if len(p) != 2 or not 0.0 <= p[0] < p[1] <= 100.0:
            raise LatentAtlasError(f"percentiles must be two numbers 0 <= lo < hi <= 100, got {self.percentiles!r}")
        _check_b(self.offset_k, "offset_k")
        if self.width is not None:
            _check_b(self.width, "width")
        _check_b(self.relative_width, "relative_width")
        if self.combine not in ("or", "and"):
            raise LatentAtlasError(f"combine must be 'or' or 'and', got {self.combine!r}")
        _check_positive_int(self.top_pairs, "top_pairs", 0)
        _check_positive_int(self.n_planes, "n_planes", 0)
        if self.planes is not None:
            seen = set()
            for plane in self.planes:
                key = frozenset(check_plane(plane, dim))
                if key in seen:
                    raise LatentAtlasError(f"plane {tuple(plane)} is given twice")
                seen.add(key)
        if not len(self.confidences):
            raise LatentAtlasError("give at least one confidence level")
        for c in self.confidences:
            _check_confidence(c)
        if not len(self.radius_b):
            raise LatentAtlasError("give at least one radius b")
        for b in self.radius_b:
            _check_b(b, "a radius b")
        for b in self.slice_b or ():
            _check_b(b, "a slice b")
        for name in ("mcd_samples", "ks_samples", "simulate"):
            _check_positive_int(getattr(self, name), name, 2)
        _check_positive_int(self.histogram_bins, "histogram_bins", 2)
        _check_positive_int(self.chunk_size, "chunk_size")

    @_one_blas_thread
    def fit(self, z: np.ndarray) -> LatentAnalysis:
        view = _as_view(z)
        self.validate(view.dim)
        common = {"chunk_size": self.chunk_size, "progress": self.progress}
        self.statistics_ = BulkStatistics(self.percentiles, bins=self.histogram_bins, **common).fit(view)
        s = self.statistics_
        self.distributions_ = ComponentDistributions(ks_samples=self.ks_samples, seed=self.seed, **common).fit(view, s)
        self.dominant_ = DominantComponents(self.offset_k, self.width, self.relative_width, self.combine).fit(
            statistics=s
        )
        self.correlation_ = correlation_matrix(s.cov_)
        self.pairs_ = strongest_pairs(self.correlation_, self.top_pairs)
        if self.planes is not None:
            self.planes_ = [(check_plane(p, view.dim), "user") for p in self.planes]
        else:
            self.planes_ = default_planes(
                self.dominant_.components_, strongest_pairs(self.correlation_, self.n_planes), self.n_planes
            )
        self.ellipses_ = [
            [confidence_ellipse(s.mean_[list(p)], s.cov_[np.ix_(p, p)], c) for c in self.confidences]
            for p, _ in self.planes_
        ]
        self.pca_ = PCA().fit(covariance=s.cov_)
        self.radii_ = Radii(self.radius_b, self.simulate, self.seed, **common).fit(view)
        self.mahalanobis_ = Mahalanobis(**common).fit(view, s.mean_, s.cov_)
        self._fit_origin(view)
        try:
            self.robust_ = RobustCore(self.mcd_samples, seed=self.seed).fit(view, s.mean_, s.cov_)
            self.robust_skipped_ = None
        except LatentAtlasError as exc:  # too few points for an MCD core: reported, not fatal
            self.robust_, self.robust_skipped_ = None, str(exc)
        self.slice_b_ = [float(b) for b in self.slice_b] if self.slice_b else [1.5, float(self.radii_.b_match_)]
        planes = [p for p, _ in self.planes_]
        counts, indices = (
            slice_counts(view, planes, self.slice_b_, self.chunk_size, keep_indices=5000, progress=self.progress)
            if planes
            else (np.zeros((len(self.slice_b_), 0)), [])
        )
        self.slice_counts_ = counts
        self.slice_indices_ = indices
        self.n_samples_ = view.n
        self.n_features_ = view.dim
        return self

    def _fit_origin(self, view: ZView) -> None:
        s, m = self.statistics_, self.mahalanobis_
        origin = np.zeros(view.dim)
        self.origin_sq_ = float(m.sq_distance(origin)[0])
        self.origin_percentile_ = float(m.percentile(origin)[0])
        self.origin_chi2_percentile_ = float(100.0 * stats.chi2(m.rank_).cdf(self.origin_sq_))
        centre_norm = float(np.linalg.norm(s.mean_))
        closer = 0
        for chunk in view.chunks(self.chunk_size):
            d = chunk - s.mean_
            closer += int(np.sum(np.einsum("ij,ij->i", d, d) < centre_norm**2))
        self.origin_euclidean_ = centre_norm
        self.origin_euclidean_fraction_closer_ = closer / view.n
        sq = m.sq_distances_
        dof = m.rank_
        cdf = stats.chi2(dof).cdf(sq)
        steps = np.arange(1, len(sq) + 1) / len(sq)
        self.normality_ = {
            "dof": int(dof),
            "mean_sq": float(sq.mean()),
            "expected_mean_sq": float(dof * (view.n - 1) / view.n),
            "ks_statistic": float(max((steps - cdf).max(), (cdf - steps + 1.0 / len(sq)).max())),
            "fraction_beyond_chi2_99": float(np.mean(sq > stats.chi2(dof).ppf(0.99))),
        }

    def to_dict(self) -> dict:
        s, d, dom = self.statistics_, self.distributions_, self.dominant_
        components = [
            {
                "index": j,
                "mean": s.mean_[j],
                "std": s.std_[j],
                "lower": s.lower_[j],
                "upper": s.upper_[j],
                "hwhm": d.hwhm_[j],
                "hwhm_gaussian": d.hwhm_gaussian_[j],
                "hwhm_ratio": d.hwhm_[j] / d.hwhm_gaussian_[j] if d.hwhm_gaussian_[j] > 0 else None,
                "skewness": s.skewness_[j],
                "excess_kurtosis": s.kurtosis_[j],
                "ks_statistic": d.ks_[j],
            }
            for j in range(self.n_features_)
        ]
        logdet = _log_det(s.cov_)
        eig = self.pca_.eigenvalues_
        r = self.radii_
        robust = (
            {"skipped": self.robust_skipped_}
            if self.robust_ is None
            else {
                "n_subsample": self.robust_.n_subsample_,
                "support_fraction": self.robust_.support_fraction_,
                "log_det_plain": self.robust_.log_det_plain_,
                "log_det_robust": self.robust_.log_det_robust_,
                "log_generalized_variance_ratio": self.robust_.log_generalized_variance_ratio_,
                "relative_frobenius": self.robust_.relative_frobenius_,
                "std_ratio": {
                    "min": float(self.robust_.std_ratio_.min()),
                    "median": float(np.median(self.robust_.std_ratio_)),
                    "max": float(self.robust_.std_ratio_.max()),
                },
                "mean_shift_mahalanobis": self.robust_.mean_shift_mahalanobis_,
            }
        )
        slices = []
        for bi, b in enumerate(self.slice_b_):
            for pi, (plane, _) in enumerate(self.planes_):
                count = int(self.slice_counts_[bi, pi])
                slices.append(
                    {
                        "plane": list(plane),
                        "b": b,
                        "count": count,
                        "fraction": count / self.n_samples_,
                        "independent_gaussian_fraction": independent_gaussian_slice_fraction(s.mean_, s.std_, plane, b),
                    }
                )
        return _plain(
            {
                "n_points": self.n_samples_,
                "latent_dim": self.n_features_,
                "components": components,
                "dominant": {
                    "rule": {
                        "offset_k": float(self.offset_k),
                        "width_threshold": dom.width_threshold_,
                        "width_rule": dom.width_rule_,
                        "combine": self.combine,
                    },
                    "components": dom.table(s.mean_, s.std_),
                },
                "bulk": {
                    "centre_norm": float(np.linalg.norm(s.mean_)),
                    "total_variance": float(np.trace(s.cov_)),
                    "log_generalized_variance": logdet if math.isfinite(logdet) else None,
                    "std_median": float(np.median(s.std_)),
                    "std_min": float(s.std_.min()),
                    "std_max": float(s.std_.max()),
                    "covariance_rank": self.mahalanobis_.rank_,
                    "condition_number": float(eig[0] / eig[-1]) if eig[-1] > 0 else None,
                },
                "correlations": {
                    "strongest": [{"pair": [i, j], "r": v} for i, j, v in self.pairs_],
                    "mean_abs_r": float(np.abs(self.correlation_[np.triu_indices(self.n_features_, 1)]).mean()),
                    "max_abs_r": float(abs(self.pairs_[0][2])) if self.pairs_ else None,
                },
                "planes": [
                    {
                        "plane": list(p),
                        "source": source,
                        "r": float(self.correlation_[p[0], p[1]]),
                        "ellipses": ellipses,
                    }
                    for (p, source), ellipses in zip(self.planes_, self.ellipses_)
                ],
                "pca": {
                    "explained_variance_ratio": self.pca_.explained_variance_ratio_[:32],
                    "n_components_90": self.pca_.n_components_90_,
                    "n_components_99": self.pca_.n_components_99_,
                    "participation_ratio": self.pca_.participation_ratio_,
                },
                "radii": {
                    "data": {
                        "mean": r.mean_,
                        "std": r.std_,
                        "min": r.min_,
                        "max": r.max_,
                        "p1": float(np.percentile(r.radii_, 1)),
                        "p50": float(np.median(r.radii_)),
                        "p99": float(np.percentile(r.radii_, 99)),
                    },
                    "uniform": [{k: v for k, v in row.items() if k != "simulated_radii"} for row in r.uniform_],
                    "b_match": r.b_match_,
                    "b_match_approx": r.b_match_approx_,
                    "b_overlap": [r.b_overlap_[0], r.b_overlap_[1] if math.isfinite(r.b_overlap_[1]) else None],
                },
                "origin": {
                    "mahalanobis": math.sqrt(self.origin_sq_),
                    "mahalanobis_sq": self.origin_sq_,
                    "percentile": self.origin_percentile_,
                    "fraction_closer": self.origin_percentile_ / 100.0,
                    "chi2_percentile": self.origin_chi2_percentile_,
                    "euclidean_distance": self.origin_euclidean_,
                    "euclidean_fraction_closer": self.origin_euclidean_fraction_closer_,
                },
                "normality": self.normality_,
                "robust_core": robust,
                "slices": slices,
            }
        )


def _plain(value: Any) -> Any:
    """numpy scalars and arrays to Python numbers and lists; NaN and infinities to None (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


# ----------------------------------------------------------------------------- analyze_run: files and figures

ARRAY_FILES = {
    "mean": "mean.npy",
    "covariance": "covariance.npy",
    "correlation": "correlation.npy",
    "pca_eigenvalues": "pca_eigenvalues.npy",
    "pca_components": "pca_components.npy",
    "robust_mean": "robust_mean.npy",
    "robust_covariance": "robust_covariance.npy",
    "histogram_counts": "histogram_counts.npy",
    "histogram_edges": "histogram_edges.npy",
}


def _save_arrays(analysis: LatentAnalysis, out: Path) -> dict:
    from latentatlas.io import save_npy

    s = analysis.statistics_
    arrays = {
        "mean": s.mean_,
        "covariance": s.cov_,
        "correlation": analysis.correlation_,
        "pca_eigenvalues": analysis.pca_.eigenvalues_,
        "pca_components": analysis.pca_.components_,
        "histogram_counts": s.hist_counts_,
        "histogram_edges": s.hist_edges_,
    }
    if analysis.robust_ is not None:
        arrays["robust_mean"] = analysis.robust_.location_
        arrays["robust_covariance"] = analysis.robust_.covariance_
    for name, array in arrays.items():
        save_npy(out / ARRAY_FILES[name], array)
    return {name: ARRAY_FILES[name] for name in arrays}


def _histogram_components(analysis: LatentAnalysis, count: int) -> list[int]:
    """Dominant components first, then the least Gaussian (largest KS distance)."""
    chosen = [int(j) for j in analysis.dominant_.components_[:count]]
    for j in np.argsort(-analysis.distributions_.ks_, kind="stable"):
        if len(chosen) >= count:
            break
        if int(j) not in chosen:
            chosen.append(int(j))
    return chosen


def _write_figures(
    analysis: LatentAnalysis,
    view: ZView,
    out: Path,
    projection_points: int,
    artificial_points: int,
    hist_components: int,
    seed: int,
) -> list[dict]:
    from latentatlas import plots

    s, d, dom = analysis.statistics_, analysis.distributions_, analysis.dominant_
    figures: list[dict] = []

    def save(fig, name: str, caption: str) -> None:
        plots.save_figure(fig, out / name)
        figures.append({"file": name, "caption": caption})

    shown = _histogram_components(analysis, min(hist_components, analysis.n_features_))
    save(
        plots.plot_histogram_grid(shown, d.edges_, d.counts_, s.mean_, s.std_, d.hwhm_, highlight=dom.components_),
        "histograms.png",
        f"Histograms of {len(shown)} components (dominant first, red titles; then the least Gaussian) "
        "with their fitted Gaussians; yellow line: 0.",
    )
    save(
        plots.plot_component_summary(s.mean_, s.std_, dom.components_),
        "components.png",
        f"Mean ± std of all {analysis.n_features_} components; dominant components in red.",
    )
    save(
        plots.plot_correlation_heatmap(analysis.correlation_),
        "correlation.png",
        "Pearson correlation matrix of the components.",
    )
    save(
        plots.plot_spectrum(
            analysis.pca_.explained_variance_ratio_, analysis.pca_.n_components_90_, analysis.pca_.n_components_99_
        ),
        "pca_spectrum.png",
        f"PCA of the bulk: explained variance per component and cumulative "
        f"({analysis.pca_.n_components_90_} components for 90 %, {analysis.pca_.n_components_99_} for 99 %).",
    )
    radii = analysis.radii_
    save(
        plots.plot_radii(radii.radii_, radii.uniform_, b_match=radii.b_match_),
        "radii.png",
        f"Radii |z| of the z-points against uniform [-b, b]^N vectors; b_match = {analysis.radii_.b_match_:.3f}.",
    )
    save(
        plots.plot_mahalanobis(analysis.mahalanobis_.sq_distances_, analysis.mahalanobis_.rank_, analysis.origin_sq_),
        "mahalanobis.png",
        f"Squared Mahalanobis distances against χ² with {analysis.mahalanobis_.rank_} dof (histogram, Q-Q plot); "
        f"the origin lies at the {analysis.origin_percentile_:.1f}th percentile.",
    )
    if not analysis.planes_:
        return figures
    real = view.subsample(min(projection_points, view.n), seed).astype(np.float32)
    b_art = analysis.radii_.b_match_
    artificial = uniform_box(artificial_points, analysis.n_features_, b_art, seed=seed) if artificial_points else None
    path = np.linspace(0.0, 1.0, 8)[:, None] * s.mean_[None, :]
    planes = [
        {"plane": p, "ellipses": e, "subtitle": f"{source}, r = {analysis.correlation_[p[0], p[1]]:.2f}"}
        for (p, source), e in zip(analysis.planes_, analysis.ellipses_)
    ]
    save(
        plots.plot_projection_grid(planes, real, s.mean_, artificial, path),
        "projections.png",
        f"Projections of {len(real)} z-points (blue) onto {len(planes)} coordinate planes with confidence ellipses "
        f"({', '.join(f'{c:g}' for c in analysis.confidences)}), origin (yellow), centre (orange), path origin→centre "
        f"(black) and {artificial_points} uniform vectors at b_match = {b_art:.2f} (red).",
    )
    b_slice = analysis.slice_b_[0]
    # as in the seed, the slice is populated with uniform vectors from the cube [-b, b]^N it contains
    in_cube = uniform_box(artificial_points, analysis.n_features_, b_slice, seed=seed) if artificial_points else None
    sliced = []
    for pi, plane in enumerate(planes):
        inside = analysis.slice_indices_[0][pi]
        points = (
            view.take(inside).astype(np.float32) if len(inside) else np.zeros((0, analysis.n_features_), np.float32)
        )
        count = int(analysis.slice_counts_[0, pi])
        sliced.append(
            {
                **plane,
                "z": points,
                "artificial": in_cube,
                "subtitle": f"slice |z_j| ≤ {b_slice:g}: {count} of {analysis.n_samples_} points",
            }
        )
    save(
        plots.plot_projection_grid(sliced, real, s.mean_, None, None),
        "slices.png",
        f"Only the z-points inside the flat cuboid |z_j| ≤ {b_slice:g} for every j outside the plane (blue), "
        f"{artificial_points} uniform vectors from [-{b_slice:g}, {b_slice:g}]^N (red), and the bulk's ellipses.",
    )
    return figures


def analyze_run(
    run: Any,
    subset: str = "train",
    projection_points: int = 5000,
    artificial_points: int = 200,
    hist_components: int = 24,
    figures: bool = True,
    **options: Any,
) -> dict:
    """Analyse a run's z-points; write RUN/analysis/analysis.json, the .npy arrays and figures; return the dict.

    `options` go to LatentAnalysis (see its docstring). Everything is validated before anything is written.
    """
    from latentatlas.io import write_json
    from latentatlas.store import Run

    if not isinstance(run, Run):
        run = Run(run)
    if subset not in ("all", "train", "val"):
        raise LatentAtlasError(f"subset must be all, train or val, got {subset!r}")
    for name, value in (("projection_points", projection_points), ("hist_components", hist_components)):
        _check_positive_int(value, name)
    _check_positive_int(artificial_points, "artificial_points", 0)
    z = run.zpoints()
    rows = None
    if subset != "all":
        labels = run.metadata()["subset"].to_numpy()
        if len(labels) != len(z):
            raise LatentAtlasError(f"run {run.path}: zpoints.parquet has {len(labels)} rows for {len(z)} z-points")
        rows = labels == subset
        if not rows.any():
            raise LatentAtlasError(f"run {run.path} has no z-points in subset {subset!r}; try --subset all")
    view = ZView(z, rows)
    unknown = sorted(set(options) - set(LatentAnalysis().get_params()) - {"progress"})
    if unknown:
        raise LatentAtlasError(f"unknown analysis option(s): {', '.join(unknown)}")
    analysis = LatentAnalysis(**options)
    analysis.validate(view.dim)
    analysis.fit(view)
    out = Path(run.path) / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    result = {"schema": SCHEMA, "run": str(run.path), "subset": subset}
    result.update(analysis.to_dict())
    result["options"] = {
        **analysis.get_params(),
        "projection_points": projection_points,
        "artificial_points": artificial_points,
        "hist_components": hist_components,
    }
    result["arrays"] = _save_arrays(analysis, out)
    result["figures"] = (
        _write_figures(analysis, view, out, projection_points, artificial_points, hist_components, int(analysis.seed))
        if figures
        else []
    )
    write_json(out / "analysis.json", result)
    return result
