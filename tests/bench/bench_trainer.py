"""Trainer-overhead benchmark: tokens/s of the `tiny` model through `strata train` against the
same model and optimizer step on batches already in memory.

    python tests/bench/bench_trainer.py [--steps 300] [--seq-len 256] [--batch-size 16] [--repeat 3]

1. the demo build (configs/demo.yaml: the standard library, 8,000-piece tokenizer), made
   once in out/bench/trainer-build;
2. in-memory: model_for("clm", "tiny"), the trainer's own AdamW and LR schedule, gradient
   clipping; 64 batches of windows taken from the same stream beforehand, cycled, so the
   loop does nothing but forward, backward and the optimizer step;
3. strata train (train/trainer.py, in this process): streaming from the shards, mixing,
   packing, the CLM shift, consumed lineage (flushed every 100 steps), metrics, a loss
   read back every 10 steps; evaluation and checkpoints off until the end;
4. both take the same steps; tokens/s is over the steps after the first 20 (start-up and
   allocator warm-up aside), the median of --repeat runs taken in turn, range beside it.
   Prints the ratio strata/in-memory (target >= 0.9).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "out" / "bench" / "trainer-build"
WARMUP = 20


def ensure_build(build: Path = BUILD) -> None:
    """The demo corpus built into `build`, once (shared by the benchmarks that train)."""
    if (build / "manifest.json").exists():
        return
    print(f"building the demo corpus into {build} ...", flush=True)
    shutil.rmtree(build, ignore_errors=True)
    strata = Path(sys.executable).parent / "strata"
    subprocess.run([str(strata), "build", str(REPO / "configs" / "demo.yaml"), "--out", str(build)], check=True)


def settings(args, run: Path) -> dict:
    return dict(
        data=str(BUILD), out=str(run), objective="clm", model="tiny", seq_len=args.seq_len,
        batch_size=args.batch_size, steps=args.steps, warmup=10, seed=0, log_every=10,
        eval_every=0, save_every=0, eval_batches=1, num_workers=0,
    )


def in_memory(args) -> float:
    """tokens/s of the bare training step on batches held in memory."""
    from strata.config import load_train_config
    from strata.train.data import StreamingWindows
    from strata.train.objectives import clm_batch
    from strata.train.presets import model_for
    from strata.train.optimizer import make_optimizer
    from strata.train.schedule import make_scheduler

    cfg = load_train_config(None, settings(args, Path("unused")))
    stream = StreamingWindows(str(BUILD), seq_len=cfg.seq_len, extra_token=True, global_batch=cfg.batch_size,
                              seed=0, end_step=64)
    batches = [clm_batch(b["tokens"]) for b in stream.batches()]
    vocab = stream.vocab_size
    torch.manual_seed(0)
    model = model_for("clm", "tiny", vocab, cfg.seq_len).train()
    optimizer = make_optimizer(model, cfg, torch.device("cpu"))
    scheduler = make_scheduler(optimizer, cfg)
    start = None
    for step in range(cfg.steps):
        if step == WARMUP:
            start = time.perf_counter()
        x, y = batches[step % len(batches)]
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if (step + 1) % cfg.log_every == 0:
            loss.item()
    return (cfg.steps - WARMUP) * cfg.batch_size * cfg.seq_len / (time.perf_counter() - start)


def through_strata(args) -> float:
    """tokens/s of `strata train`, from its own metrics: the log windows after WARMUP steps."""
    from strata.config import load_train_config
    from strata.train.trainer import train

    with tempfile.TemporaryDirectory(prefix="strata-bench-run-") as run:
        train(load_train_config(None, settings(args, Path(run))))
        rows = [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]
    windows = [r for r in rows if r["kind"] == "train" and r["step"] > WARMUP]
    seconds = sum(10 * args.batch_size * args.seq_len / r["tokens_per_s"] for r in windows)
    return len(windows) * 10 * args.batch_size * args.seq_len / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    ensure_build()
    results: dict[str, list[float]] = {"in-memory": [], "strata": []}
    for _ in range(args.repeat):  # in turn, so drifting machine load hits both alike
        results["in-memory"].append(in_memory(args))
        results["strata"].append(through_strata(args))
    threads = torch.get_num_threads()
    for name, rates in results.items():
        print(
            f"trainer {name:<10} tiny clm  batch={args.batch_size}x{args.seq_len}  steps={args.steps}  "
            f"tokens/s={statistics.median(rates):,.0f}  (range {min(rates):,.0f}-{max(rates):,.0f}, "
            f"{args.repeat} runs, {threads} threads)"
        )
    ratio = statistics.median(results["strata"]) / statistics.median(results["in-memory"])
    print(f"ratio   strata train / in-memory batches = {ratio:.3f}  (target >= 0.9)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
