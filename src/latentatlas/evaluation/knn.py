"""Exact k-NN scores: improved precision and recall (Kynkäänniemi et al. 2019), density and coverage
(Naeem et al. 2020).

The ball of a point has the radius of the distance to its k-th nearest neighbour in its own set, the
point itself excluded; membership is strict (distance < radius), as in the authors' `prdc` code.

Exact and fast: squared distances are computed as float32 matrix products in blocks of `chunk_size`
rows (on the points centred on the real set's mean, which keeps the norms and so the rounding small),
with a running top-k per point. Every decision that float32 rounding could change is then taken in
float64 on the direct differences ||a - b||²: the k-th radius from the candidates kept by the float32
pass (a point's radius is recomputed over the whole set when the float32 pass cannot prove that no
excluded point comes closer), and every ball membership whose float32 distance lies within the
rounding bound of the radius. The scores are therefore exactly those of a full float64 computation of
||a - b||², while memory stays a few `chunk_size`² float32 blocks. The same code runs on a GPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.model import default_device

KNN_SCORES = ("precision", "recall", "density", "coverage")
EXTRA_CANDIDATES = 8  # float32 candidates kept beyond the k + 1 needed, so the float64 radius is rarely in doubt
_UNIT_ROUNDOFF = 2.0**-24  # float32


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
    """A point set on the device: exact float64 rows, centred float32 rows and their squared norms."""

    exact: torch.Tensor  # (n, d) float64, as given
    low: torch.Tensor  # (n, d) float32, centred
    norms: torch.Tensor  # (n,) float32, ||low||²
    chunk_size: int

    @classmethod
    def of(cls, points: np.ndarray, centre: torch.Tensor, chunk_size: int, device: torch.device) -> _Set:
        exact = torch.as_tensor(np.asarray(points, dtype=np.float64), device=device)
        low = (exact - centre).float()
        return cls(exact, low, (low * low).sum(dim=1), chunk_size)

    @property
    def n(self) -> int:
        return len(self.exact)

    def blocks(self) -> range:
        return range(0, self.n, self.chunk_size)


def _rounding_bound(dim: int) -> float:
    """C such that |float32 ||a||² + ||b||² - 2a·b  -  exact ||a - b||²| <= C (||a||² + ||b||²).

    Input rounding and the three float32 reductions each err by at most gamma_d = d u / (1 - d u) of
    (||a|| + ||b||)² <= 2 (||a||² + ||b||²) (Higham, Accuracy and Stability, §3.1); doubled for safety.
    """
    gamma = (dim + 4) * _UNIT_ROUNDOFF / (1 - (dim + 4) * _UNIT_ROUNDOFF)
    return 4.0 * gamma


def _low_sq(a: _Set, rows: slice, b: _Set, cols: slice) -> torch.Tensor:
    """float32 squared distances of a block (rows of a, cols of b): ||a||² + ||b||² - 2a·b."""
    return torch.addmm(a.norms[rows, None] + b.norms[None, cols], a.low[rows], b.low[cols].T, alpha=-2.0)


def _exact_sq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """float64 ||a - b||² of paired rows (broadcasting over leading dimensions)."""
    diff = a - b
    return (diff * diff).sum(dim=-1)


def _kth_sq_radii(points: _Set, k: int, progress: bool = False, desc: str = "k-NN radii") -> torch.Tensor:
    """Exact float64 squared distance of each point to its k-th nearest neighbour in the set, itself excluded."""
    n, size = points.n, points.chunk_size
    keep = min(k + 1 + EXTRA_CANDIDATES, n)
    dev = points.low.device
    values = torch.full((n, keep), float("inf"), dtype=torch.float32, device=dev)
    indices = torch.zeros((n, keep), dtype=torch.int64, device=dev)

    def merge(rows: slice, new_values: torch.Tensor, new_indices: torch.Tensor) -> None:
        joined = torch.cat([values[rows], new_values], dim=1)
        best = joined.topk(keep, dim=1, largest=False)
        indices[rows] = torch.cat([indices[rows], new_indices], dim=1).gather(1, best.indices)
        values[rows] = best.values

    # Distances are symmetric: each pair of blocks is computed once and feeds the running top-k of both.
    starts = list(points.blocks())
    for position, start in enumerate(tqdm(starts, desc=desc, unit="block", disable=None if progress else True)):
        rows = slice(start, min(start + size, n))
        for other in starts[position:]:
            cols = slice(other, min(other + size, n))
            d2 = _low_sq(points, rows, points, cols)
            if other == start:
                d2.fill_diagonal_(-1.0)  # the point itself: always a candidate (its exact distance is 0)
            best = d2.topk(min(keep, d2.shape[1]), dim=1, largest=False)
            merge(rows, best.values, best.indices + other)
            if other != start:
                best = d2.T.topk(min(keep, d2.shape[0]), dim=1, largest=False)
                merge(cols, best.values, best.indices + start)

    bound = _rounding_bound(points.low.shape[1])
    largest_norm = float(points.norms.max())
    radii = []
    for start in points.blocks():
        rows = slice(start, min(start + size, n))
        exact = _exact_sq(points.exact[indices[rows]], points.exact[rows, None, :])
        radius = exact.kthvalue(k + 1, dim=1).values
        if keep < n:
            # A point left out had float32 distance >= the largest kept one; its exact distance is at most
            # the rounding bound below that. Where that could undercut the radius, rescan the whole set.
            farthest = values[rows, -1].double()
            slack = bound * (points.norms[rows].double() + largest_norm) + 2 * _UNIT_ROUNDOFF * farthest
            for i in torch.nonzero(farthest - slack < radius).flatten().tolist():
                radius[i] = _exact_sq(points.exact, points.exact[start + i]).kthvalue(k + 1).values
        radii.append(radius)
    return torch.cat(radii)


def _inside(d2: torch.Tensor, radii: torch.Tensor, slack: float, exact_pairs) -> torch.Tensor:
    """d2 < radii (broadcast), decided in float64 wherever float32 rounding could flip the answer."""
    radii32 = radii.float()
    inside = d2 < radii32
    doubtful = torch.nonzero((d2 - radii32).abs() <= slack + 2 * _UNIT_ROUNDOFF * radii32)
    if len(doubtful):
        i, j = doubtful[:, 0], doubtful[:, 1]
        exact = exact_pairs(i, j)
        inside[i, j] = exact < radii.expand_as(d2)[i, j]
    return inside


def _cross_pass(
    real: _Set, real_r2: torch.Tensor, fake: _Set, fake_r2: torch.Tensor | None, progress: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per fake: how many real balls hold it; per real: a fake ball holds it; per real: its ball holds a fake."""
    dev = real_r2.device
    balls_per_fake = torch.zeros(fake.n, dtype=torch.int64, device=dev)
    real_in_fake_ball = torch.zeros(real.n, dtype=torch.bool, device=dev)
    real_ball_hit = torch.zeros(real.n, dtype=torch.bool, device=dev)
    bound = _rounding_bound(real.low.shape[1])
    for f_start in tqdm(fake.blocks(), desc="k-NN cross", unit="block", disable=None if progress else True):
        f_rows = slice(f_start, min(f_start + fake.chunk_size, fake.n))
        f_exact = fake.exact[f_rows]
        for r_start in real.blocks():
            r_rows = slice(r_start, min(r_start + real.chunk_size, real.n))
            r_exact = real.exact[r_rows]
            d2 = _low_sq(fake, f_rows, real, r_rows)  # (fakes, reals)
            slack = bound * float(fake.norms[f_rows].max() + real.norms[r_rows].max())

            def exact_pairs(i: torch.Tensor, j: torch.Tensor, f_exact=f_exact, r_exact=r_exact) -> torch.Tensor:
                return _exact_sq(f_exact[i], r_exact[j])

            inside_real = _inside(d2, real_r2[None, r_rows], slack, exact_pairs)
            balls_per_fake[f_rows] += inside_real.sum(dim=1)
            real_ball_hit[r_rows] |= inside_real.any(dim=0)
            if fake_r2 is not None:
                real_in_fake_ball[r_rows] |= _inside(d2, fake_r2[f_rows, None], slack, exact_pairs).any(dim=0)
    return balls_per_fake, real_in_fake_ball, real_ball_hit


def _sets(real: np.ndarray, others: list[np.ndarray], chunk_size: Any, device: torch.device | str | None) -> list[_Set]:
    chunk_size = checks.positive_int(chunk_size, "chunk size")
    dev = default_device() if device is None else torch.device(device)
    centre = torch.as_tensor(np.asarray(real, dtype=np.float64).mean(axis=0), device=dev)
    return [_Set.of(points, centre, chunk_size, dev) for points in (real, *others)]


def kth_neighbour_distances(
    points: np.ndarray, k: int = 5, chunk_size: int = 4096, device: torch.device | str | None = None
) -> np.ndarray:
    """Euclidean distance of each point to its k-th nearest neighbour among the others (float64, exact)."""
    points = checks.points(points, min_rows=1, name="points")
    k = check_k(k, {"points": len(points)})
    with torch.inference_mode(), _exact_float32_matmul():
        (blocks,) = _sets(points, [], chunk_size, device)
        return _kth_sq_radii(blocks, k).sqrt().cpu().numpy()


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
    Exact (float64 decisions), in blocks of `chunk_size` rows on `device` (CUDA when available, else CPU).
    """
    real, fake = _point_pair(real, fake, "real points", "fake points")
    k = check_k(k, {"the real set": len(real), "the fake set": len(fake)})
    with torch.inference_mode(), _exact_float32_matmul():
        real_set, fake_set = _sets(real, [fake], chunk_size, device)
        real_r2 = _kth_sq_radii(real_set, k, progress, "k-NN radii (real)")
        fake_r2 = _kth_sq_radii(fake_set, k, progress, "k-NN radii (fake)")
        balls_per_fake, real_in_fake_ball, real_ball_hit = _cross_pass(real_set, real_r2, fake_set, fake_r2, progress)
        return {
            "precision": float((balls_per_fake > 0).double().mean()),
            "recall": float(real_in_fake_ball.double().mean()),
            "density": float(balls_per_fake.sum().item() / (k * len(fake))),
            "coverage": float(real_ball_hit.double().mean()),
        }


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
