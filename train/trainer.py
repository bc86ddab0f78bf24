"""The training loop of `strata train`: CLM or MLM pretraining on a build's shard stream.

    data        the train split's windows mixed by category shares (StreamingWindows),
                made by a BatchLoader; stream step s is optimizer step s: its global batch
                is batch_size x grad_accum x world_size windows, so a run resumed on another
                number of ranks (same global batch) continues the same sample order
    step        grad_accum micro-batches (DDP all-reduces on the last one only), gradient
                clipping, AdamW (fused on CUDA), linear warmup then cosine to min_lr
    eval        every eval_every steps and at the end: loss and perplexity per category on
                the val shards (the same val windows every time)
    checkpoint  every save_every steps and at the end (train/checkpoint.py); the lineage of
                every step it includes is flushed first
    records     RUN/run.json, RUN/metrics.jsonl, RUN/tensorboard/, RUN/consumed/*.parquet
                (which block and token range each step trained on), RUN/summary.json at the
                end, and a progress line

Run it in one process, or under torchrun (one process per GPU; NCCL on GPU, gloo on CPU).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from strata.config import ConfigError, TrainConfig
from strata.manifests.manifest import read_manifest
from strata.redact import redact_strings, redact_url
from strata.storage import remove_leftovers, write_bytes_atomic
from strata.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from strata.train.data import LEFTOVER, BatchLoader, ConsumedWriter, StreamingWindows
from strata.train.hf_import import init_model
from strata.train.objectives import IGNORE_INDEX, clm_batch, mlm_batch, segments_from_eos
from strata.train.presets import model_for
from strata.version import __version__

log = logging.getLogger("strata.train")


# --------------------------------------------------------------------------- processes and devices


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


# --------------------------------------------------------------------------- batches and loss


@dataclass
class Objective:
    """Turns a batch of windows into (inputs, labels, segments) on the device."""

    name: str
    seed: int
    vocab_size: int
    specials: dict
    mlm_rate: float
    doc_mask: bool

    def __call__(self, batch: Mapping, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        tokens = batch["tokens"]
        if self.name == "clm":
            x, y = clm_batch(tokens)
        else:
            x, y = mlm_batch(
                tokens, batch["sample_id"].tolist(), seed=self.seed, epoch=batch["epoch"].tolist(),
                vocab_size=self.vocab_size, special_ids=self.special_ids, mask_id=self.specials["mask"],
                rate=self.mlm_rate,
            )
        segments = segments_from_eos(x, self.specials["eos"]) if self.doc_mask else None
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return move(x), move(y), move(segments)

    @property
    def special_ids(self) -> list[int]:
        """Tokens MLM never chooses: control pieces (user-defined symbols stay maskable)."""
        return [i for name, i in self.specials.items() if name in ("pad", "unk", "bos", "eos", "mask") and i is not None]


def micro_batches(batch: Mapping, count: int) -> Iterator[dict]:
    """A local batch split into `count` micro-batches of consecutive windows."""
    size = len(batch["tokens"]) // count
    for i in range(count):
        part = slice(i * size, (i + 1) * size)
        yield {"tokens": batch["tokens"][part], "sample_id": batch["sample_id"][part], "epoch": batch["epoch"][part]}


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup over `warmup` steps, then cosine from lr to min_lr at `steps`."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not biases, norms), fused on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=device.type == "cuda")


# --------------------------------------------------------------------------- records


class Metrics:
    """RUN/metrics.jsonl and RUN/tensorboard/ (rank 0 only). Rows: {"kind": "train", "step",
    "loss" (mean of the steps since the previous row), "lr", "grad_norm" (of the step),
    "tokens", "tokens_per_s", "time"} and {"kind": "val", "step",
    "category" (or "all"), "loss", "perplexity", "tokens"}. A resumed run appends rows for
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
        tag = row["kind"] if row["kind"] == "train" else f"val/{row['category']}"
        for name in ("loss", "lr", "grad_norm", "tokens_per_s", "perplexity"):
            if name in row:
                self.board.add_scalar(f"{tag}/{name}", row[name], row["step"])

    def close(self) -> None:
        if self.enabled:
            self.file.close()
            self.board.close()


def progress_line(step: int, steps: int, loss: float, lr: float, tokens_per_s: float, elapsed: float, done: int) -> str:
    eta = elapsed / max(1, done) * (steps - step)
    return (
        f"step {step:>{len(str(steps))}}/{steps}  loss {loss:.4f}  lr {lr:.2e}  "
        f"{tokens_per_s / 1e3:,.1f}k tok/s  eta {int(eta // 60)}m{int(eta % 60):02d}s"
    )


# --------------------------------------------------------------------------- evaluation


class Validation:
    """Per-category val streams, read from their start at every evaluation: at most
    eval_batches global batches of a category, and no more than its val tokens hold."""

    def __init__(self, cfg: TrainConfig, rt: Runtime, manifest: dict, categories: list[str], extra_token: bool):
        self.streams: dict[str, tuple[StreamingWindows, int]] = {}
        for category in categories:
            val_tokens = manifest["categories"][category].get("val_tokens", 0)
            window = cfg.seq_len + int(extra_token)
            batches = min(cfg.eval_batches, val_tokens // (window * cfg.batch_size * rt.world_size))
            if batches == 0:
                continue
            ds = StreamingWindows(
                cfg.data, "val", seq_len=cfg.seq_len, extra_token=extra_token,
                global_batch=cfg.batch_size * rt.world_size, rank=rt.rank, world_size=rt.world_size,
                seed=cfg.seed, weights={category: 1.0}, end_step=batches, readahead=2, verify=cfg.verify,
            )
            self.streams[category] = (ds, batches)

    @torch.no_grad()
    def run(self, model: torch.nn.Module, objective: Objective, rt: Runtime, autocast) -> dict[str, dict]:
        model.eval()
        results = {}
        total_loss = total_count = 0.0
        for category, (ds, _) in self.streams.items():
            ds.start_step = 0
            loss_sum = count = 0.0
            for batch in ds.batches():
                x, y, segments = objective(batch, rt.device)
                with autocast:
                    _, loss = model(x, y, segments)
                n = int((y != IGNORE_INDEX).sum())
                loss_sum += float(loss) * n
                count += n
            loss_sum, count = all_reduce_sum(rt, loss_sum, count)
            total_loss, total_count = total_loss + loss_sum, total_count + count
            results[category] = {"loss": loss_sum / count, "tokens": int(count)}
        if total_count:
            results["all"] = {"loss": total_loss / total_count, "tokens": int(total_count)}
        for r in results.values():
            r["perplexity"] = math.exp(min(r["loss"], 50.0))
        model.train()
        return results


# --------------------------------------------------------------------------- the run


def train(cfg: TrainConfig) -> dict:
    """Train as `cfg` says; returns the summary (also written to RUN/summary.json once the
    run has reached cfg.steps)."""
    rt = start_runtime(cfg.device)
    try:
        return Trainer(cfg, rt).fit()
    finally:
        stop_runtime()


@dataclass
class LogWindow:
    """What the steps since the last progress line add up to. The loss is summed on the
    device, so a step does not wait for the GPU; it is read once a line."""

    start: float
    loss: torch.Tensor
    steps: int = 0
    tokens: int = 0

    def reset(self) -> None:
        self.start, self.steps, self.tokens = time.perf_counter(), 0, 0
        self.loss.zero_()


class Trainer:
    """One rank's training run: built from the config (resuming from RUN's latest
    checkpoint with --resume), then `fit`."""

    def __init__(self, cfg: TrainConfig, rt: Runtime):
        self.cfg, self.rt = cfg, rt
        self.run = Path(cfg.out)
        self.run.mkdir(parents=True, exist_ok=True)
        if rt.rank == 0:  # what a killed run left; each rank clears its own consumed parts
            remove_leftovers(str(self.run), lambda name: not LEFTOVER.search(name))
        checkpoint = latest_checkpoint(self.run)
        if checkpoint is not None and not cfg.resume:
            raise ConfigError(f"out: {self.run} already holds checkpoints; pass --resume to continue it, or choose a new --out")
        torch.manual_seed(cfg.seed + rt.rank)  # DDP gives every rank rank 0's initial weights

        # data
        manifest = read_manifest(cfg.data)
        extra_token = cfg.objective == "clm"
        self.global_batch = cfg.batch_size * cfg.grad_accum * rt.world_size
        self.data = StreamingWindows(
            cfg.data, "train", seq_len=cfg.seq_len, extra_token=extra_token, global_batch=self.global_batch,
            rank=rt.rank, world_size=rt.world_size, seed=cfg.seed, weights=cfg.weights, end_step=cfg.steps,
            verify=cfg.verify,
        )
        workers = cfg.num_workers if cfg.num_workers is not None else (2 if rt.device.type == "cuda" else 0)
        self.loader = BatchLoader(self.data, num_workers=workers, pin_memory=rt.device.type == "cuda")
        tokenizer = manifest["tokenizer"]
        self.objective = Objective(cfg.objective, cfg.seed, tokenizer["vocab_size"], tokenizer["special_ids"],
                                   cfg.mlm_rate, cfg.doc_mask)
        self.validation = Validation(cfg, rt, manifest, sorted(self.data.plan.mix.shares), extra_token)

        # model and optimizer
        if cfg.init_from:
            self.raw = init_model(cfg.init_from, cfg.objective, tokenizer["vocab_size"], cfg.seq_len, cfg.dropout)
        else:
            self.raw = model_for(cfg.objective, cfg.model, tokenizer["vocab_size"], cfg.seq_len, dropout=cfg.dropout)
        self.raw.to(rt.device)
        self.optimizer = make_optimizer(self.raw, cfg, rt.device)
        # A plain function: LambdaLR's state_dict then holds only numbers (weights_only loads it).
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_at(s, cfg) / cfg.lr)
        self.step = self.tokens = 0
        if checkpoint is not None:
            self._load(checkpoint)
        self.model = torch.compile(self.raw) if cfg.compile else self.raw
        if rt.world_size > 1:
            self.model = DDP(self.model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)
        cuda = rt.device.type == "cuda"
        self.precision = cfg.precision if cfg.precision != "auto" else ("bf16" if cuda else "fp32")
        self.autocast = torch.autocast(rt.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

        # records
        if rt.main:
            self._write_run_record(manifest)
        self.metrics = Metrics(self.run, rt.main)
        self.consumed = ConsumedWriter(str(self.run), self.data.shard_of, rt.rank, rt.world_size, self.step,
                                       cfg.consumed_flush_every)

    def _load(self, checkpoint: Path) -> None:
        model_state, state = load_checkpoint(checkpoint, self.rt.device)
        self.raw.load_state_dict(model_state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.loader.load_state_dict(state["data"])
        self.step, self.tokens = state["step"], state["tokens"]
        _restore_rng(state["rng"], self.rt, self.cfg.seed, self.step)
        log.info("resumed from %s at step %d", checkpoint, self.step)

    def _write_run_record(self, manifest: dict) -> None:
        cfg = self.cfg
        record = {
            "config": redact_strings(cfg.model_dump(mode="json")), "data": redact_url(cfg.data),
            "objective": cfg.objective, "seed": cfg.seed,
            "seq_len": cfg.seq_len, "global_batch": self.global_batch, "steps": cfg.steps,
            "shares": self.data.plan.mix.shares, "window_tokens": self.data.plan.window,
            "world_size": self.rt.world_size, "precision": self.precision, "parameters": self.raw.num_params(),
            "model_config": dataclasses.asdict(self.raw.config), "init_from": cfg.init_from,
            "stream_fingerprint": self.data.fingerprint, "manifest_config_hash": manifest.get("config_hash"),
            "strata_version": __version__,
        }
        write_bytes_atomic(str(self.run / "run.json"), json.dumps(record, indent=2, sort_keys=True).encode())

    def train_step(self, batch: Mapping) -> tuple[torch.Tensor, torch.Tensor, float]:
        """One optimizer step on a local batch: (loss, grad norm) as device tensors, and the lr used."""
        cfg, rt = self.cfg, self.rt
        parts = [self.objective(part, rt.device) for part in micro_batches(batch, cfg.grad_accum)]
        labelled = sum(int((y != IGNORE_INDEX).sum()) for _, y, _ in parts)
        total = torch.zeros((), device=rt.device)
        for i, (x, y, segments) in enumerate(parts):
            sync = i == len(parts) - 1 or rt.world_size == 1  # DDP all-reduces on the last micro-batch only
            with (contextlib.nullcontext() if sync else self.model.no_sync()), self.autocast:
                _, loss = self.model(x, y, segments)
                # Mean over the local batch's labelled tokens: MLM micro-batches hold unequal counts.
                share = loss * (int((y != IGNORE_INDEX).sum()) / labelled)
            share.backward()
            total += share.detach()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.raw.parameters(), cfg.grad_clip or float("inf"))
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total, grad_norm, lr

    def evaluate(self) -> dict[str, dict]:
        val = self.validation.run(self.model, self.objective, self.rt, self.autocast)
        for category, r in val.items():
            self.metrics.write({"kind": "val", "step": self.step, "category": category, **r})
        if self.rt.main and val:
            print(f"val step {self.step}: " + "  ".join(f"{c} {r['loss']:.4f}" for c, r in val.items()), flush=True)
        return val

    def save(self) -> None:
        """A checkpoint of every rank's state after self.step steps (all ranks call it)."""
        self.consumed.flush()  # the lineage of every step the checkpoint includes
        rng = _gather_rng(self.rt)
        if self.rt.main:
            state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                     "data": self.loader.state_dict(), "step": self.step, "tokens": self.tokens, "rng": rng}
            meta = {"step": self.step, "world_size": self.rt.world_size, "tokens": self.tokens,
                    "config": redact_strings(self.cfg.model_dump(mode="json"))}
            save_checkpoint(self.run, self.step, self.raw.state_dict(), state, meta, self.cfg.keep_checkpoints)
        if self.rt.world_size > 1:
            dist.barrier()

    def fit(self) -> dict:
        cfg, rt = self.cfg, self.rt
        last = min(cfg.steps, cfg.stop_at or cfg.steps)
        first, started = self.step, time.perf_counter()
        window = LogWindow(started, torch.zeros((), device=rt.device))
        losses: list[tuple[int, float]] = []
        val: dict[str, dict] = {}
        self.model.train()
        batches = iter(self.loader)
        while self.step < last:
            batch = next(batches)
            assert batch["step"] == self.step, f"the loader gave step {batch['step']} at step {self.step}"
            loss, grad_norm, lr = self.train_step(batch)
            self.consumed.write(self.step, batch)
            self.step += 1
            self.tokens += self.global_batch * cfg.seq_len
            window.loss += loss
            window.steps += 1
            window.tokens += self.global_batch * cfg.seq_len

            if self.step % cfg.log_every == 0 or self.step == last:
                # the mean loss of the window's steps, over all ranks
                mean_loss = all_reduce_sum(rt, float(window.loss) / window.steps)[0] / rt.world_size
                now = time.perf_counter()
                rate = window.tokens / (now - window.start)
                losses.append((self.step, mean_loss))
                self.metrics.write({"kind": "train", "step": self.step, "loss": mean_loss, "lr": lr,
                                    "grad_norm": float(grad_norm), "tokens": self.tokens, "tokens_per_s": rate,
                                    "time": time.time()})
                if rt.main:
                    print(progress_line(self.step, cfg.steps, mean_loss, lr, rate, now - started, self.step - first),
                          flush=True)
                window.reset()
            if (cfg.eval_every and self.step % cfg.eval_every == 0) or self.step == last:
                val = self.evaluate()
                window.start = time.perf_counter()  # tokens/s counts training only
            if (cfg.save_every and self.step % cfg.save_every == 0) or self.step == last:
                self.save()
                window.start = time.perf_counter()

        for stream in [self.data, *(ds for ds, _ in self.validation.streams.values())]:
            stream.finish_checks()  # a run ends well only if every shard it read is the manifest's
        self.consumed.close()
        self.metrics.close()
        summary = {
            "steps": self.step, "of": cfg.steps, "resumed_at": first, "tokens": self.tokens,
            "seconds": time.perf_counter() - started, "train_loss": losses, "val": val,
            "consumed": str(self.run / "consumed"), "checkpoint": str(latest_checkpoint(self.run)),
        }
        if rt.main and self.step == cfg.steps and self.step > first:  # only a finished run has a summary
            write_bytes_atomic(str(self.run / "summary.json"), json.dumps(summary, indent=2).encode())
        return summary


# --------------------------------------------------------------------------- RNG state


def _rng_state(device: torch.device) -> torch.Tensor:
    """This process's RNG states as one byte tensor: CPU's, then the device's on CUDA."""
    states = [torch.get_rng_state()]
    if device.type == "cuda":
        states.append(torch.cuda.get_rng_state(device))
    return torch.cat(states)


def _gather_rng(rt: Runtime) -> list[torch.Tensor]:
    """Every rank's RNG state, in rank order, on rank 0 (a collective: all ranks call it)."""
    mine = _rng_state(rt.device)
    if rt.world_size == 1:
        return [mine]
    on_device = mine.to(rt.device)
    gathered = [torch.empty_like(on_device) for _ in range(rt.world_size)]
    dist.all_gather(gathered, on_device)
    return [t.cpu() for t in gathered]


def _restore_rng(states: list[torch.Tensor], rt: Runtime, seed: int, step: int) -> None:
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
