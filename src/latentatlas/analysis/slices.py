"""Flat slices |z_j| <= b outside a coordinate plane, counted chunkwise (seed part V).

Section "slices"; no finding of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special

from latentatlas import checks
from latentatlas.analysis.parts import Context
from latentatlas.findings import Finding
from latentatlas.stats import DEFAULT_CHUNK, ZView, as_view

# the seed's slice half width; the analysis adds b_match (the uniform cube with the points' mean radius)
SEED_SLICE_B = 1.5
# row positions kept per slice for the figures
KEPT_INDICES = 5000


def _violations(chunk: np.ndarray, b: float) -> tuple[np.ndarray, np.ndarray]:
    outside = np.abs(chunk) > b
    return outside, outside.sum(axis=1)


def slice_mask(z: np.ndarray | ZView, plane: tuple[int, int], b: float, chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
    """Boolean (n,): True where |z_j| <= b for every component j outside the plane (j1, j2) (a flat cuboid)."""
    view = as_view(z)
    j1, j2 = checks.plane(plane, view.dim)
    b = checks.positive_number(b, "b")
    parts = []
    for chunk in view.chunks(checks.positive_int(chunk_size, "chunk_size")):
        outside, count = _violations(chunk, b)
        parts.append(count - outside[:, j1] - outside[:, j2] == 0)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def slice_fraction(z: np.ndarray | ZView, plane: tuple[int, int], b: float, chunk_size: int = DEFAULT_CHUNK) -> float:
    """Fraction of the points inside the flat cuboid of `slice_mask`."""
    mask = slice_mask(z, plane, b, chunk_size)
    return float(mask.mean()) if len(mask) else 0.0


def slice_counts(
    z: np.ndarray | ZView,
    planes: Sequence[tuple[int, int]],
    b_values: Sequence[float],
    chunk_size: int = DEFAULT_CHUNK,
    keep_indices: int = 0,
    progress: bool = False,
) -> tuple[np.ndarray, list[list[np.ndarray]]]:
    """Counts (len(b_values), len(planes)) of points in every slice, in one pass.

    With keep_indices > 0 also returns, per b and plane, up to that many row positions inside the slice.
    """
    view = as_view(z)
    planes = [checks.plane(p, view.dim) for p in planes]
    b_values = [checks.positive_number(b, "b") for b in b_values]
    counts = np.zeros((len(b_values), len(planes)), dtype=np.int64)
    kept: list[list[list[np.ndarray]]] = [[[] for _ in planes] for _ in b_values]
    seen = 0
    for chunk in view.chunks(checks.positive_int(chunk_size, "chunk_size"), "slices", progress):
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
    j1, j2 = checks.plane(plane, len(mean))
    b = checks.positive_number(b, "b")
    safe = np.where(std > 0, std, 1.0)
    p = np.where(
        std > 0,
        special.ndtr((b - mean) / safe) - special.ndtr((-b - mean) / safe),
        (np.abs(mean) <= b).astype(np.float64),
    )
    p = np.delete(p, [j1, j2])
    with np.errstate(divide="ignore"):
        return float(np.exp(np.sum(np.log(np.clip(p, 0.0, 1.0)))))


class Slices:
    """Counts of the points in the flat slice of every plane and half width, against independent Gaussians.

    Attributes
    ----------
    b_ : list of float
    planes_ : list of (j1, j2)
    counts_ : ndarray (len(b_), len(planes_))
    indices_ : list of list of ndarray
        Up to `keep_indices` row positions per slice (for the figures).
    n_samples_ : int
    mean_, std_ : ndarray (N,)
        The components' means and standard deviations (for the independent-Gaussian fractions).
    """

    def __init__(self, *, keep_indices: int = KEPT_INDICES, chunk_size: int = DEFAULT_CHUNK, progress: bool = False):
        self.keep_indices = keep_indices
        self.chunk_size = chunk_size
        self.progress = progress

    def fit(
        self,
        z: np.ndarray | ZView,
        planes: Sequence[tuple[int, int]],
        b_values: Sequence[float],
        mean: np.ndarray,
        std: np.ndarray,
    ) -> Slices:
        view = as_view(z)
        self.b_ = [float(b) for b in b_values]
        self.planes_ = [checks.plane(p, view.dim) for p in planes]
        self.counts_, self.indices_ = (
            slice_counts(view, self.planes_, self.b_, self.chunk_size, self.keep_indices, self.progress)
            if self.planes_
            else (np.zeros((len(self.b_), 0)), [])
        )
        self.n_samples_ = view.n
        self.mean_, self.std_ = mean, std
        return self

    @classmethod
    def from_context(cls, context: Context) -> Slices:
        given = context.options["slice_b"]
        b = [float(v) for v in given] if given else [SEED_SLICE_B, float(context.part("radii").b_match_)]
        planes = [p for p, _ in context.part("correlations").planes_]
        s = context.statistics
        return cls(**context.common).fit(context.view, planes, b, s.mean_, s.std_)

    def to_dict(self) -> dict:
        """The analysis.json "slices" section: one row per half width and plane."""
        rows = []
        for bi, b in enumerate(self.b_):
            for pi, plane in enumerate(self.planes_):
                count = int(self.counts_[bi, pi])
                rows.append(
                    {
                        "plane": list(plane),
                        "b": b,
                        "count": count,
                        "fraction": count / self.n_samples_,
                        "independent_gaussian_fraction": independent_gaussian_slice_fraction(
                            self.mean_, self.std_, plane, b
                        ),
                    }
                )
        return {"slices": rows}

    def findings(self) -> list[Finding]:
        return []
