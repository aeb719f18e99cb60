"""The batch feeder of training: uint8 image batches in a given order, from RAM (or the GPU) when the set
fits there, else read from the memory-mapped cache chunk by chunk, each chunk in disk order."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

# Training images are held in RAM as uint8; above this size they are streamed from the memmap in chunks.
RAM_BUDGET_BYTES = 4 * 2**30


class BatchFeeder:
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


__all__ = ["RAM_BUDGET_BYTES", "BatchFeeder"]
