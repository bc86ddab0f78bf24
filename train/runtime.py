"""The processes and devices of a run: one process, or one per GPU under torchrun."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Runtime:
    rank: int
    world_size: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def start_runtime(device: str) -> Runtime:
    """One process, or one of torchrun's (WORLD_SIZE, RANK, LOCAL_RANK in the environment)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        torch.set_float32_matmul_precision("high")  # TF32 for the fp32 matmuls autocast leaves
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    return Runtime(rank, world_size, dev)


def stop_runtime() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(rt: Runtime, *values: float) -> list[float]:
    if rt.world_size == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=rt.device)
    dist.all_reduce(t)
    return t.tolist()


def on_device(inputs: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """An objective's batch (CPU tensors) on the device."""
    return {name: t.to(device, non_blocking=True) for name, t in inputs.items()}
