"""Exact k-NN scores: improved precision and recall (Kynkäänniemi et al. 2019), density and coverage
(Naeem et al. 2020).

The ball of a point has the radius of the distance to its k-th nearest neighbour in its own set, the
point itself excluded; membership is strict (distance < radius), as in the authors' `prdc` code.
Distances are exact float64, computed block by block with torch (CPU or GPU): memory grows with
`chunk_size`², never with the product of the set sizes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.model import default_device

KNN_SCORES = ("precision", "recall", "density", "coverage")


def check_k(k: Any, sizes: dict[str, int]) -> int:
    """k >= 1, and every named set has at least k + 1 points (a k-NN ball excludes the point itself)."""
    k = checks.positive_int(k, "k")
    for name, size in sizes.items():
        if size < k + 1:
            raise LatentAtlasError(f"{name} has {size} points; k-NN balls with k={k} need at least k+1 = {k + 1}")
    return k


def _device(device: torch.device | str | None) -> torch.device:
    return default_device() if device is None else torch.device(device)


def _point_pair(real: Any, fake: Any, real_name: str, fake_name: str) -> tuple[np.ndarray, np.ndarray]:
    real = checks.points(real, min_rows=1, name=real_name)
    fake = checks.points(fake, min_rows=1, name=fake_name)
    if real.shape[1] != fake.shape[1]:
        raise LatentAtlasError(f"{real_name} and {fake_name} differ in dimension: {real.shape[1]} vs {fake.shape[1]}")
    return real, fake


class _Blocks:
    """A point set on the device in float64 with its squared norms, served in row blocks."""

    def __init__(self, points: np.ndarray, chunk_size: int, device: torch.device):
        self.n = len(points)
        self.chunk_size = chunk_size
        self._points = points
        self._device = device
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        # Keep the converted blocks only while the whole set is no bigger than four distance blocks,
        # so memory stays bounded by the chunk size; larger sets are re-read block by block.
        self._keep = self.n * points.shape[1] <= 4 * chunk_size * chunk_size

    def starts(self) -> range:
        return range(0, self.n, self.chunk_size)

    def block(self, start: int) -> tuple[torch.Tensor, torch.Tensor]:
        if start in self._cache:
            return self._cache[start]
        rows = np.asarray(self._points[start : start + self.chunk_size], dtype=np.float64)
        x = torch.from_numpy(rows).to(self._device)
        value = (x, (x * x).sum(dim=1))
        if self._keep:
            self._cache[start] = value
        return value


def _sq_distances(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    # ||a||² + ||b||² - 2 a·b in float64; the clamp removes the tiny negatives that cancellation leaves.
    # (||a||² + ||b||²) first: that sum is exact-commutative, so d(a, b) and d(b, a) round identically and
    # ties (duplicate points, identical sets) are judged the same way in every pass. addmm writes the
    # product into that block: one block-sized buffer.
    (xa, na), (xb, nb) = a, b
    return torch.addmm(na[:, None] + nb[None, :], xa, xb.T, alpha=-2.0).clamp_(min=0.0)


def _kth_sq_radii(blocks: _Blocks, k: int, progress: bool = False, desc: str = "k-NN radii") -> torch.Tensor:
    """Squared distance of each point to its k-th nearest neighbour in the same set, itself excluded."""
    radii = []
    for start in tqdm(blocks.starts(), desc=desc, unit="block", disable=None if progress else True):
        rows = blocks.block(start)
        # Running k+1 smallest: the point's own distance (0) is one of them, so index k is the k-th neighbour.
        best = torch.full((len(rows[0]), k + 1), math.inf, dtype=torch.float64, device=rows[0].device)
        for other in blocks.starts():
            d2 = _sq_distances(rows, blocks.block(other))
            if other == start:
                d2.fill_diagonal_(0.0)  # the point itself, exactly 0 whatever the rounding
            nearest = d2.topk(min(k + 1, d2.shape[1]), dim=1, largest=False).values
            best = torch.cat([best, nearest], dim=1).topk(k + 1, dim=1, largest=False).values
        radii.append(best[:, k])
    return torch.cat(radii)


def kth_neighbour_distances(
    points: np.ndarray, k: int = 5, chunk_size: int = 4096, device: torch.device | str | None = None
) -> np.ndarray:
    """Euclidean distance of each point to its k-th nearest neighbour among the others (float64, exact)."""
    points = checks.points(points, min_rows=1, name="points")
    k = check_k(k, {"points": len(points)})
    chunk_size = checks.positive_int(chunk_size, "chunk size")
    blocks = _Blocks(points, chunk_size, _device(device))
    with torch.inference_mode():
        return _kth_sq_radii(blocks, k).sqrt().cpu().numpy()


def _cross_pass(
    real: _Blocks, real_r2: torch.Tensor, fake: _Blocks, fake_r2: torch.Tensor | None, progress: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per fake: how many real balls hold it; per real: a fake ball holds it; per real: its ball holds a fake."""
    dev = real_r2.device
    balls_per_fake = torch.zeros(fake.n, dtype=torch.int64, device=dev)
    real_in_fake_ball = torch.zeros(real.n, dtype=torch.bool, device=dev)
    real_ball_hit = torch.zeros(real.n, dtype=torch.bool, device=dev)
    for f_start in tqdm(fake.starts(), desc="k-NN cross", unit="block", disable=None if progress else True):
        f_block = fake.block(f_start)
        f_rows = slice(f_start, f_start + len(f_block[0]))
        for r_start in real.starts():
            r_block = real.block(r_start)
            r_rows = slice(r_start, r_start + len(r_block[0]))
            d2 = _sq_distances(f_block, r_block)  # (fakes, reals)
            inside_real = d2 < real_r2[r_rows][None, :]
            balls_per_fake[f_rows] += inside_real.sum(dim=1)
            real_ball_hit[r_rows] |= inside_real.any(dim=0)
            if fake_r2 is not None:
                real_in_fake_ball[r_rows] |= (d2 < fake_r2[f_rows][:, None]).any(dim=0)
    return balls_per_fake, real_in_fake_ball, real_ball_hit


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
    Exact, in float64, in blocks of `chunk_size` rows on `device` (CUDA when available, else CPU).
    """
    real, fake = _point_pair(real, fake, "real points", "fake points")
    k = check_k(k, {"the real set": len(real), "the fake set": len(fake)})
    chunk_size = checks.positive_int(chunk_size, "chunk size")
    dev = _device(device)
    with torch.inference_mode():
        real_blocks, fake_blocks = _Blocks(real, chunk_size, dev), _Blocks(fake, chunk_size, dev)
        real_r2 = _kth_sq_radii(real_blocks, k, progress, "k-NN radii (real)")
        fake_r2 = _kth_sq_radii(fake_blocks, k, progress, "k-NN radii (fake)")
        balls_per_fake, real_in_fake_ball, real_ball_hit = _cross_pass(
            real_blocks, real_r2, fake_blocks, fake_r2, progress
        )
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
    chunk_size = checks.positive_int(chunk_size, "chunk size")
    dev = _device(device)
    with torch.inference_mode():
        real_blocks = _Blocks(real, chunk_size, dev)
        real_r2 = _kth_sq_radii(real_blocks, k)
        counts, _, _ = _cross_pass(real_blocks, real_r2, _Blocks(points, chunk_size, dev), None)
    return counts.cpu().numpy()
