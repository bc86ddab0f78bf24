"""What a training run reports as it goes: RUN/metrics.jsonl and TensorBoard (`Metrics`),
the progress line, and the running sums of the steps since the last line (`LogWindow`)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch


class Metrics:
    """RUN/metrics.jsonl and RUN/tensorboard/ (rank 0 only). Rows: {"kind": "train", "step",
    "loss" (mean of the steps since the previous row), "lr", "grad_norm" (of the step),
    "tokens", "tokens_per_s", "time", and the objective's extras} and {"kind": "val", "step",
    "category" (or "all"), "loss", "perplexity", "tokens", "bpb", "word_perplexity"
    (validation.py)}; in TensorBoard train/NAME, val/NAME (all) and val/CATEGORY/NAME. A resumed run appends rows for
    steps after its checkpoint again: the last row of a (kind, step, category) counts."""

    def __init__(self, run: Path, enabled: bool):
        self.enabled = enabled
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter

        self.file = open(run / "metrics.jsonl", "a", encoding="utf-8")
        self.board = SummaryWriter(str(run / "tensorboard"))

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        tag = "train" if row["kind"] == "train" else "val" if row["category"] == "all" else f"val/{row['category']}"
        for name, value in row.items():
            if name not in ("kind", "step", "category", "tokens", "time"):
                self.board.add_scalar(f"{tag}/{name}", value, row["step"])

    def close(self) -> None:
        if self.enabled:
            self.file.close()
            self.board.close()


@dataclass
class LogWindow:
    """What the steps since the last progress line add up to. The loss is summed on the
    device, so a step does not wait for the GPU; it is read once a line."""

    start: float
    loss: torch.Tensor
    steps: int = 0
    tokens: int = 0
    extras: dict[str, float] = field(default_factory=dict)

    def add(self, loss: torch.Tensor, tokens: int, extras: dict[str, float]) -> None:
        """One step's loss (a device tensor), global tokens and objective extras."""
        self.loss += loss
        self.steps += 1
        self.tokens += tokens
        for name, value in extras.items():
            self.extras[name] = self.extras.get(name, 0.0) + value

    def reset(self) -> None:
        self.start, self.steps, self.tokens, self.extras = time.perf_counter(), 0, 0, {}
        self.loss.zero_()


def progress_line(step: int, steps: int, loss: float, lr: float, tokens_per_s: float, elapsed: float, done: int) -> str:
    eta = elapsed / max(1, done) * (steps - step)
    return (
        f"step {step:>{len(str(steps))}}/{steps}  loss {loss:.4f}  lr {lr:.2e}  "
        f"{tokens_per_s / 1e3:,.1f}k tok/s  eta {int(eta // 60)}m{int(eta % 60):02d}s"
    )
