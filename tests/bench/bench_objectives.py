"""What each pretraining objective costs and reaches: every objective of the registry trains
the `tiny` preset on the CPU for the same number of tokens of the same build.

    python tests/bench/bench_objectives.py [--steps 150] [--seq-len 128] [--batch-size 8]
                                           [--objectives clm,ul2,...] [--data OUT]

1. the demo build (configs/demo.yaml: the standard library, 8,000-piece tokenizer with
   the objective specials), made once in out/bench/objectives-build; or --data, any
   build whose tokenizer has the objective specials;
2. for each objective, `strata train` (in this process) for --steps steps of
   batch-size x seq-len window tokens, with its default options, the same seed, and
   validation at the end (4 batches per category);
3. a table: tokens/s (window tokens, from the run's own metrics, the first 20 steps
   aside), the final validation loss (nats per target token: NOT comparable between
   objectives, whose targets differ) and bits per byte (val/bpb: nats of the target
   tokens over the UTF-8 bytes they stand for / ln 2; comparable only between objectives
   that predict the same text, e.g. clm and prefix_lm).

Objectives run one after the other; on a shared machine the tokens/s of one row may meet
other load than the next, so run it twice when the ratios matter.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

import torch

from bench_trainer import ensure_build

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "out" / "bench" / "objectives-build"
WARMUP = 20


def run_objective(name: str, args) -> dict:
    """tokens/s, and the final validation row over all categories, of one objective."""
    from strata.config import load_train_config
    from strata.train.trainer import train

    with tempfile.TemporaryDirectory(prefix="strata-bench-objective-") as run:
        cfg = load_train_config(None, dict(
            data=args.data, out=run, objective=name, model="tiny", seq_len=args.seq_len,
            batch_size=args.batch_size, steps=args.steps, lr=3e-3, min_lr=3e-4, warmup=20, seed=0,
            log_every=10, eval_every=0, save_every=0, eval_batches=4, num_workers=0,
        ))
        with contextlib.redirect_stdout(io.StringIO()):  # its progress lines: only the table here
            summary = train(cfg)
        rows = [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]
    windows = [r for r in rows if r["kind"] == "train" and r["step"] > WARMUP]
    tokens = 10 * args.batch_size * args.seq_len
    rate = len(windows) * tokens / sum(tokens / r["tokens_per_s"] for r in windows)
    return {"tokens_per_s": rate, **summary["val"]["all"]}


def main(argv: list[str] | None = None) -> int:
    from strata.train.objectives import OBJECTIVES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--objectives", default=",".join(OBJECTIVES), help="comma-separated (default: every one)")
    parser.add_argument("--data", help="a build to use instead of the demo build")
    args = parser.parse_args(argv)
    if args.data is None:
        ensure_build(BUILD)
        args.data = str(BUILD)
    names = args.objectives.split(",")
    tokens = args.steps * args.batch_size * args.seq_len
    print(f"tiny preset, CPU ({torch.get_num_threads()} threads), {args.steps} steps x {args.batch_size} x "
          f"{args.seq_len} = {tokens:,} window tokens each, seed 0, build {args.data}")
    print(f"{'objective':<16} {'model':<12} {'tokens/s':>10} {'val loss':>9} {'val bpb':>8}")
    failed = 0
    for name in names:
        try:
            r = run_objective(name, args)
        except Exception as err:  # one objective's failure should not hide the others' figures
            failed += 1
            print(f"{name:<16} failed: {type(err).__name__}: {err}", flush=True)
            continue
        bpb = f"{r['bpb']:>8.3f}" if "bpb" in r else f"{'-':>8}"
        print(f"{name:<16} {OBJECTIVES[name].architecture:<12} {r['tokens_per_s']:>10,.0f} {r['loss']:>9.4f} {bpb}",
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
