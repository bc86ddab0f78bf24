"""The `strata` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from strata.config import ConfigError, load_config
from strata.version import __version__

BUILD_STAGES = ("curate",)


def _build(args: argparse.Namespace) -> int:
    from strata.pipeline.curate import run_curate

    config = load_config(args.config)
    summary = run_curate(config, args.out, args.beam_args)
    fates = summary["fates"]
    print(
        f"curated {fates['kept']} of {summary['records']} records "
        f"(dropped {fates['dropped']}, duplicates {fates['duplicate']}, quarantined {fates['quarantined']}) "
        f"in {summary['seconds']:.1f}s"
    )
    for category, c in summary["categories"].items():
        print(f"  {category:<28} {c['docs']:>8} docs {c['bytes'] / 1e6:>10.2f} MB")
    print(f"summary: {args.out.rstrip('/')}/curate.json")
    return 0


def _quality_train(args: argparse.Namespace) -> int:
    from strata.pipeline.quality import train_quality_model

    record = train_quality_model(
        args.positive,
        args.negative,
        args.out,
        epoch=args.epoch,
        lr=args.lr,
        word_ngrams=args.word_ngrams,
        dim=args.dim,
        bucket=args.bucket,
        seed=args.seed,
        threads=args.threads,
    )
    print(json.dumps(record, indent=2, sort_keys=True))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strata",
        description="Build LLM pretraining corpora, tokenizers and training streams, with full lineage.",
    )
    parser.add_argument("--version", action="version", version=f"strata {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log Beam's own messages too")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = commands.add_parser(
        "build",
        help="run the corpus build (curate with Apache Beam) from a YAML config",
        description=(
            "Run the corpus build described by CONFIG into OUT (a folder or an object-store prefix). "
            "Arguments after `--` go to Apache Beam unchanged, e.g. "
            "`strata build cfg.yaml --out out -- --runner=FlinkRunner --flink_master=host:8081`. "
            "Default: the DirectRunner in multi-process mode on all cores."
        ),
    )
    build.add_argument("config", help="YAML build config (see README, 'Config reference')")
    build.add_argument("--out", required=True, help="output folder or s3://, gs:// prefix")
    build.add_argument("--until", choices=BUILD_STAGES, default=BUILD_STAGES[-1], help="stop after this stage")
    build.set_defaults(func=_build)

    quality = commands.add_parser("quality", help="fastText quality classifier")
    quality_commands = quality.add_subparsers(dest="quality_command", required=True, metavar="COMMAND")
    train = quality_commands.add_parser(
        "train",
        help="train a fastText classifier: positive (high quality) vs negative documents",
        description="Inputs: .txt (one document per line), .jsonl[.gz|.zst] (field `text`), or .parquet (column `text`).",
    )
    train.add_argument("--positive", nargs="+", required=True, help="files of high-quality documents")
    train.add_argument("--negative", nargs="+", required=True, help="files of low-quality documents")
    train.add_argument("--out", required=True, help="model file to write (a .json record is written beside it)")
    train.add_argument("--epoch", type=int, default=5)
    train.add_argument("--lr", type=float, default=0.1)
    train.add_argument("--word-ngrams", type=int, default=2)
    train.add_argument("--dim", type=int, default=64)
    train.add_argument("--bucket", type=int, default=200_000, help="hashed n-gram buckets (model size grows with it)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--threads", type=int, default=None, help="default: all cores; 1 gives a reproducible model")
    train.set_defaults(func=_quality_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    beam_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, beam_args = argv[:cut], argv[cut + 1 :]
    args = build_parser().parse_args(argv)
    args.beam_args = beam_args
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    if not args.verbose:
        logging.getLogger("apache_beam").setLevel(logging.ERROR)
        logging.getLogger("distributed").setLevel(logging.WARNING)
        args.beam_args = ["--default_sdk_harness_log_level=WARNING", *args.beam_args]
    try:
        return args.func(args)
    except ConfigError as err:
        print(f"strata: config error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
