"""The training loop of `strata train`: pretraining on a build's shard stream with any
objective of train/objectives/ (each turns windows into model inputs and a loss).

    data        the train split's windows mixed by category shares (StreamingWindows),
                made by a BatchLoader; stream step s is optimizer step s: its global batch
                is batch_size x grad_accum x world_size windows, so a run resumed on another
                number of ranks (same global batch) continues the same sample order
    step        grad_accum micro-batches (DDP all-reduces on the last one only), gradient
                clipping, AdamW (optimizer.py: fused on CUDA), linear warmup then cosine
                to min_lr (schedule.py)
    eval        every eval_every steps and at the end: loss, perplexity and bits per byte per
                category on the val shards (the same val windows every time; validation.py)
    checkpoint  every save_every steps and at the end (checkpoint.py, with every rank's RNG
                state: rng_state.py); the lineage of every step it includes is flushed first
    records     RUN/run.json, RUN/metrics.jsonl, RUN/tensorboard/, RUN/consumed/*.parquet
                (which block and token range each step trained on), RUN/summary.json at the
                end, and a progress line (metrics.py)

Run it in one process, or under torchrun (one process per GPU; NCCL on GPU, gloo on CPU).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Iterator, Mapping

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from strata.config import ConfigError, TrainConfig
from strata.manifests.layout import RUN_LOCK, consumed_leftover_rank
from strata.manifests.lock import FolderLock
from strata.manifests.manifest import Manifest
from strata.redact import redact_strings, redact_url
from strata.storage import remove_leftovers, write_bytes_atomic
from strata.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from strata.train.data import BatchLoader, ConsumedWriter, StreamingWindows
from strata.train.hf_import import init_model
from strata.train.metrics import LogWindow, Metrics, progress_line
from strata.train.objectives import Vocabulary, objective_for
from strata.train.optimizer import make_optimizer
from strata.train.rng_state import gather_rng, restore_rng
from strata.train.runtime import Runtime, all_reduce_sum, on_device, start_runtime, stop_runtime
from strata.train.schedule import make_scheduler
from strata.train.validation import Validation, build_pieces
from strata.version import __version__

log = logging.getLogger("strata.train")


# --------------------------------------------------------------------------- batches and loss


def micro_batches(batch: Mapping, count: int) -> Iterator[dict]:
    """A local batch split into `count` micro-batches of consecutive windows."""
    size = len(batch["tokens"]) // count
    for i in range(count):
        part = slice(i * size, (i + 1) * size)
        yield {"tokens": batch["tokens"][part], "sample_id": batch["sample_id"][part], "epoch": batch["epoch"][part]}


# --------------------------------------------------------------------------- the run


def train(cfg: TrainConfig) -> dict:
    """Train as `cfg` says, holding RUN's lock (RUN/train.lock, taken by rank 0); returns
    the summary (also written to RUN/summary.json once the run has reached cfg.steps)."""
    rt = start_runtime(cfg.device)
    try:
        Path(cfg.out).mkdir(parents=True, exist_ok=True)
        with FolderLock(cfg.out, RUN_LOCK, "RUN") if rt.main else contextlib.nullcontext():
            return Trainer(cfg, rt).fit()
    finally:
        stop_runtime()


class Trainer:
    """One rank's training run: built from the config (resuming from RUN's latest
    checkpoint with --resume), then `fit`."""

    def __init__(self, cfg: TrainConfig, rt: Runtime):
        self.cfg, self.rt = cfg, rt
        self.run = Path(cfg.out)
        self.run.mkdir(parents=True, exist_ok=True)
        if rt.rank == 0:  # what a killed run left; each rank clears its own consumed parts
            remove_leftovers(str(self.run), lambda name: consumed_leftover_rank(name) is None)
        checkpoint = latest_checkpoint(self.run)
        if checkpoint is not None and not cfg.resume:
            raise ConfigError(f"out: {self.run} already holds checkpoints; pass --resume to continue it, or choose a new --out")
        torch.manual_seed(cfg.seed + rt.rank)  # DDP gives every rank rank 0's initial weights

        # data
        manifest = Manifest.read(cfg.data)
        tokenizer = manifest.tokenizer
        pieces = build_pieces(cfg.data, tokenizer)
        self.objective = objective_for(cfg.objective, cfg, Vocabulary.of(tokenizer, pieces))
        extra_token = self.objective.extra_token
        self.global_batch = cfg.batch_size * cfg.grad_accum * rt.world_size
        self.data = StreamingWindows(
            cfg.data, "train", seq_len=cfg.seq_len, extra_token=extra_token, global_batch=self.global_batch,
            rank=rt.rank, world_size=rt.world_size, seed=cfg.seed, weights=cfg.weights, end_step=cfg.steps,
            verify=cfg.verify, verify_every_run=cfg.verify_every_run,
        )
        workers = cfg.num_workers if cfg.num_workers is not None else (2 if rt.device.type == "cuda" else 0)
        self.loader = BatchLoader(self.data, num_workers=workers, pin_memory=rt.device.type == "cuda")
        self.validation = Validation(cfg, rt, manifest, sorted(self.data.plan.mix.shares), self.objective, pieces)

        # model and optimizer
        if cfg.init_from:
            self.raw = init_model(cfg.init_from, self.objective.architecture, tokenizer.vocab_size, cfg.seq_len,
                                  cfg.dropout)
        else:
            self.raw = self.objective.build_model(cfg.model, tokenizer.vocab_size, cfg.seq_len, dropout=cfg.dropout)
        self.raw.to(rt.device)
        self.optimizer = make_optimizer(self.raw, cfg, rt.device)
        self.scheduler = make_scheduler(self.optimizer, cfg)
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
        restore_rng(state["rng"], self.rt, self.cfg.seed, self.step)
        log.info("resumed from %s at step %d", checkpoint, self.step)

    def _write_run_record(self, manifest: Manifest) -> None:
        cfg = self.cfg
        record = {
            "config": redact_strings(cfg.model_dump(mode="json")), "data": redact_url(cfg.data),
            "objective": cfg.objective, "seed": cfg.seed,
            "seq_len": cfg.seq_len, "global_batch": self.global_batch, "steps": cfg.steps,
            "shares": self.data.plan.mix.shares, "window_tokens": self.data.plan.window,
            "world_size": self.rt.world_size, "precision": self.precision, "parameters": self.raw.num_params(),
            "model_config": dataclasses.asdict(self.raw.config), "init_from": cfg.init_from,
            "stream_fingerprint": self.data.fingerprint, "manifest_config_hash": manifest.config_hash,
            "strata_version": __version__,
        }
        write_bytes_atomic(str(self.run / "run.json"), json.dumps(record, indent=2, sort_keys=True).encode())

    def train_step(self, batch: Mapping) -> tuple[torch.Tensor, torch.Tensor, float, dict[str, float]]:
        """One optimizer step on a local batch: (loss, grad norm) as device tensors, the lr
        used, and the objective's extras (means over the micro-batches)."""
        cfg, rt = self.cfg, self.rt
        parts = [self.objective.batch(part["tokens"], part["sample_id"], part["epoch"])
                 for part in micro_batches(batch, cfg.grad_accum)]
        labelled = sum(self.objective.num_targets(inputs) for inputs in parts)
        total = torch.zeros((), device=rt.device)
        extras: dict[str, float] = {}
        for i, inputs in enumerate(parts):
            sync = i == len(parts) - 1 or rt.world_size == 1  # DDP all-reduces on the last micro-batch only
            with (contextlib.nullcontext() if sync else self.model.no_sync()), self.autocast:
                loss, n, more = self.objective.loss(self.model, on_device(inputs, rt.device))
                # Mean over the local batch's targets: micro-batches may hold unequal counts.
                share = loss * (n / labelled)
            share.backward()
            total += share.detach()
            for name, value in more.items():
                extras[name] = extras.get(name, 0.0) + float(value) / len(parts)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.raw.parameters(), cfg.grad_clip or float("inf"))
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total, grad_norm, lr, extras

    def evaluate(self) -> dict[str, dict]:
        val = self.validation.run(self.model, self.objective, self.rt, self.autocast)
        for category, r in val.items():
            self.metrics.write({"kind": "val", "step": self.step, "category": category, **r})
        if self.rt.main and val:
            print(f"val step {self.step}: " + "  ".join(
                f"{c} {r['loss']:.4f}" + (f" ({r['bpb']:.3f} bpb)" if "bpb" in r else "") for c, r in val.items()), flush=True)
        return val

    def save(self) -> None:
        """A checkpoint of every rank's state after self.step steps (all ranks call it)."""
        self.consumed.flush()  # the lineage of every step the checkpoint includes
        rng = gather_rng(self.rt)
        if self.rt.main:
            state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                     "data": self.loader.state_dict(), "step": self.step, "tokens": self.tokens, "rng": rng}
            meta = {"step": self.step, "world_size": self.rt.world_size, "tokens": self.tokens,
                    "config": redact_strings(self.cfg.model_dump(mode="json"))}
            save_checkpoint(self.run, self.step, self.raw.state_dict(), state, meta, self.cfg.keep_checkpoints,
                            self.objective.exports(self.raw))
        if self.rt.world_size > 1:
            dist.barrier()

    def log_progress(self, window: LogWindow, lr: float, grad_norm: torch.Tensor, started: float, first: int) -> float:
        """The mean loss of the window's steps over all ranks, written as a metrics row and
        a progress line; the window starts afresh."""
        rt = self.rt
        mean_loss, *means = (v / window.steps / rt.world_size for v in all_reduce_sum(
            rt, float(window.loss), *window.extras.values()))
        now = time.perf_counter()
        rate = window.tokens / (now - window.start)
        self.metrics.write({"kind": "train", "step": self.step, "loss": mean_loss, "lr": lr,
                            "grad_norm": float(grad_norm), "tokens": self.tokens, "tokens_per_s": rate,
                            "time": time.time(), **dict(zip(window.extras, means))})
        if rt.main:
            print(progress_line(self.step, self.cfg.steps, mean_loss, lr, rate, now - started, self.step - first),
                  flush=True)
        window.reset()
        return mean_loss

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
            loss, grad_norm, lr, extras = self.train_step(batch)
            self.consumed.write(self.step, batch)
            self.step += 1
            self.tokens += self.global_batch * cfg.seq_len
            window.add(loss, self.global_batch * cfg.seq_len, extras)

            if self.step % cfg.log_every == 0 or self.step == last:
                losses.append((self.step, self.log_progress(window, lr, grad_norm, started, first)))
            if (cfg.eval_every and self.step % cfg.eval_every == 0) or self.step == last:
                val = self.evaluate()
                window.start = time.perf_counter()  # tokens/s counts training only
            if (cfg.save_every and self.step % cfg.save_every == 0) or self.step == last:
                self.save()
                window.start = time.perf_counter()

        for stream in [self.data, *self.validation.streams.values()]:
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
