"""Does data feeding slow training down? Images/s of the real pipeline against random tensors in memory.

    python benchmarks/train_throughput.py [--images 2048] [--batch-size 64] [--image-size 64]

Training: `latentatlas.train.train` on the cached real images (../shared/data/celeba-10k when present,
else the built-in synthetic faces), timed on its second epoch (the first one warms up), against the
same model and optimizer fed a float tensor that already sits in memory. Encoding: `encode_images`
reading the uint8 memmap, against `model.encode` on in-memory float tensors. A ratio near 1 means the
data path costs nothing next to the network (target >= 0.9). Each side is timed twice, alternating,
and the best is kept, because the CPU may be shared with other work.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from latentatlas.data import DataConfig, load_images
from latentatlas.errors import LatentAtlasError
from latentatlas.model import Autoencoder, ModelConfig, default_device
from latentatlas.store import Run, encode_images
from latentatlas.train import TrainConfig, _autocast, _deterministic, train, use_all_cores

CELEBA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "celeba-10k"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_in_memory(model_config: ModelConfig, n: int, batch_size: int, device: torch.device) -> float:
    """Images/s of the training step alone: a random float batch, already on the device, reused."""
    torch.manual_seed(0)
    net = Autoencoder(model_config).to(device, memory_format=torch.channels_last).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    size = model_config.image_size
    x = torch.rand(batch_size, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)

    def step(batch: torch.Tensor) -> None:
        with _autocast(device):
            loss = F.mse_loss(net(batch).float(), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()  # the real loop reads the loss every step too

    with _deterministic(device):  # the same kernels as `train` uses
        for _ in range(3):
            step(x)
        _sync(device)
        start = time.perf_counter()
        done = 0
        while done < n:
            batch = x[: min(batch_size, n - done)]
            step(batch)
            done += len(batch)
        _sync(device)
    return n / (time.perf_counter() - start)


def train_pipeline(
    data: DataConfig, model_config: ModelConfig, batch_size: int, device: torch.device
) -> tuple[float, int]:
    """Images/s of `train` (its own measurement of epoch 2) and the number of training images."""
    with tempfile.TemporaryDirectory(prefix="latentatlas-bench-run-") as folder:
        run = Run(
            train(
                Path(folder) / "run",
                data,
                model_config,
                TrainConfig(epochs=2, batch_size=batch_size, val_fraction=0.1),
                progress=False,
                device=device,
            )
        )
        history = run.history()
        return float(history["images_per_s"].iloc[-1]), run.train_state()["n_train"]


def encode_in_memory(model: Autoencoder, n: int, batch_size: int, device: torch.device) -> float:
    size = model.config.image_size
    x = torch.rand(batch_size, 3, size, size, device=device)
    with torch.inference_mode():
        model.encode(x)
        _sync(device)
        start = time.perf_counter()
        done = 0
        while done < n:
            batch = x[: min(batch_size, n - done)]
            model.encode(batch).float().cpu()
            done += len(batch)
        _sync(device)
    return n / (time.perf_counter() - start)


def encode_pipeline(model: Autoencoder, images: np.ndarray, batch_size: int, device: torch.device) -> float:
    encode_images(model, images[:batch_size], batch_size=batch_size, device=device)  # warm-up
    _sync(device)
    start = time.perf_counter()
    encode_images(model, images, batch_size=batch_size, device=device)
    _sync(device)
    return len(images) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(CELEBA) if CELEBA.is_dir() else "synthetic-faces")
    parser.add_argument("--images", type=int, default=2048, help="images used (the first N of the source)")
    parser.add_argument("--batch-size", type=int, default=TrainConfig().batch_size)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--latent-dim", type=int, default=256)
    args = parser.parse_args()
    use_all_cores()
    device = default_device()
    try:
        model_config = ModelConfig(image_size=args.image_size, latent_dim=args.latent_dim)
        synthetic = args.source == "synthetic-faces"
        data = DataConfig(
            source=args.source,
            image_size=args.image_size,
            limit=None if synthetic else args.images,
            synthetic_count=args.images,
        )
        with tempfile.TemporaryDirectory(prefix="latentatlas-bench-cache-") as cache:
            os.environ["LATENTATLAS_CACHE"] = cache  # a private cache: the first load decodes, later ones memory-map
            images = load_images(data, progress=False).images
            print(
                f"source   {args.source}: {len(images)} images {args.image_size}x{args.image_size}, "
                f"batch {args.batch_size}, device {device}, {torch.get_num_threads()} threads"
            )
            pipeline, memory = [], []
            for _ in range(2):
                rate, n_train = train_pipeline(data, model_config, args.batch_size, device)
                pipeline.append(rate)
                memory.append(train_in_memory(model_config, n_train, args.batch_size, device))
            torch.manual_seed(0)
            model = Autoencoder(model_config).to(device).eval()
            enc_pipeline, enc_memory = [], []
            for _ in range(2):
                enc_pipeline.append(encode_pipeline(model, images, 256, device))
                enc_memory.append(encode_in_memory(model, len(images), 256, device))
    except LatentAtlasError as exc:
        print(f"train_throughput: error: {exc}", file=sys.stderr)
        return 2
    print(f"{'':10}{'real data':>14}{'in memory':>14}{'ratio':>8}")
    for name, real, fake in (
        ("training", max(pipeline), max(memory)),
        ("encoding", max(enc_pipeline), max(enc_memory)),
    ):
        print(f"{name:10}{real:>10.0f} i/s{fake:>10.0f} i/s{real / fake:>8.2f}")
    print(f"all training timings (real / in memory): {[round(r) for r in pipeline]} / {[round(r) for r in memory]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
