"""The learning-rate schedule of `strata train`: linear warmup, then cosine to min_lr."""

from __future__ import annotations

import math

import torch

from strata.config import TrainConfig


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup over `warmup` steps, then cosine from lr to min_lr at `steps`."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """`lr_at` as a LambdaLR over `optimizer` (whose base lr is cfg.lr). The factor is a
    plain function: LambdaLR's state_dict then holds only numbers (weights_only loads it)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_at(step, cfg) / cfg.lr)
