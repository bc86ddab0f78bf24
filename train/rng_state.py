"""The RNG state of a run's ranks, saved in checkpoints and restored on resume. Only
dropout draws from it: the data order and MLM masks are pure functions of the seed."""

from __future__ import annotations

import torch
import torch.distributed as dist

from strata.train.runtime import Runtime


def _rng_state(device: torch.device) -> torch.Tensor:
    """This process's RNG states as one byte tensor: CPU's, then the device's on CUDA."""
    states = [torch.get_rng_state()]
    if device.type == "cuda":
        states.append(torch.cuda.get_rng_state(device))
    return torch.cat(states)


def gather_rng(rt: Runtime) -> list[torch.Tensor]:
    """Every rank's RNG state, in rank order, on rank 0 (a collective: all ranks call it)."""
    mine = _rng_state(rt.device)
    if rt.world_size == 1:
        return [mine]
    on_device = mine.to(rt.device)
    gathered = [torch.empty_like(on_device) for _ in range(rt.world_size)]
    dist.all_gather(gathered, on_device)
    return [t.cpu() for t in gathered]


def restore_rng(states: list[torch.Tensor], rt: Runtime, seed: int, step: int) -> None:
    """Each rank takes its saved state; with another world size than the checkpoint's, the
    states cannot map to ranks, so each rank reseeds from (seed, step, rank). Only dropout
    draws from these: the data order and MLM masks are pure functions of the seed."""
    if len(states) != rt.world_size:
        torch.manual_seed((seed * 1_000_003 + step) * 1_000_003 + rt.rank)
        return
    state = states[rt.rank]
    cpu_size = torch.get_rng_state().numel()
    torch.set_rng_state(state[:cpu_size])
    if rt.device.type == "cuda":
        torch.cuda.set_rng_state(state[cpu_size:], rt.device)
