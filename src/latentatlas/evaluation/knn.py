"""Exact k-NN scores: improved precision and recall (Kynkäänniemi et al. 2019), density and coverage
(Naeem et al. 2020).

The ball of a point has the radius of the distance to its k-th nearest neighbour in its own set, the
point itself excluded; membership is strict (distance < radius), as in the authors' `prdc` code.

Exact and fast: squared distances are float32 matrix products in blocks of `chunk_size` rows (at most
CPU_BLOCK on the CPU), one product per block, [-2a, ||a||², 1] · [b, 1, ||b||²] (on the points centred on
the real set's mean and scaled by a power of two, which keeps the norms and so the rounding small, and
float32 clear of overflow and underflow). The float32 values only
filter; every decision that rounding could change is taken in float64 on the direct differences
||a - b||², using a rigorous bound on the float32 error:

* radii: each pair of blocks of a set is computed once and feeds both rows' running top-(k + 9); an
  entry enters a row's list only when it is below the row's current last value (a comparison, no
  sort). The k-th radius is then computed in float64 over the few candidates whose float32 value lies
  within twice the error bound of the float32 k-th value; a point whose list cannot prove that no
  left-out point comes closer is rescanned over the whole set in float64;
* memberships: the sets are ordered by radius, so a block pair has one float32 threshold (its largest
  radius plus the bound); only entries under it are looked at, and only those within the bound of a
  radius are recomputed in float64.

The scores are therefore exactly those of a full float64 computation of ||a - b||², while memory stays
a few `chunk_size`² float32 blocks plus the n x (k + 9) candidate lists. The same code runs on a GPU.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.model import default_device
from latentatlas.progress import Progress

KNN_SCORES = ("precision", "recall", "density", "coverage")
EXTRA_CANDIDATES = 8  # float32 candidates kept beyond the k + 1 needed, so the float64 radius is rarely in doubt
CPU_BLOCK = 2048  # largest block on the CPU (16 MB float32): as fast as 1024 on one thread, faster on two
_UNIT_ROUNDOFF = 2.0**-24  # float32
_SMALLEST = 2.0**-149  # float32's smallest subnormal: the absolute error an underflow can add per operation


def check_k(k: Any, sizes: dict[str, int]) -> int:
    """k >= 1, and every named set has at least k + 1 points (a k-NN ball excludes the point itself)."""
    k = checks.positive_int(k, "k")
    for name, size in sizes.items():
        if size < k + 1:
            raise LatentAtlasError(f"{name} has {size} points; k-NN balls with k={k} need at least k+1 = {k + 1}")
    return k


def _point_pair(real: Any, fake: Any, real_name: str, fake_name: str) -> tuple[np.ndarray, np.ndarray]:
    real = checks.points(real, min_rows=1, name=real_name)
    fake = checks.points(fake, min_rows=1, name=fake_name)
    if real.shape[1] != fake.shape[1]:
        raise LatentAtlasError(f"{real_name} and {fake_name} differ in dimension: {real.shape[1]} vs {fake.shape[1]}")
    return real, fake


@contextmanager
def _exact_float32_matmul() -> Iterator[None]:
    """TF32 / bf16 matmul would void the rounding bound: force full float32 products inside."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


@dataclass
class _Set:
    """A point set on the device: exact float64 rows and the float32 factors of its block products."""

    exact: torch.Tensor  # (n, d) as given (float32 or float64: upcast to float64 exactly where used)
    left: torch.Tensor  # (n, d + 2) float32: [-2x, ||x||², 1] of x = (point - centre) * scale, rounded
    right: torch.Tensor  # (n, d + 2) float32: [x, 1, ||x||²]
    norms: torch.Tensor  # (n,) float64: ||x||² of the rounded x (for the error bound)
    scale2: float  # scale², exact: float32 values approximate scale² ||a - b||²
    block: int

    @classmethod
    def of(cls, points: np.ndarray, centre: torch.Tensor, scale: float, block: int, device: torch.device) -> _Set:
        points = np.asarray(points)
        if points.dtype not in (np.float32, np.float64):
            points = points.astype(np.float64)
        exact = torch.as_tensor(points, device=device)  # on the CPU the caller's memory itself, no copy
        n, d = exact.shape
        left = torch.empty((n, d + 2), dtype=torch.float32, device=device)
        right = torch.empty_like(left)
        norms = torch.empty(n, dtype=torch.float64, device=device)
        for start in range(0, n, block):  # in blocks: no n x d temporaries
            rows = slice(start, min(start + block, n))
            low = ((exact[rows].double() - centre) * scale).float()
            low_norms = (low * low).sum(dim=1)
            left[rows, :d], left[rows, d], left[rows, d + 1] = -2.0 * low, low_norms, 1.0
            right[rows, :d], right[rows, d], right[rows, d + 1] = low, 1.0, low_norms
            norms[rows] = low.double().square().sum(dim=1)
        return cls(exact, left, right, norms, scale * scale, block)

    @property
    def n(self) -> int:
        return len(self.exact)

    def slices(self) -> list[slice]:
        return [slice(start, min(start + self.block, self.n)) for start in range(0, self.n, self.block)]

    def margins(self, rows: torch.Tensor, other: _Set, cols: torch.Tensor) -> torch.Tensor:
        """Bound on |float32 block value - scale² * float64 ||a - b||²| for paired rows and cols (float64)."""
        return _rounding_bound(self.left.shape[1]) * (self.norms[rows] + other.norms[cols]) + _absolute_bound(self)


def _rounding_bound(length: int) -> float:
    """C such that |float32 [-2a, ||a||², 1]·[b, 1, ||b||²]  -  exact ||a - b||²| <= C (||a||² + ||b||²).

    The product of length d + 2 errs by at most gamma_(d+2) times the sum of its absolute terms,
    <= 2 (||a||² + ||b||²); the float32 norms by gamma_d, the float32 inputs by about 4u of the same
    (Higham, Accuracy and Stability, §3.1): together below 3 gamma_(d+2) + 5u <= 4 gamma_(d+4), and the
    float64 reference's own rounding is far below the remaining gamma.
    """
    gamma = (length + 2) * _UNIT_ROUNDOFF / (1 - (length + 2) * _UNIT_ROUNDOFF)
    return 4.0 * gamma


def _absolute_bound(points: _Set) -> float:
    """What underflow (gradual, in float32) can add to a block value: one smallest subnormal per operation."""
    return 8.0 * points.left.shape[1] * _SMALLEST


def _products(a: _Set, rows: slice, b: _Set, cols: slice) -> torch.Tensor:
    """float32 scale² ||a - b||² of a block as one matrix product (rows of a, cols of b)."""
    return a.left[rows] @ b.right[cols].T


def _exact_sq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """float64 ||a - b||² of paired rows (broadcasting over leading dimensions); float32 rows upcast exactly."""
    return (a.double() - b.double()).square().sum(dim=-1)


def _exact_pairs(a: _Set, i: torch.Tensor, b: _Set, j: torch.Tensor) -> torch.Tensor:
    """float64 ||a[i] - b[j]||² of paired indices, a block's worth of pairs at a time."""
    step = a.block
    parts = [
        _exact_sq(a.exact[i[start : start + step]], b.exact[j[start : start + step]])
        for start in range(0, len(i), step)
    ]
    return torch.cat(parts) if parts else torch.empty(0, dtype=torch.float64, device=a.exact.device)


def _true_entries(mask: torch.Tensor) -> torch.Tensor:
    """torch.nonzero of a sparse 2-D bool mask (row-major order), faster: 8 entries at a time first."""
    if mask.numel() % 8 or not mask.is_contiguous():
        return torch.nonzero(mask)
    words = torch.nonzero(mask.view(-1).view(torch.int64)).flatten()
    within = torch.nonzero(mask.view(-1, 8)[words])
    flat = words[within[:, 0]] * 8 + within[:, 1]
    return torch.stack([flat // mask.shape[1], flat % mask.shape[1]], dim=1)


def _merge(
    values: torch.Tensor, indices: torch.Tensor, rows: slice, cols: slice, block: torch.Tensor, hits: torch.Tensor
) -> None:
    """Add the entries of `block` (rows x cols) at `hits` (local (row, col), rows ascending) to the rows' lists."""
    if len(hits) == 0:
        return
    i, j = hits.unbind(1)
    counts = torch.bincount(i, minlength=block.shape[0])
    width = int(counts.max())
    keep = values.shape[1]
    rank = torch.arange(len(i), device=i.device) - (counts.cumsum(0) - counts)[i]
    joined = torch.full((block.shape[0], keep + width), math.inf, dtype=values.dtype, device=values.device)
    joined_indices = torch.zeros(joined.shape, dtype=indices.dtype, device=indices.device)
    joined[:, :keep], joined_indices[:, :keep] = values[rows], indices[rows]
    joined[i, keep + rank] = block[i, j]
    joined_indices[i, keep + rank] = j + cols.start
    best = joined.topk(keep, dim=1, largest=False)
    values[rows], indices[rows] = best.values, joined_indices.gather(1, best.indices)


def _candidates(points: _Set, keep: int, progress: bool, desc: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per point, the `keep` smallest float32 values (ascending; itself at -inf) and their indices."""
    n, dev = points.n, points.left.device
    values = torch.full((n, keep), math.inf, dtype=torch.float32, device=dev)
    indices = torch.zeros((n, keep), dtype=torch.int64, device=dev)
    slices = points.slices()
    for rows in slices:  # each block with itself first: every row starts with a full list
        d2 = _products(points, rows, points, rows)
        d2.fill_diagonal_(-math.inf)
        best = d2.topk(min(keep, d2.shape[1]), dim=1, largest=False)
        values[rows, : best.values.shape[1]] = best.values
        indices[rows, : best.values.shape[1]] = best.indices + rows.start
    # Distances are symmetric: every other pair of blocks is computed once and feeds both rows' lists.
    # A bar on a terminal only: the blocks take seconds at most, their lines would only crowd a log.
    with Progress(len(slices), desc, "block", enabled=progress, lines=False) as bar:
        for position, rows in enumerate(slices):
            for cols in slices[position + 1 :]:
                d2 = _products(points, rows, points, cols)
                _merge(values, indices, rows, cols, d2, _true_entries(d2 < values[rows, -1:]))
                hits = _true_entries(d2 < values[cols, -1]).flip(1)  # (col, row) pairs of d2.T
                _merge(values, indices, cols, rows, d2.T, hits[torch.argsort(hits[:, 0], stable=True)])
            bar.update(1)
    return values, indices


def _kth_sq_radii(points: _Set, k: int, progress: bool = False, desc: str = "k-NN radii") -> torch.Tensor:
    """Exact float64 squared distance of each point to its k-th nearest neighbour in the set, itself excluded."""
    n = points.n
    keep = min(k + 1 + EXTRA_CANDIDATES, n)
    values, indices = _candidates(points, keep, progress, desc)
    # A kept value v is within E of its exact (scaled) value, E = the bound for the row's norm and the
    # largest norm; so the exact radius R lies within E of v_k, every candidate under v_k - 2E is closer
    # than R, and R is found among those within 2E of v_k. A left-out point had v >= the row's last
    # value: it cannot undercut R when that value exceeds v_k + 2E (or when nothing was left out).
    every = torch.arange(n, device=values.device)
    bound = points.margins(every, points, torch.full_like(every, int(points.norms.argmax())))
    v = values.double()
    low, high = v[:, k] - 2 * bound, v[:, k] + 2 * bound
    closer = (v < low[:, None]).sum(dim=1)
    rows, slots = torch.nonzero((v >= low[:, None]) & (v <= high[:, None])).unbind(1)  # rows ascending
    exact = _exact_pairs(points, rows, points, indices[rows, slots])
    order = torch.argsort(exact, stable=True)
    order = order[torch.argsort(rows[order], stable=True)]  # by row, then by exact value
    rows, exact = rows[order], exact[order]
    counts = torch.bincount(rows, minlength=n)
    rank = torch.arange(len(rows), device=rows.device) - (counts.cumsum(0) - counts)[rows]
    pick = rank == (k - closer)[rows]  # the (k + 1 - closer)-th smallest exact value of the row's window
    radii = torch.empty(n, dtype=torch.float64, device=values.device)
    radii[rows[pick]] = exact[pick]
    if keep < n:
        doubtful = torch.nonzero(v[:, -1] <= high).flatten()
        if len(doubtful):
            radii[doubtful] = _rescan(points, doubtful, k)
    return radii


def _rescan(points: _Set, which: torch.Tensor, k: int) -> torch.Tensor:
    """float64 k-th neighbour squared distances of the points `which` over the whole set, in blocks."""
    step = max(1, 2**22 // (points.block * points.exact.shape[1]))  # rows at a time: a (step, block, d) float64 block
    radii = []
    for start in range(0, len(which), step):
        rows = points.exact[which[start : start + step], None, :]
        exact = torch.cat([_exact_sq(points.exact[cols], rows) for cols in points.slices()], dim=1)
        radii.append(exact.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def _cross_pass(
    real: _Set, real_r2: torch.Tensor, fake: _Set, fake_r2: torch.Tensor | None, progress: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per fake: how many real balls hold it; per real: a fake ball holds it; per real: its ball holds a fake."""
    dev = real_r2.device
    # Ordered by radius, the points of a block have similar radii: one threshold per block pair is tight.
    # Only the float32 factors are reordered; i and j below are the points' own indices.
    real_order = torch.argsort(real_r2)
    fake_order = torch.argsort(fake_r2) if fake_r2 is not None else torch.arange(fake.n, device=dev)
    left, right = fake.left[fake_order], real.right[real_order]
    # float32 values approximate scale² ||a - b||²; scaling the float64 radii by scale² (a power of two) is exact.
    real_s2 = real_r2 * real.scale2
    fake_s2 = fake_r2 * fake.scale2 if fake_r2 is not None else None
    widest = _rounding_bound(real.left.shape[1]) * float(real.norms.max() + fake.norms.max()) + _absolute_bound(real)
    real_limits = [float(real_s2[real_order[cols]].max()) + widest for cols in real.slices()]
    fake_limits = [
        -math.inf if fake_s2 is None else float(fake_s2[fake_order[rows]].max()) + widest for rows in fake.slices()
    ]

    balls_per_fake = torch.zeros(fake.n, dtype=torch.int64, device=dev)
    real_in_fake_ball = torch.zeros(real.n, dtype=torch.bool, device=dev)
    real_ball_hit = torch.zeros(real.n, dtype=torch.bool, device=dev)
    with Progress(len(fake_limits), "k-NN cross", "block", enabled=progress, lines=False) as bar:
        for rows, fake_limit in zip(fake.slices(), fake_limits):
            for cols, real_limit in zip(real.slices(), real_limits):
                d2 = left[rows] @ right[cols].T  # (fakes, reals), float32 scale² ||a - b||²
                limit = float(np.nextafter(np.float32(max(real_limit, fake_limit)), np.float32(np.inf)))
                i, j = _true_entries(d2 < limit).unbind(1)
                if len(i) == 0:
                    continue
                value = d2[i, j].double()
                i, j = fake_order[i + rows.start], real_order[j + cols.start]
                margin = fake.margins(i, real, j)
                in_real, doubt = _decide(value, real_s2[j], margin)
                in_fake = torch.zeros_like(in_real)
                if fake_s2 is not None:
                    in_fake, fake_doubt = _decide(value, fake_s2[i], margin)
                    doubt |= fake_doubt
                if bool(doubt.any()):
                    at = torch.nonzero(doubt).flatten()
                    exact = _exact_pairs(fake, i[at], real, j[at])
                    in_real[at] = exact < real_r2[j[at]]
                    if fake_r2 is not None:
                        in_fake[at] = exact < fake_r2[i[at]]
                balls_per_fake.index_add_(0, i[in_real], torch.ones_like(i[in_real]))
                real_ball_hit[j[in_real]] = True
                real_in_fake_ball[j[in_fake]] = True
            bar.update(1)
    return balls_per_fake, real_in_fake_ball, real_ball_hit


def _decide(value: torch.Tensor, radius: torch.Tensor, margin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(value < radius for sure, in doubt): the float32 value is within `margin` of the exact one (float64 here)."""
    inside = value < radius - margin
    return inside, ~inside & (value <= radius + margin)


def _sets(real: np.ndarray, others: list[np.ndarray], chunk_size: Any, device: torch.device | str | None) -> list[_Set]:
    """The sets centred on the real mean and scaled by one power of two (largest coordinate in [0.5, 1))."""
    chunk_size = checks.positive_int(chunk_size, "chunk size")
    dev = default_device() if device is None else torch.device(device)
    block = min(chunk_size, CPU_BLOCK) if dev.type == "cpu" else chunk_size
    centre = np.mean(real, axis=0, dtype=np.float64)
    spread = max(
        float(np.abs(points[start : start + block] - centre).max())
        for points in (real, *others)
        for start in range(0, len(points), block)
    )
    # 2^±500 at most: scale² stays finite (beyond that, float64 itself under- or overflows on the squares)
    scale = 2.0 ** min(500, max(-500, -math.frexp(spread)[1])) if 0 < spread < math.inf else 1.0
    centre_t = torch.as_tensor(centre, device=dev)
    return [_Set.of(points, centre_t, scale, block, dev) for points in (real, *others)]


def kth_neighbour_distances(
    points: np.ndarray, k: int = 5, chunk_size: int = 4096, device: torch.device | str | None = None
) -> np.ndarray:
    """Euclidean distance of each point to its k-th nearest neighbour among the others (float64, exact)."""
    points = checks.points(points, min_rows=1, name="points")
    k = check_k(k, {"points": len(points)})
    with torch.inference_mode(), _exact_float32_matmul():
        (blocks,) = _sets(points, [], chunk_size, device)
        return _kth_sq_radii(blocks, k).sqrt().cpu().numpy()


def nearest_distances(
    points: np.ndarray, reference: np.ndarray, chunk_size: int = 4096, device: torch.device | str | None = None
) -> np.ndarray:
    """Euclidean distance of each point to its nearest reference point (float64, exact like the k-NN radii).

    Per block of points: the float32 block products give each point's smallest value v over the reference;
    the exact nearest value lies within the rounding bound E of v, so only pairs whose float32 value is at
    most v + 2E are recomputed in float64, and the smallest of those is the answer."""
    reference, points = _point_pair(reference, points, "reference points", "points")
    with torch.inference_mode(), _exact_float32_matmul():
        ref, pts = _sets(reference, [points], chunk_size, device)
        widest = torch.full((pts.n,), int(ref.norms.argmax()), device=ref.norms.device)
        bound = pts.margins(torch.arange(pts.n, device=ref.norms.device), ref, widest)
        nearest = torch.empty(pts.n, dtype=torch.float64, device=ref.norms.device)
        for rows in pts.slices():
            low = torch.stack([_products(pts, rows, ref, cols).min(dim=1).values for cols in ref.slices()]).amin(0)
            limit = (low.double() + 2 * bound[rows]).float()
            limit = torch.nextafter(limit, torch.full_like(limit, math.inf))[:, None]  # rounded up: never too tight
            best = torch.full((rows.stop - rows.start,), math.inf, dtype=torch.float64, device=nearest.device)
            for cols in ref.slices():
                i, j = _true_entries(_products(pts, rows, ref, cols) <= limit).unbind(1)
                exact = _exact_pairs(pts, i + rows.start, ref, j + cols.start)
                best.scatter_reduce_(0, i, exact, reduce="amin")
            nearest[rows] = best
        return nearest.sqrt().cpu().numpy()


@dataclass(frozen=True)
class KnnItems:
    """The per-item values the four scores average (what a bootstrap over items resamples).

    Attributes
    ----------
    balls_per_fake : ndarray of int64, (M,)
        Per fake point: how many real k-NN balls hold it (precision: > 0; density: / k).
    real_in_fake_ball : ndarray of bool, (R,)
        Per real point: some fake point's ball holds it (recall).
    real_ball_hit : ndarray of bool, (R,)
        Per real point: its ball holds some fake point (coverage).
    k : int
    """

    balls_per_fake: np.ndarray
    real_in_fake_ball: np.ndarray
    real_ball_hit: np.ndarray
    k: int

    def scores(self) -> dict[str, float]:
        return {
            "precision": float((self.balls_per_fake > 0).mean()),
            "recall": float(self.real_in_fake_ball.mean()),
            "density": float(self.balls_per_fake.sum() / (self.k * len(self.balls_per_fake))),
            "coverage": float(self.real_ball_hit.mean()),
        }


def knn_items(
    real: np.ndarray,
    fake: np.ndarray,
    k: int = 5,
    chunk_size: int = 4096,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> KnnItems:
    """The per-item ball memberships behind `knn_scores` (exact; see the module docstring)."""
    real, fake = _point_pair(real, fake, "real points", "fake points")
    k = check_k(k, {"the real set": len(real), "the fake set": len(fake)})
    with torch.inference_mode(), _exact_float32_matmul():
        real_set, fake_set = _sets(real, [fake], chunk_size, device)
        real_r2 = _kth_sq_radii(real_set, k, progress, "k-NN radii (real)")
        fake_r2 = _kth_sq_radii(fake_set, k, progress, "k-NN radii (fake)")
        balls_per_fake, real_in_fake_ball, real_ball_hit = _cross_pass(real_set, real_r2, fake_set, fake_r2, progress)
        return KnnItems(balls_per_fake.cpu().numpy(), real_in_fake_ball.cpu().numpy(), real_ball_hit.cpu().numpy(), k)


def knn_scores(
    real: np.ndarray,
    fake: np.ndarray,
    k: int = 5,
    chunk_size: int = 4096,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Precision, recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020) of `fake` against `real`.

    precision: fraction of fake points inside some real point's k-NN ball;
    recall: fraction of real points inside some fake point's k-NN ball;
    density: (1 / kM) * sum over fakes of the number of real balls holding it (M fakes; about 1 when fake ~ real);
    coverage: fraction of real points whose k-NN ball holds at least one fake point.
    Exact (float64 decisions), in blocks of `chunk_size` rows (at most CPU_BLOCK on the CPU) on `device`
    (CUDA when available, else CPU).
    """
    return knn_items(real, fake, k, chunk_size, device, progress).scores()


def real_ball_counts(
    real: np.ndarray, points: np.ndarray, k: int = 5, chunk_size: int = 4096, device: torch.device | str | None = None
) -> np.ndarray:
    """int64 per point: how many real points' k-NN balls hold it (0 = outside the real support)."""
    real, points = _point_pair(real, points, "real points", "points")
    k = check_k(k, {"the real set": len(real)})
    with torch.inference_mode(), _exact_float32_matmul():
        real_set, point_set = _sets(real, [points], chunk_size, device)
        counts, _, _ = _cross_pass(real_set, _kth_sq_radii(real_set, k), point_set, None)
    return counts.cpu().numpy()
