"""Saved by the code at ccb8332 (before samplers declared their options as dataclass fields): one fitted sampler
of every kind, its draw `sample(5, seed=3)` and, for the densities, `score_samples(held.npy)`.

    python tests/data/samplers-v1/make_fixture.py tests/data/samplers-v1

tests/test_sampler_compat.py checks that the current code loads each one and draws and scores the same.
"""

import shutil
import sys
from pathlib import Path

import numpy as np

from latentatlas.samplers import SAMPLERS, make_sampler

OPTIONS = {
    "uniform-box": {"b": 1.5},
    "component-box": {"percentiles": (5.0, 95.0)},
    "ellipsoid": {"confidence": 0.8},
    "planar-ellipses": {"confidence": 0.8},
    "gmm": {"components": 2},
    "gmm-bic": {"candidates": (1, 2), "criterion": "heldout"},
    "regions": {"max_regions": 3, "pca_dims": 2},
    "resample": {"jitter": "scott", "max_points": 40},
    "flow": {"epochs": 2, "hidden": 8, "transforms": 1},
    "two-stage": {"epochs": 2, "hidden": 8, "importance_samples": 4},
    "diffusion": {"epochs": 2, "width": 8, "blocks": 1, "steps": 4},  # added later, by the code that added it
}
out = Path(sys.argv[1])
shutil.rmtree(out, ignore_errors=True)
rng = np.random.default_rng(7)
z = (
    rng.standard_normal((200, 4)) @ np.array([[1.0, 0.5, 0, 0], [0, 1.0, 0.3, 0], [0, 0, 0.6, 0.2], [0, 0, 0, 0.4]])
).astype(np.float32)
held = z[:10]
for name in SAMPLERS:
    sampler = make_sampler(name, **OPTIONS.get(name, {})).fit(z)
    sampler.save(out / name / "sampler")
    np.save(out / name / "draw.npy", sampler.sample(5, seed=3))
    if sampler.defines_density:
        np.save(out / name / "score.npy", sampler.score_samples(held))
np.save(out / "held.npy", held)
print(sorted(p.name for p in out.iterdir()))
