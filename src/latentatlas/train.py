"""Training: the loop, exact resume, learning-rate schedules, early stopping and divergence checks.

Every epoch ends in one checkpoint folder committed by a rename (see `latentatlas.checkpoint`), so a
kill at any moment leaves the previous or the new checkpoint. Resuming reproduces the uninterrupted run
bit for bit on CPU: the batch order of every epoch comes from a generator seeded by (seed, epoch) alone,
the Adam state is saved exactly, and the schedule's state lives in train_state.json.

The batches come from `feeder.BatchFeeder`; the run's config.json and the resume check from `run_config`.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from latentatlas import checks, distributed
from latentatlas.checkpoint import (
    clean_stale_temporaries,
    latest_checkpoint,
    load_optimizer,
    publish_latest,
    read_history,
    write_checkpoint,
)
from latentatlas.config import DataConfig, TrainConfig
from latentatlas.data import ImageSet, load_images
from latentatlas.errors import LatentAtlasError
from latentatlas.feeder import BatchFeeder
from latentatlas.io import load_npy, save_npy, usable_cores, write_json
from latentatlas.model import (
    Autoencoder,
    ModelConfig,
    default_device,
    estimate_activations,
    estimate_parameters,
    load_model_weights,
    parse_device,
    to_model_input,
)
from latentatlas.progress import Progress, log_line
from latentatlas.run_config import RunConfig, check_resume, read_run_config

# The plateau schedule halves the learning rate after every PLATEAU_EPOCHS epochs without a better validation loss.
PLATEAU_EPOCHS = 2
PLATEAU_DECAY = 0.5
ON_EPOCH_IMAGES = 16  # held-out images handed to `on_epoch` for reconstructions


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
    torch.set_num_threads(usable_cores())


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


def evaluate_loss(model: Autoencoder, feeder: BatchFeeder, device: torch.device, batch_size: int = 256) -> float:
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


def _load_and_split(
    run_dir: Path, data: DataConfig, model: ModelConfig, config: TrainConfig, resume: bool, progress: bool
) -> tuple[ImageSet, np.ndarray]:
    if data.image_size != model.image_size:
        raise LatentAtlasError(f"data image size {data.image_size} differs from the model's {model.image_size}")
    checks.allocation((estimate_parameters(model),), 4 * 4, "the model, its gradients and Adam's state")
    images = load_images(data, progress=progress)
    n = len(images.images)
    if n < 2:
        raise LatentAtlasError(f"training needs at least 2 images, {data.source} has {n}")
    if resume:
        split = np.asarray(load_npy(run_dir / "split.npy", mmap=False))
        if split.ndim != 1 or len(split) != n or not np.isin(split, (0, 1)).all():
            raise LatentAtlasError(f"cannot resume: {run_dir / 'split.npy'} is not a 0/1 split of the {n} images")
    else:
        split = make_split(n, config.val_fraction, config.seed)
    return images, split


def _check_training_memory(model: ModelConfig, batch_size: int, device: torch.device) -> None:
    """Refuse a model and batch that cannot fit where they will live, before allocating them: weights,
    gradients, Adam's two moments and its temporaries (6 floats per parameter), and one batch's activations
    and their gradients (2 floats per activation)."""
    needed = 4 * (6 * estimate_parameters(model) + 2 * batch_size * estimate_activations(model))
    available = None
    if device.type == "cuda":
        available = torch.cuda.mem_get_info(device)[0]
    elif device.type == "cpu":
        available = checks.available_memory()
    hint = "use a smaller --image-size, --channels, --latent-dim or --batch-size"
    what = f"training {model.image_size} px images in batches of {batch_size}"
    if available is not None:
        checks.memory(needed, what, available, hint)


# --------------------------------------------------------------------------- the loop


def learning_rate_factor(config: TrainConfig, epoch: int, plateau_factor: float) -> float:
    """The factor applied to `config.lr` in `epoch` (1-based): cosine decay over `config.epochs`, or the
    factor the plateau rule has reached, or 1."""
    if config.lr_schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / config.epochs))
    if config.lr_schedule == "plateau":
        return plateau_factor
    return 1.0


def train(
    run_dir: str | os.PathLike,
    data: DataConfig,
    model: ModelConfig,
    config: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    device: torch.device | str | None = None,
    on_epoch: Callable[[dict, Autoencoder, np.ndarray], None] | None = None,
) -> Path:
    """Train an autoencoder into `run_dir` (or continue one with `resume`); returns the run folder.

    `on_epoch(row, model, images)` runs in the main process after each epoch's checkpoint, with the epoch's
    history row, the model, and the same held-out uint8 images every epoch (up to ON_EPOCH_IMAGES; training
    images when nothing is held out), e.g. for reconstructions: `tensorboard_log.TensorBoardLog` is one.

    `config.epochs` is the total: resuming a 2-epoch run with epochs=4 trains epochs 3 and 4.
    Everything is validated (and the data loaded) before the first file is written. A non-finite loss
    stops training with a LatentAtlasError; the last committed (finite) checkpoint stays.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise LatentAtlasError(f"{run_dir} exists and is not a folder")
    if not resume and latest_checkpoint(run_dir) is not None:
        raise LatentAtlasError(f"{run_dir} already holds a trained model; use --resume or another --out")
    last = check_resume(run_dir, data, model, config) if resume else None
    device = parse_device(device) if device is not None else default_device()
    device, progress = distributed.setup(device), progress and distributed.is_main()  # torchrun: this rank's
    if last is not None:
        distributed.check_resume(run_dir, last.state)
    with distributed.main_first():
        imageset, split = _load_and_split(run_dir, data, model, config, resume, progress)

    _check_training_memory(model, min(config.batch_size, max(int((split == 0).sum()), 1)), device)

    with torch.random.fork_rng(devices=[]):  # seeding must not disturb the caller's global RNG
        torch.manual_seed(config.seed)
        net = Autoencoder(model)
    # Module.to accepts memory_format at runtime; torch's type stubs omit it.
    net = net.to(device=device, memory_format=torch.channels_last)  # pyright: ignore[reportCallIssue]
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    history: list[dict] = []
    state: dict = {"epochs_done": 0, "best_epoch": None, "best_val_loss": float("inf"), "lr_factor": 1.0}
    if last is not None:
        load_model_weights(net, last.model_path)
        load_optimizer(optimizer, last.optimizer_path)
        history = [row for row in read_history(last.history_path) if row["epoch"] <= last.epoch]
        state.update({k: last.state[k] for k in ("best_epoch", "lr_factor", "epochs_since_best") if k in last.state})
        state["epochs_done"] = last.epoch
        best = last.state.get("best_val_loss")
        state["best_val_loss"] = float(best) if isinstance(best, (int, float)) else float("inf")
    clean_stale_temporaries(run_dir)

    train_feeder = BatchFeeder(imageset.images, np.flatnonzero(split == 0), device=device)
    val_feeder = BatchFeeder(imageset.images, np.flatnonzero(split == 1), device=device)
    fixed = {
        "seed": config.seed,
        "shuffle_seeds": "torch.Generator per epoch from numpy SeedSequence([seed, epoch])",
        "n_images": len(split),
        "n_train": int((split == 0).sum()),
        "n_val": int((split == 1).sum()),
        "skipped_files": len(imageset.skipped),
        "device": device.type,
        "world_size": distributed.world_size(),
        "torch": torch.__version__,
    }
    run_files_written = False
    shown = np.flatnonzero(split == 1)[:ON_EPOCH_IMAGES]
    shown = shown if len(shown) else np.flatnonzero(split == 0)[:ON_EPOCH_IMAGES]

    trainer = distributed.wrap(net)  # net itself in one process
    net.train()
    with _deterministic(device):
        for epoch in range(state["epochs_done"] + 1, config.epochs + 1):
            if config.patience is not None and state.get("epochs_since_best", 0) >= config.patience:
                break
            lr = config.lr * learning_rate_factor(config, epoch, state["lr_factor"])
            for group in optimizer.param_groups:
                group["lr"] = lr  # a resumed run may continue with another learning rate or schedule
            started = time.perf_counter()
            train_loss = _train_epoch(trainer, optimizer, train_feeder, device, config, epoch, progress)
            train_loss = distributed.average(train_loss)
            if not math.isfinite(train_loss):
                _diverged(epoch, train_loss, "training", state)
            if not all(torch.isfinite(p).all() for p in net.parameters()):
                _diverged(epoch, float("nan"), "weights'", state)
            seconds = time.perf_counter() - started
            val_loss = distributed.from_main(evaluate_loss(net, val_feeder, device))  # one early-stop decision
            if not math.isfinite(val_loss) and len(val_feeder):
                _diverged(epoch, val_loss, "validation", state)
            row = {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "seconds": seconds,
                "images_per_s": len(train_feeder) / seconds,
                "lr": lr,
            }
            history.append(row)
            _update_progress_state(state, config, epoch, val_loss)
            if (
                not run_files_written and distributed.is_main()
            ):  # config and split belong to this training, written before its first commit
                write_json(run_dir / "config.json", RunConfig(model, config, data).to_dict())
                save_npy(run_dir / "split.npy", split)
                run_files_written = True
            state_row = {**fixed, **state, "train_loss": train_loss, "val_loss": val_loss, "lr": lr}
            best_epoch = state["best_epoch"]
            if distributed.is_main():
                write_checkpoint(run_dir, net, optimizer, history, state_row, keep=lambda e, b=best_epoch: e == b)
            if on_epoch is not None and distributed.is_main():
                on_epoch(row, net, np.asarray(imageset.images[shown]))
            if progress:
                log_epoch(row, config.epochs)
            if config.patience is not None and state["epochs_since_best"] >= config.patience and progress:
                log_line(
                    f"early stop after epoch {epoch}: no better validation loss for {config.patience} epochs "
                    f"(best {state['best_val_loss']:.5f} at epoch {state['best_epoch']})"
                )
    if distributed.is_main():  # a kill after the last commit left the top-level copies behind it
        publish_latest(run_dir)
    distributed.barrier()  # every rank returns once the checkpoint is complete
    return run_dir


def _update_progress_state(state: dict, config: TrainConfig, epoch: int, val_loss: float) -> None:
    """Best epoch, epochs without improvement, and the plateau rule's learning-rate factor."""
    state["epochs_done"] = epoch
    if not math.isfinite(val_loss):  # no validation set: the last epoch counts as the best
        state.update(best_epoch=epoch, epochs_since_best=0)
        return
    if val_loss < state["best_val_loss"]:
        state.update(best_epoch=epoch, best_val_loss=val_loss, epochs_since_best=0)
    else:
        state["epochs_since_best"] = state.get("epochs_since_best", 0) + 1
        if config.lr_schedule == "plateau" and state["epochs_since_best"] % PLATEAU_EPOCHS == 0:
            state["lr_factor"] = state["lr_factor"] * PLATEAU_DECAY


def _diverged(epoch: int, loss: float, which: str, state: dict) -> None:
    kept = f"the checkpoint of epoch {state['epochs_done']} is kept" if state["epochs_done"] else "nothing was saved"
    raise LatentAtlasError(
        f"training diverged in epoch {epoch}: the {which} loss became {loss}; {kept}; try a smaller --lr"
    )


def log_epoch(row: dict, epochs: int) -> None:
    """One line per epoch on stderr, on a terminal or not (a batch job's log shows progress too)."""
    log_line(
        f"epoch {row['epoch']}/{epochs}: train loss {row['train_loss']:.5f}, val loss {row['val_loss']:.5f}, "
        f"{row['images_per_s']:.0f} images/s"
    )


def _train_epoch(
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    feeder: BatchFeeder,
    device: torch.device,
    config: TrainConfig,
    epoch: int,
    progress: bool,
) -> float:
    order = distributed.shard(torch.randperm(len(feeder), generator=epoch_generator(config.seed, epoch)))
    total, seen = 0.0, 0
    started = time.perf_counter()
    # within an epoch: a bar on a terminal, a line every 10 s in a log; `log_epoch` prints the epoch's summary
    bar = Progress(
        len(order), f"epoch {epoch}/{config.epochs}", "img", enabled=progress, final_line=False, redraw_every=0.1
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
            value = loss.item()
            if not math.isfinite(value):
                return value  # the caller stops with a clear message; no checkpoint of this epoch is written
            total += value * len(x)
            seen += len(x)
            bar.update(len(x), f"loss {total / seen:.5f}, {seen / (time.perf_counter() - started):.0f} img/s")
    return total / seen


__all__ = [
    "BatchFeeder",
    "TrainConfig",
    "RunConfig",
    "read_run_config",
    "log_epoch",
    "train",
    "make_split",
    "epoch_generator",
    "use_all_cores",
    "read_history",
    "estimate_parameters",
    "learning_rate_factor",
]
