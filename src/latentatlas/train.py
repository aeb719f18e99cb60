"""Training: `TrainConfig`, the loop, per-epoch checkpoints and exact resume.

A run folder is written only after the first epoch finishes, and every file in it is replaced
atomically after each epoch, with train_state.json last: it is the commit point that --resume trusts.
Resuming reproduces the uninterrupted run bit for bit on CPU: the batch order of every epoch comes
from a generator seeded by (seed, epoch) alone, and the Adam state is saved exactly.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from latentatlas import distributed
from latentatlas.config import DataConfig, TrainConfig
from latentatlas.data import ImageSet, load_images
from latentatlas.errors import LatentAtlasError
from latentatlas.io import atomic_path, load_npy, read_json, save_npy, write_json, write_text
from latentatlas.model import (
    Autoencoder,
    ModelConfig,
    default_device,
    load_model_weights,
    save_model,
    to_model_input,
)

HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "seconds", "images_per_s")
# Training images are held in RAM as uint8; above this size they are streamed from the memmap in chunks.
RAM_BUDGET_BYTES = 4 * 2**30


def make_split(n: int, val_fraction: float, seed: int) -> np.ndarray:
    """int8 per image, 0 = train, 1 = validation: a seeded random `val_fraction` of the images held out."""
    n_val = round(n * val_fraction)
    if val_fraction > 0:
        n_val = min(max(n_val, 1), n - 1)  # at least one image on each side
    split = np.zeros(n, np.int8)
    split[np.random.default_rng(seed).permutation(n)[:n_val]] = 1
    return split


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The shuffling RNG of one epoch, derived from (seed, epoch) only, so a resumed run replays it."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def use_all_cores() -> None:
    """Give torch every core this process may run on, unless the user chose a thread count."""
    if any(os.environ.get(v) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TORCH_NUM_THREADS")):
        return
    try:
        cores = len(os.sched_getaffinity(0))  # respects container / taskset limits, unlike cpu_count
    except AttributeError:
        cores = os.cpu_count() or 1
    torch.set_num_threads(max(1, cores))


class _BatchFeeder:
    """uint8 image batches in a given order, from RAM when the set fits there, else chunk by chunk."""

    def __init__(
        self,
        images: np.ndarray,
        indices: np.ndarray,
        ram_budget: int = RAM_BUDGET_BYTES,
        device: torch.device | None = None,
    ):
        self.images, self.indices = images, np.asarray(indices)
        image_bytes = int(np.prod(images.shape[1:]))
        self.chunk = max(1, ram_budget // max(image_bytes, 1))
        # One read of the memmap, sorted (sequential on disk), kept for every epoch.
        self.in_ram = (
            torch.from_numpy(np.ascontiguousarray(images[self.indices])) if len(indices) <= self.chunk else None
        )
        if self.in_ram is not None and device is not None and device.type == "cuda":
            self.in_ram = self.in_ram.to(device)  # uint8 on the GPU: batches are gathered there, no copies per step

    def __len__(self) -> int:
        return len(self.indices)

    def batches(self, order_tensor: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
        order = order_tensor.numpy()
        if self.in_ram is not None:
            order_tensor = order_tensor.to(self.in_ram.device)
            for start in range(0, len(order), batch_size):
                yield self.in_ram[order_tensor[start : start + batch_size]]
            return
        for chunk_start in range(0, len(order), self.chunk):
            wanted = order[chunk_start : chunk_start + self.chunk]
            sorted_rows = np.sort(wanted)
            block = torch.from_numpy(np.ascontiguousarray(self.images[self.indices[sorted_rows]]))
            position = torch.from_numpy(np.searchsorted(sorted_rows, wanted))
            for start in range(0, len(wanted), batch_size):
                yield block[position[start : start + batch_size]]


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def _deterministic(device: torch.device) -> Iterator[None]:
    """Deterministic kernels on CPU (cheap there); restores the caller's setting afterwards."""
    if device.type != "cpu":
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def evaluate_loss(model: Autoencoder, feeder: _BatchFeeder, device: torch.device, batch_size: int = 256) -> float:
    """Mean squared error per pixel (pixels in [0, 1]) over the feeder's images, in eval mode."""
    if len(feeder) == 0:
        return float("nan")
    was_training = model.training
    model.eval()
    total = 0.0
    with torch.no_grad(), _autocast(device):
        for batch in feeder.batches(torch.arange(len(feeder)), batch_size):
            x = to_model_input(batch, device)
            total += F.mse_loss(model(x).float(), x, reduction="sum").item()
    model.train(was_training)
    return total / (len(feeder) * 3 * int(np.prod(feeder.images.shape[1:3])))


# --------------------------------------------------------------------------- checkpoints


def save_optimizer(optimizer: torch.optim.Optimizer, path: Path) -> None:
    """Adam state as safetensors: tensors flattened to "state.<param>.<name>", the rest as JSON metadata."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for param_id, entries in state["state"].items():
        for name, value in entries.items():
            key = f"state.{param_id}.{name}"
            if torch.is_tensor(value):
                tensors[key] = value.detach().cpu().contiguous()
            else:
                scalars[key] = value
    metadata = {"param_groups": json.dumps(state["param_groups"]), "scalars": json.dumps(scalars)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_optimizer(optimizer: torch.optim.Optimizer, path: Path) -> None:
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path))
        # JSON turned tuples (Adam's betas) into lists; give them back their type.
        param_groups = [
            {k: (v if k == "params" or not isinstance(v, list) else tuple(v)) for k, v in group.items()}
            for group in json.loads(metadata["param_groups"])
        ]
        scalars = json.loads(metadata.get("scalars", "{}"))
    except (OSError, KeyError, ValueError, TypeError, SafetensorError) as exc:
        raise LatentAtlasError(f"corrupt optimizer checkpoint {path}: {str(exc).splitlines()[0]}") from None
    state: dict[int, dict] = {}
    for key, value in {**tensors, **scalars}.items():
        _, param_id, name = key.split(".", 2)
        state.setdefault(int(param_id), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": param_groups})


def history_text(rows: list[dict]) -> str:
    """history.csv's content: a header of HISTORY_COLUMNS, one row per epoch, an empty cell for NaN."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _format_value(row[c]) for c in HISTORY_COLUMNS})
    return buffer.getvalue()


def _format_value(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    return "" if not math.isfinite(value) else repr(float(value))


def read_history(path: str | os.PathLike) -> list[dict]:
    """Rows of history.csv as dicts (empty cells -> nan); [] when the file does not exist yet."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not set(HISTORY_COLUMNS) <= set(reader.fieldnames):
                raise ValueError(f"expected the columns {', '.join(HISTORY_COLUMNS)}")
            rows = []
            for record in reader:
                row = {c: float(record[c]) if record[c] else float("nan") for c in HISTORY_COLUMNS}
                row["epoch"] = int(row["epoch"])
                rows.append(row)
    except (ValueError, TypeError, UnicodeDecodeError, csv.Error) as exc:
        raise LatentAtlasError(f"corrupt training history {path}: {exc}") from None
    return rows


# --------------------------------------------------------------------------- validation before any write


@dataclass(frozen=True)
class RunConfig:
    """The three sections of a run's config.json."""

    model: ModelConfig
    train: TrainConfig
    data: DataConfig

    def to_dict(self) -> dict:
        return {"model": self.model.to_dict(), "train": self.train.to_dict(), "data": self.data.to_dict()}


def read_run_config(run_dir: str | os.PathLike) -> RunConfig:
    """RUN/config.json, every section checked by type and range; one clear line naming the file if not."""
    path = Path(run_dir) / "config.json"
    document = read_json(path)
    if not isinstance(document, dict) or set(document) != {"model", "train", "data"}:
        raise LatentAtlasError(f"{path} must hold exactly the sections model, train and data")
    try:
        return RunConfig(
            model=ModelConfig.from_dict(document["model"]),
            train=TrainConfig.from_dict(document["train"]),
            data=DataConfig.from_dict(document["data"]),
        )
    except LatentAtlasError as exc:
        raise LatentAtlasError(f"invalid {path}: {exc}") from None


def _describe_difference(old: dict, new: dict) -> str:
    keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return ", ".join(f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in keys)


def _check_resume(run_dir: Path, data: DataConfig, model: ModelConfig, config: TrainConfig) -> dict:
    """Compare the request with the saved run; returns the saved train_state."""
    if not (run_dir / "config.json").is_file() or not (run_dir / "train_state.json").is_file():
        raise LatentAtlasError(f"cannot resume: {run_dir} holds no checkpoint; train without --resume first")
    saved = read_run_config(run_dir)
    saved_model = saved.model.to_dict()
    if saved_model != model.to_dict():
        raise LatentAtlasError(
            f"cannot resume {run_dir} with a different architecture "
            f"({_describe_difference(saved_model, model.to_dict())})"
        )
    saved_data = saved.data.to_dict()
    if saved_data != data.to_dict():
        raise LatentAtlasError(
            f"cannot resume {run_dir} with different data ({_describe_difference(saved_data, data.to_dict())})"
        )
    saved_train = saved.train
    for name in ("seed", "val_fraction"):  # both decide the split, which must not move
        if getattr(saved_train, name) != getattr(config, name):
            raise LatentAtlasError(
                f"cannot resume {run_dir} with a different {name} "
                f"({getattr(saved_train, name)} -> {getattr(config, name)})"
            )
    for name in ("model.safetensors", "optimizer.safetensors", "split.npy"):
        if not (run_dir / name).is_file():
            raise LatentAtlasError(f"cannot resume: {run_dir / name} is missing")
    return read_json(run_dir / "train_state.json")


def _load_and_split(
    run_dir: Path, data: DataConfig, model: ModelConfig, config: TrainConfig, resume: bool, progress: bool
) -> tuple[ImageSet, np.ndarray]:
    if data.image_size != model.image_size:
        raise LatentAtlasError(f"data image size {data.image_size} differs from the model's {model.image_size}")
    images = load_images(data, progress=progress)
    n = len(images.images)
    if n < 2:
        raise LatentAtlasError(f"training needs at least 2 images, {data.source} has {n}")
    if resume:
        split = np.asarray(load_npy(run_dir / "split.npy", mmap=False))
        if len(split) != n:
            raise LatentAtlasError(f"cannot resume: split.npy has {len(split)} entries but the data has {n} images")
    else:
        split = make_split(n, config.val_fraction, config.seed)
    return images, split


# --------------------------------------------------------------------------- the loop


def train(
    run_dir: str | os.PathLike,
    data: DataConfig,
    model: ModelConfig,
    config: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    device: torch.device | str | None = None,
) -> Path:
    """Train an autoencoder into `run_dir` (or continue one with `resume`); returns the run folder.

    `config.epochs` is the total: resuming a 2-epoch run with epochs=4 trains epochs 3 and 4.
    Everything is validated (and the data loaded) before the first file is written.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise LatentAtlasError(f"{run_dir} exists and is not a folder")
    if not resume and ((run_dir / "model.safetensors").exists() or (run_dir / "train_state.json").exists()):
        raise LatentAtlasError(f"{run_dir} already holds a trained model; use --resume or another --out")
    train_state = _check_resume(run_dir, data, model, config) if resume else {}
    device = torch.device(device) if device is not None else default_device()
    device, progress = distributed.setup(device), progress and distributed.is_main()  # torchrun: this rank's
    if resume:
        distributed.check_resume(run_dir, train_state)
    with distributed.main_first():
        imageset, split = _load_and_split(run_dir, data, model, config, resume, progress)

    with torch.random.fork_rng(devices=[]):  # seeding must not disturb the caller's global RNG
        torch.manual_seed(config.seed)
        net = Autoencoder(model)
    # Module.to accepts memory_format at runtime; torch's type stubs omit it.
    net = net.to(device=device, memory_format=torch.channels_last)  # pyright: ignore[reportCallIssue]
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    history = []
    start_epoch = 0
    if resume:
        load_model_weights(net, run_dir / "model.safetensors")
        load_optimizer(optimizer, run_dir / "optimizer.safetensors")
        for group in optimizer.param_groups:
            group["lr"] = config.lr  # a resumed run may continue with another learning rate
        start_epoch = int(train_state.get("epochs_done", 0))
        history = [row for row in read_history(run_dir / "history.csv") if row["epoch"] <= start_epoch]

    train_feeder = _BatchFeeder(imageset.images, np.flatnonzero(split == 0), device=device)
    val_feeder = _BatchFeeder(imageset.images, np.flatnonzero(split == 1), device=device)
    best = min((row["val_loss"] for row in history if math.isfinite(row["val_loss"])), default=float("inf"))
    config_json = {"model": model.to_dict(), "train": config.to_dict(), "data": data.to_dict()}

    trainer = distributed.wrap(net)  # net itself in one process
    net.train()
    with _deterministic(device):
        for epoch in range(start_epoch + 1, config.epochs + 1):
            started = time.perf_counter()
            train_loss = _train_epoch(trainer, optimizer, train_feeder, device, config, epoch, progress)
            seconds = time.perf_counter() - started
            train_loss = distributed.average(train_loss)
            val_loss = evaluate_loss(net, val_feeder, device)
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "seconds": seconds,
                    "images_per_s": len(train_feeder) / seconds,
                }
            )
            best = min(best, val_loss) if math.isfinite(val_loss) else best
            if distributed.is_main():
                _write_checkpoint(run_dir, net, optimizer, split, config_json, history, epoch, best, imageset, device)
            if progress:
                log_epoch(history[-1], config.epochs)
    distributed.barrier()  # every rank returns once the checkpoint is complete
    return run_dir


def log_epoch(row: dict, epochs: int) -> None:
    """One line per epoch on stderr, on a terminal or not (a batch job's log shows progress too)."""
    print(
        f"epoch {row['epoch']}/{epochs}: train loss {row['train_loss']:.5f}, val loss {row['val_loss']:.5f}, "
        f"{row['images_per_s']:.0f} images/s",
        file=sys.stderr,
        flush=True,
    )


def _train_epoch(
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    feeder: _BatchFeeder,
    device: torch.device,
    config: TrainConfig,
    epoch: int,
    progress: bool,
) -> float:
    order = distributed.shard(torch.randperm(len(feeder), generator=epoch_generator(config.seed, epoch)))
    total, seen = 0.0, 0
    started = time.perf_counter()
    bar = tqdm(
        total=len(order),
        desc=f"epoch {epoch}/{config.epochs}",
        unit="img",
        disable=None if progress else True,
        leave=True,
    )
    with bar:
        for batch in feeder.batches(order, config.batch_size):
            x = to_model_input(batch, device)
            with _autocast(device):
                loss = F.mse_loss(net(x).float(), x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            # .item() syncs with the GPU; once per batch is cheap next to a forward/backward pass.
            total += loss.item() * len(x)
            seen += len(x)
            bar.update(len(x))
            bar.set_postfix(loss=f"{total / seen:.5f}", img_s=f"{seen / (time.perf_counter() - started):.0f}")
    return total / seen


def _write_checkpoint(
    run_dir: Path,
    net: Autoencoder,
    optimizer: torch.optim.Optimizer,
    split: np.ndarray,
    config_json: dict,
    history: list[dict],
    epoch: int,
    best: float,
    imageset: ImageSet,
    device: torch.device,
) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "split.npy").is_file():
        save_npy(run_dir / "split.npy", split)
    write_json(run_dir / "config.json", config_json)
    save_model(net, run_dir / "model.safetensors")
    save_optimizer(optimizer, run_dir / "optimizer.safetensors")
    write_text(run_dir / "history.csv", history_text(history))
    last = history[-1]
    write_json(
        run_dir / "train_state.json",
        {
            "epochs_done": epoch,
            "train_loss": last["train_loss"],
            "val_loss": last["val_loss"],
            "best_val_loss": best,
            "seed": config_json["train"]["seed"],
            "shuffle_seeds": "torch.Generator per epoch from numpy SeedSequence([seed, epoch])",
            "n_images": len(split),
            "n_train": int((split == 0).sum()),
            "n_val": int((split == 1).sum()),
            "skipped_files": len(imageset.skipped),
            "device": device.type,
            "world_size": distributed.world_size(),
            "torch": torch.__version__,
        },
    )


__all__ = [
    "TrainConfig",
    "RunConfig",
    "read_run_config",
    "log_epoch",
    "train",
    "make_split",
    "epoch_generator",
    "use_all_cores",
    "read_history",
]
