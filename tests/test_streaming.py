"""Full-size data: a cache entry larger than the RAM budget is written, trained on and encoded in bounded
blocks, never read whole (a synthetic uint8 memmap, so no JPEG decoding is involved)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from latentatlas import train as train_module
from latentatlas.checkpoint import read_history
from latentatlas.data import DataConfig, load_images
from latentatlas.data import cache as cache_module
from latentatlas.feeder import BatchFeeder
from latentatlas.model import Autoencoder, ModelConfig
from latentatlas.store import encode_images
from latentatlas.train import TrainConfig, train

SIZE = 128
COUNT = 4096  # 4,096 x 128 x 128 x 3 bytes = 201 MB on disk
BUDGET = 8 * 2**20  # the training feeder's RAM budget here: 170 images per block
LIMIT = 80 * 2**20  # allowed growth of anonymous (non file-backed) memory: under half the array, which
# leaves room for the allocator's slack (freed blocks it keeps) but not for a copy of the array


def _anonymous_memory() -> int:
    """Resident anonymous memory of this process in bytes: memory-mapped file pages do not count."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon in /proc/self/status")


class _Reads(np.ndarray):
    """A view of the cached memmap that logs, for every read of whole images, its row count and the
    anonymous memory right after it."""

    log: list[tuple[int, int]] = []

    def __getitem__(self, key):
        out = super().__getitem__(key)
        if isinstance(out, np.ndarray) and out.ndim == 4:
            _Reads.log.append((len(out), _anonymous_memory()))
        return out


def _fill(out: np.ndarray, n: int, image_size: int, seed: int, progress: bool = False, n_classes: int = 1):
    """Stands in for the face renderer: a cheap pattern per image, written block by block like it."""
    pattern = (np.arange(image_size * image_size * 3) % 251).astype(np.uint8).reshape(image_size, image_size, 3)
    for start in range(0, n, 64):
        shift = (7 * np.arange(start, min(start + 64, n)) % 256).astype(np.uint8)
        out[start : start + len(shift)] = pattern + shift[:, None, None, None]  # uint8, wraps around
    ids = [f"synthetic-{i:06d}" for i in range(n)]
    return pd.DataFrame({"image_id": ids, "path": ids, "partition": "all"})


def _cache(data: DataConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    """Build `data` through the image cache, the face renderer replaced by a cheap pattern."""
    if not Path("/proc/self/status").is_file():
        pytest.skip("needs /proc/self/status (Linux) to measure memory")
    monkeypatch.setenv("LATENTATLAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cache_module, "synthetic_into", _fill)
    return load_images(data, progress=False).images


@pytest.mark.slow
def test_the_cache_feeder_and_encoder_stream_an_array_larger_than_the_budget(tmp_path, monkeypatch):
    _cache(DataConfig(image_size=SIZE, synthetic_count=16), tmp_path, monkeypatch)  # imports (parquet) first
    before = _anonymous_memory()
    images = _cache(DataConfig(image_size=SIZE, synthetic_count=COUNT), tmp_path, monkeypatch)
    assert isinstance(images, np.memmap) and images.shape == (COUNT, SIZE, SIZE, 3)
    assert images.nbytes > 2 * LIMIT
    assert _anonymous_memory() - before < LIMIT  # written into the memmap block by block
    images = images.view(_Reads)  # the same file-backed pages, with a read log

    # The training feeder: every image once per epoch, in blocks of at most `block`, memory flat.
    block = BUDGET // (SIZE * SIZE * 3)
    feeder = BatchFeeder(images, np.arange(COUNT), ram_budget=BUDGET)
    assert feeder.in_ram is None
    _Reads.log, before, seen = [], _anonymous_memory(), 0
    order = torch.randperm(COUNT, generator=torch.Generator().manual_seed(0))
    for batch in feeder.batches(order, 64):
        assert torch.equal(batch[0], torch.from_numpy(np.array(images[int(order[seen])])))
        seen += len(batch)
    assert seen == COUNT
    assert max(count for count, _ in _Reads.log) <= block and sum(count for count, _ in _Reads.log) == COUNT
    assert max(memory for _, memory in _Reads.log) - before < LIMIT

    # Encoding: one batch at a time.
    torch.manual_seed(0)
    model = Autoencoder(ModelConfig(image_size=SIZE, channels=(4,), latent_dim=8))
    _Reads.log, before = [], _anonymous_memory()
    z = encode_images(model, images, batch_size=64)
    assert [count for count, _ in _Reads.log] == [64] * (COUNT // 64)
    assert max(memory for _, memory in _Reads.log) - before < LIMIT
    np.testing.assert_array_equal(z[-64:], encode_images(model, np.array(images[-64:])))


@pytest.mark.slow
def test_training_streams_a_source_over_its_ram_budget(tmp_path, monkeypatch, capsys):
    data = DataConfig(image_size=64, synthetic_count=384)
    _cache(data, tmp_path, monkeypatch)
    load = train_module.load_images

    def logged(*args, **kwargs):
        imageset = load(*args, **kwargs)
        imageset.images = imageset.images.view(_Reads)
        return imageset

    budget = 2**20  # 85 images of 64 px
    monkeypatch.setattr(train_module, "load_images", logged)
    monkeypatch.setattr(train_module, "BatchFeeder", functools.partial(BatchFeeder, ram_budget=budget))
    _Reads.log = []
    run_dir = train(
        tmp_path / "run",
        data,
        ModelConfig(image_size=64, channels=(4,), latent_dim=8),
        TrainConfig(epochs=1, batch_size=32, val_fraction=0.25, seed=0),
        progress=True,
        device="cpu",
    )
    rows = [count for count, _ in _Reads.log]
    # train and validation images each read once, in blocks of at most 85: never the whole array
    assert max(rows) <= budget // (64 * 64 * 3) and sum(rows) == 384 and len(rows) >= 384 // 85
    (epoch,) = read_history(run_dir / "history.csv")
    assert np.isfinite(epoch["train_loss"]) and np.isfinite(epoch["val_loss"])
    assert "epoch 1/1: train loss" in capsys.readouterr().err  # progress, on a terminal or not
