"""Shared fixtures: an isolated image cache, two torch threads, one tiny trained run, the real-data folder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
CELEBA_DIR = REPO.parent / "shared" / "data" / "celeba-10k"

# The tiny run every module's tests share: small enough to train in a few seconds on 2 cores,
# trained long enough that its z-points and reconstructions carry real structure.
TINY_MODEL = {"image_size": 32, "channels": (16, 32), "latent_dim": 16}
TINY_DATA = {"source": "synthetic-faces", "image_size": 32, "synthetic_count": 400}
TINY_TRAIN = {"epochs": 3, "val_fraction": 0.25, "batch_size": 16, "lr": 2e-3, "seed": 0}


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Decoded images go to a per-session folder, never the user's cache; torch uses 2 threads."""
    cache = tmp_path_factory.mktemp("latentatlas-cache")
    # OMP_NUM_THREADS also tells the CLI's use_all_cores() to keep the 2 threads set here.
    settings = {"LATENTATLAS_CACHE": str(cache), "OMP_NUM_THREADS": "2"}
    previous = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield cache
    torch.set_num_threads(threads)
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, _isolated_cache: Path):
    """A trained and encoded Run (400 synthetic 32x32 faces, latent 16, 3 epochs, 100 held out). Read-only."""
    from latentatlas.data import DataConfig
    from latentatlas.model import ModelConfig
    from latentatlas.store import Run, encode_run
    from latentatlas.train import TrainConfig, train

    run_dir = train(
        tmp_path_factory.mktemp("tiny") / "run",
        DataConfig(**TINY_DATA),
        ModelConfig(**TINY_MODEL),
        TrainConfig(**TINY_TRAIN),
        progress=False,
        device="cpu",
    )
    run = Run(run_dir)
    encode_run(run, progress=False)
    return run


@pytest.fixture
def tiny_run_copy(tiny_run, tmp_path: Path):
    """A fresh, writable copy of `tiny_run` for tests that add files to a run folder."""
    from latentatlas.store import Run

    return Run(shutil.copytree(tiny_run.path, tmp_path / "run"))


@pytest.fixture(scope="session")
def tiny_analysed_run(tiny_run, tmp_path_factory: pytest.TempPathFactory):
    """A copy of `tiny_run` with `latentatlas analyze` done (small figures). Read-only."""
    from latentatlas.pipelines.analyze import analyze_run
    from latentatlas.store import Run

    run = Run(shutil.copytree(tiny_run.path, tmp_path_factory.mktemp("tiny-analysed") / "run"))
    analyze_run(run, projection_points=300, artificial_points=50, hist_components=4)
    return run


@pytest.fixture(scope="session")
def celeba_dir() -> Path:
    """The shared real CelebA subset (../shared/data/celeba-10k); the test is skipped when it is absent."""
    if not (CELEBA_DIR / "img_align_celeba").is_dir():
        pytest.skip(f"real data not available at {CELEBA_DIR}")
    return CELEBA_DIR
