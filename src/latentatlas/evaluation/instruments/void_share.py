"""Void share: the share of the row's z-points in no core of the training z-points' regions."""

from __future__ import annotations

from typing import Any

import numpy as np

from latentatlas.evaluation.instruments.base import Instrument, Reference, Row
from latentatlas.evaluation.intervals import mean_interval, stream_seed
from latentatlas.evaluation.score import Metric, Score
from latentatlas.region_model import CORE_LEVEL, PCA_DIMS, RegionModel, fit_regions, min_points


class VoidShare(Instrument):
    name = "void_share"
    columns = (
        Metric(
            "void_share", False, "share of the row's z-points in no region's core (regions of the training z-points)"
        ),
    )

    def prepare(self, reference: Reference) -> None:
        self.seed, self.max_regions = reference.seed, reference.max_regions
        self.regions: RegionModel | None = None  # too few training points to find regions: no column
        train_z = reference.train_z
        if len(train_z) >= min_points(train_z.shape[1], PCA_DIMS):
            found = fit_regions(train_z, max_regions=self.max_regions, pca_dims=PCA_DIMS, random_state=reference.seed)
            self.regions = found.model

    def score(self, row: Row) -> dict[str, Score]:
        if self.regions is None:
            return {}
        outside = ~self.regions.in_core(np.asarray(row.z), CORE_LEVEL)
        return {"void_share": mean_interval(outside, seed=stream_seed(self.seed, "void_share"))}

    def settings(self) -> dict[str, Any]:
        if self.regions is None:
            return {}
        found = {"n_regions": self.regions.n_regions, "max_regions": self.max_regions, "pca_dims": PCA_DIMS}
        return {"regions": {**found, "core_level": CORE_LEVEL}}
