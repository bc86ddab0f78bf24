"""`strata train`: its flags (the names of TrainConfig's keys) and the summary it prints."""

from __future__ import annotations

import argparse
import os


def _weights(text: str) -> dict[str, float]:
    """--weights CAT=W,CAT=W"""
    try:
        return {name.strip(): float(value) for name, value in (item.split("=", 1) for item in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CATEGORY=WEIGHT[,CATEGORY=WEIGHT...], got {text!r}") from None


def _train(args: argparse.Namespace) -> int:
    from strata.config import load_train_config

    overrides = {
        k: v for k, v in vars(args).items() if k not in ("command", "func", "config", "verbose", "debug", "beam_args")
    }
    config = load_train_config(args.config, overrides)  # before torch's long import
    from strata.train.trainer import train

    summary = train(config)
    if int(os.environ.get("RANK", "0")) == 0 and summary["train_loss"]:
        (first_step, first), (last_step, last) = summary["train_loss"][0], summary["train_loss"][-1]
        best_step, best = min(summary["train_loss"], key=lambda point: point[1])
        print(f"train loss: step {first_step} {first:.4f} -> step {last_step} {last:.4f} (lowest {best:.4f} at step {best_step})")
        curve = summary["train_loss"][:: max(1, len(summary["train_loss"]) // 10)]
        print("  curve: " + "  ".join(f"{step}:{loss:.2f}" for step, loss in curve))
        for category, r in summary["val"].items():
            print(f"  val {category:<26} loss {r['loss']:.4f}  perplexity {r['perplexity']:.2f}  ({r['tokens']} tokens)")
        print(f"checkpoint: {summary['checkpoint']}")
        print(f"lineage: {summary['consumed']} (which block and token range every step trained on)")
    return 0


def add_parsers(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="pretrain a model on a build's shards with an objective of the literature",
        description=(
            "Streams the shards of a build (folder, s3://, gs://, https://), mixed by the manifest's category "
            "shares or --weights, and trains. Every setting can also come from a YAML file (--config; its keys "
            "are the flags' names with underscores); flags override it. Under torchrun, one process per GPU."
        ),
        argument_default=argparse.SUPPRESS,
    )
    train.add_argument("--config", default=None, help="YAML file of settings")
    train.add_argument("--data", help="the build's OUT")
    train.add_argument("--out", help="the run folder RUN")
    train.add_argument("--objective", help="clm, mlm, prefix_lm, span_corruption, ul2, bart, spanbert, electra, nsp, sop, "
                       "xlnet (README: Objectives)")
    train.add_argument("--model", help="preset: tiny, gpt2-small, bert-base, gpt-350m, gpt-1b, t5-tiny, t5-small")
    train.add_argument("--seq-len", type=int)
    train.add_argument("--batch-size", type=int, help="windows per rank per micro-batch")
    train.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step")
    train.add_argument("--steps", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--min-lr", type=float)
    train.add_argument("--warmup", type=int, help="warmup steps")
    train.add_argument("--weight-decay", type=float)
    train.add_argument("--grad-clip", type=float)
    train.add_argument("--dropout", type=float)
    train.add_argument("--seed", type=int)
    train.add_argument("--weights", type=_weights, help="CATEGORY=WEIGHT,... (default: the manifest's shares)")
    train.add_argument("--doc-mask", action="store_true", help="attention and positions stay within each document")
    train.add_argument("--mlm-rate", type=float, help="MLM: share of tokens chosen (0.15)")
    train.add_argument("--whole-word", action="store_true", help="mlm: mask whole words")
    train.add_argument("--no-sbo", dest="sbo", action="store_false", help="spanbert: no span boundary objective")
    train.add_argument("--generator-ratio", type=float,
                       help="electra: generator width as a share of the discriminator's (0.25)")
    train.add_argument("--xlnet-k", type=int, help="xlnet: predict the last 1/K of the factorization order (6)")
    train.add_argument("--prefix-split", choices=("uniform", "document"), help="prefix LM split point (uniform)")
    train.add_argument("--noise-density", type=float, help="span corruption: share of tokens dropped (0.15)")
    train.add_argument("--mean-span", type=float, help="span corruption: mean span length (3)")
    train.add_argument("--decoder-only", action="store_true",
                       help="span_corruption, ul2: train the GPT through the prefix mask, not the encoder-decoder")
    train.add_argument("--ul2-mixture", type=_weights, help="UL2 mode weights, e.g. R=2,X=4,S=1 (the paper's)")
    train.add_argument("--bart-rate", type=float, help="BART text infilling: share of tokens masked (0.3)")
    train.add_argument("--bart-poisson", type=float, help="BART: mean span length, Poisson (3)")
    train.add_argument("--no-bart-permute", dest="bart_permute", action="store_false",
                       help="BART: no sentence permutation")
    train.add_argument("--precision", choices=("auto", "bf16", "fp32"))
    train.add_argument("--compile", action="store_true", help="torch.compile the model")
    train.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    train.add_argument("--num-workers", type=int, help="loader processes (default: 2 on CUDA, 0 on CPU)")
    train.add_argument("--eval-every", type=int)
    train.add_argument("--eval-batches", type=int)
    train.add_argument("--save-every", type=int)
    train.add_argument("--keep-checkpoints", type=int)
    train.add_argument("--log-every", type=int)
    train.add_argument("--resume", action="store_true", help="continue from RUN's latest checkpoint")
    train.add_argument("--init-from", metavar="DIR",
                       help="start from a Hugging Face checkpoint (GPT-2 family for clm, RoBERTa-PreLayerNorm for mlm)")
    train.add_argument(
        "--no-verify", dest="verify", action="store_false",
        help="do not check shards against the manifest (size, sha256, block checksums): at your own risk",
    )
    train.add_argument(
        "--verify-every-run", action="store_true",
        help="hash every shard read in every run, not once per machine (the record in STRATA_CACHE_DIR)",
    )
    train.set_defaults(func=_train)
