"""Data-parallel training over several processes with PyTorch DDP (`torchrun` or `train --devices N`).

The training loop calls the hooks below; without a process group (a plain `latentatlas train`) every
hook is the identity and the loop runs exactly as in a single process.

- `setup` joins the process group that `torchrun` (or `launch`) describes in the environment: NCCL on
  GPUs (one GPU per rank, `cuda:LOCAL_RANK`), gloo on the CPU.
- `shard`: every rank draws the same seeded epoch permutation and takes every `world_size`-th entry
  starting at its rank, the tail cut so all ranks take the same number of steps. Rank r's t-th batch of
  b images is then exactly its part of the one-process batch t of b·world_size images: with DDP's
  gradient averaging, N processes at batch B/N follow the one-process run at batch B.
- Batch norm: on GPUs the layers become `SyncBatchNorm`, so statistics are taken over the whole global
  batch as in one process. PyTorch's SyncBatchNorm has no CPU kernel, so on the CPU (gloo) each rank
  normalises with its own B/N images' statistics, and the running statistics saved are rank 0's.
- Only rank 0 writes checkpoints, history and progress; every rank takes rank 0's validation loss
  (`from_main`), so early stopping and the lr schedule decide alike; `barrier` at the end lets every
  rank return after the checkpoint is complete.
- A checkpoint records its world size; the shards depend on it, so `--resume` with another number of
  processes is refused (the resumed run would not be the uninterrupted one).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from latentatlas.errors import LatentAtlasError
from latentatlas.io import usable_cores


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """True on rank 0, the one process that writes files and prints progress."""
    return rank() == 0


def requested_world_size() -> int:
    """The number of processes torchrun started (1 outside torchrun)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        raise LatentAtlasError(f"WORLD_SIZE must be an integer, got {os.environ['WORLD_SIZE']!r}") from None


def setup(device: torch.device) -> torch.device:
    """Join torchrun's process group (once per process); returns this rank's device. Outside torchrun: `device`."""
    if requested_world_size() == 1:
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise LatentAtlasError(f"rank {local_rank} has no GPU: {torch.cuda.device_count()} visible")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_leave)
        if device.type == "cpu" and not any(os.environ.get(v) for v in ("OMP_NUM_THREADS", "TORCH_NUM_THREADS")):
            cores = usable_cores()
            local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size())))
            torch.set_num_threads(max(1, cores // local_world))  # the ranks share the cores
    return device


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def shard(order: torch.Tensor) -> torch.Tensor:
    """This rank's share of an epoch's permutation (all of it in one process); see the module docstring."""
    size = world_size()
    if size == 1:
        return order
    usable = len(order) - len(order) % size
    return order[rank() : usable : size]


def wrap(model: nn.Module) -> nn.Module:
    """The module the training steps call: `model` itself in one process, else DDP around it (with
    SyncBatchNorm on GPUs, converted in place, so `model` keeps its class and state-dict keys)."""
    if world_size() == 1:
        return model
    device = next(model.parameters()).device
    if device.type == "cuda":
        nn.SyncBatchNorm.convert_sync_batchnorm(model)  # the root is no batch norm: its children are replaced
        return DistributedDataParallel(model, device_ids=[device])
    return DistributedDataParallel(model)


def average(value: float) -> float:
    """The mean of `value` over the ranks (equal shards: the mean loss over the whole epoch)."""
    size = world_size()
    if size == 1:
        return value
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    total = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return float(total.item()) / size


def from_main(value: float) -> float:
    """Rank 0's `value` on every rank, so that decisions taken from it (early stopping) agree."""
    if world_size() == 1:
        return value
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    shared = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(shared, src=0)
    return float(shared.item())


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (it fills the image cache), the other ranks then reuse its work."""
    if not is_main():
        barrier()
    try:
        yield
    finally:  # also after a failure: the other ranks then meet the same error themselves instead of waiting
        if is_main():
            barrier()


def check_resume(run_dir: Path, train_state: dict) -> None:
    """Refuse to resume a checkpoint made by another number of processes: the epoch shards depend on it."""
    saved = int(train_state.get("world_size", 1))
    if saved != world_size():
        raise LatentAtlasError(
            f"cannot resume {run_dir}: it was trained by {saved} process(es), this run has {world_size()}; "
            f"resume with --devices {saved} (the epoch shards depend on the number of processes)"
        )


def _run_worker(function: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[str, Any]:
    """One rank's entry point: a LatentAtlasError comes back as a value, so the launcher prints one line."""
    try:
        return "ok", function(*args, **kwargs)
    except LatentAtlasError as exc:
        return "error", str(exc)


def launch(devices: int | None, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run `function(*args, **kwargs)` in `devices` processes with torch's elastic launcher (what torchrun
    runs: a local rendezvous, RANK/WORLD_SIZE/LOCAL_RANK set per process); returns rank 0's result.
    One device, or already inside torchrun: a plain call in this process."""
    if devices is None or devices == 1 or requested_world_size() > 1:
        return function(*args, **kwargs)
    if devices < 1:
        raise LatentAtlasError(f"--devices must be >= 1, got {devices}")
    if torch.cuda.is_available() and devices > torch.cuda.device_count():
        raise LatentAtlasError(f"--devices {devices}: only {torch.cuda.device_count()} GPU(s) are visible")
    # function-level: the elastic launcher is a large import that only a multi-process launch needs
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=devices,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        start_method="spawn",
    )
    try:
        results = elastic_launch(config, _run_worker)(function, args, kwargs)
    except ChildFailedError as exc:
        first = next(iter(exc.failures.values()), None)
        reason = first.message if first is not None else str(exc)
        raise LatentAtlasError(f"a training process failed: {str(reason).strip().splitlines()[-1]}") from None
    status, value = results[0]
    if status == "error":
        raise LatentAtlasError(value)
    return value


__all__ = [
    "world_size",
    "rank",
    "is_main",
    "setup",
    "shard",
    "wrap",
    "average",
    "from_main",
    "barrier",
    "main_first",
    "check_resume",
    "launch",
]
