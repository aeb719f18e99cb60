"""The data-copying test C_T of Meehan, Chaudhuri & Dasgupta (2020) in latent space: does a sampler put its
points closer to the training z-points than unseen data lies, cell by cell?

The test itself is `evaluation.copies.CopyingTest` (the same in face-embedding space, `face_ct`): the
training z-points are partitioned into cells by k-means (seeded; k = min(MAX_CELLS, training points //
TRAIN_PER_CELL, held-out points // HELD_PER_CELL), at least 1). In each cell, every point's distance to the
nearest training z-point *of that cell* is taken, for the row's points and for the held-out points, and a
Mann-Whitney U test compares the two. Cells holding fewer than MIN_CELL_POINTS of the row's points are
skipped, and C_T is the average of the kept cells' Z_U weighted by their shares of the held-out points.
C_T << 0: data-copying (the paper flags C_T < -3); C_T >> 0: the samples lie farther from the training data
than real data does (underfitting); ~0: neither. Its interval is a percentile bootstrap over the row's points.
"""

from __future__ import annotations

from typing import Any

from latentatlas.evaluation.copies import MIN_CELL_POINTS, CopyingTest, c_t, in_cell_distances
from latentatlas.evaluation.instruments.base import Instrument, Reference, Row
from latentatlas.evaluation.intervals import stream_seed
from latentatlas.evaluation.score import Metric, Score

__all__ = ["MIN_CELL_POINTS", "LatentCt", "c_t", "in_cell_distances"]


class LatentCt(Instrument):
    name = "latent_ct"
    columns = (Metric("latent_ct", None, "data-copying test C_T in latent space (Meehan et al. 2020): << 0 copies"),)

    def prepare(self, reference: Reference) -> None:
        self.test = CopyingTest(seed=stream_seed(reference.seed, self.name)).fit(reference.train_z, reference.z)
        self.cells = self.test.cells_

    def score(self, row: Row) -> dict[str, Score]:
        if row.role != "sample":  # training points are the reference itself; held-out points score 0 by definition
            return {}
        found = self.test.score(row.z)
        return {} if found is None else {"latent_ct": found}

    def settings(self) -> dict[str, Any]:
        return {"latent_ct": self.test.settings()}
