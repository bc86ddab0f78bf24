"""`strata build`, `strata tokenizer train|stats` and `strata quality train`: making a
corpus, its tokenizer and its quality classifier."""

from __future__ import annotations

import argparse
import json

from strata.config import TokenizerConfig, load_config
from strata.pipeline.console import filtered_stderr

BUILD_STAGES = ("curate", "tokenizer", "shards")


def _build(args: argparse.Namespace) -> int:
    config = load_config(args.config)  # before Beam's long import: a config error shows at once
    with filtered_stderr(enabled=not args.verbose) as console:
        from strata.pipeline.build import run_build  # Beam prints a notice when imported
        from strata.pipeline.progress import Progress

        result = run_build(config, args.out, args.until, args.beam_args, None if args.quiet else Progress(console))
    out = args.out.rstrip("/")
    if args.until == "curate":
        fates = result["fates"]
        print(
            f"curated {fates['kept']} of {result['records']} records "
            f"(dropped {fates['dropped']}, duplicates {fates['duplicate']}, quarantined {fates['quarantined']})"
        )
        for category, c in result["categories"].items():
            print(f"  {category:<28} {c['docs']:>8} docs {c['bytes'] / 1e6:>10.2f} MB")
        print(f"summary: {out}/curate.json")
    elif args.until == "tokenizer":
        print(f"tokenizer: {out}/{result['path']} ({result['model_type']}, {result['vocab_size']} pieces)")
    else:
        print(f"{'category':<28} {'share':>7} {'docs':>8} {'train tokens':>14} {'val tokens':>11} {'shards':>6}")
        for name, c in result["categories"].items():
            print(
                f"{name:<28} {c['share']:>7.3f} {c['docs']:>8} {c['tokens']:>14} {c['val_tokens']:>11} {len(c['shards']):>6}"
            )
        print(f"manifest: {out}/manifest.json")
    return 0


def _tokenizer_train(args: argparse.Namespace) -> int:
    import tempfile

    from strata.tokenize.trainer import sample_curated_text, train_tokenizer

    with tempfile.TemporaryDirectory(prefix="strata-tokenizer-") as scratch:
        sample_path = f"{scratch}/sample.txt"
        sample = sample_curated_text(args.input, None, args.sample_bytes, args.seed, sample_path)
        record = train_tokenizer(
            sample_path, args.out, vocab_size=args.vocab_size, model_type=args.model_type, seed=args.seed,
            vocab_key="--vocab-size",
        )
    print(json.dumps({"sample": sample, **record}, indent=2, default=str))
    return 0


def _tokenizer_stats(args: argparse.Namespace) -> int:
    from strata.tokenize.stats import format_stats_table, tokenizer_stats

    stats = tokenizer_stats(args.model, args.input)
    print(json.dumps(stats, indent=2) if args.json else format_stats_table(stats))
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


def add_parsers(commands: argparse._SubParsersAction) -> None:
    build = commands.add_parser(
        "build",
        help="run the corpus build (curate, tokenizer, shards, manifest) from a YAML config",
        description=(
            "Run the corpus build described by CONFIG into OUT (a folder or an object-store prefix). "
            "Arguments after `--` go to Apache Beam unchanged, e.g. "
            "`strata build cfg.yaml --out out -- --runner=FlinkRunner --flink_master=host:8081`. "
            "Default: the DirectRunner, curate in one process, shards with a thread per core."
        ),
    )
    build.add_argument("config", help="YAML build config (see README, 'Config reference')")
    build.add_argument("--out", required=True, help="output folder or s3://, gs:// prefix")
    build.add_argument("--until", choices=BUILD_STAGES, default=BUILD_STAGES[-1], help="stop after this stage")
    build.add_argument(
        "-q", "--quiet", action="store_true", help="no progress and no informational messages; warnings and errors only"
    )
    build.set_defaults(func=_build)

    tokenizer = commands.add_parser("tokenizer", help="sentencepiece tokenizers")
    tokenizer_commands = tokenizer.add_subparsers(dest="tokenizer_command", required=True, metavar="COMMAND")
    tok_train = tokenizer_commands.add_parser(
        "train",
        help="train a sentencepiece tokenizer on a sample of curated text",
        description="Samples every category of OUT/curated equally (`strata build` weights the sample by the "
        "mixture), then trains with byte fallback and pad/unk/bos/eos/<mask> special pieces.",
    )
    tok_train.add_argument("--input", required=True, help="a curated folder, e.g. OUT/curated")
    tok_train.add_argument("--out", required=True, help="folder for tokenizer.model and tokenizer.json")
    tok_train.add_argument("--vocab-size", type=int, default=32000)
    tok_train.add_argument("--model-type", choices=("bpe", "unigram"), default="bpe")
    tok_train.add_argument("--sample-bytes", type=int, default=TokenizerConfig().sample_bytes)
    tok_train.add_argument("--seed", type=int, default=1234)
    tok_train.set_defaults(func=_tokenizer_train)
    tok_stats = tokenizer_commands.add_parser(
        "stats", help="fertility per category: tokens per byte and per word, byte-fallback rate"
    )
    tok_stats.add_argument("model", help="a sentencepiece model")
    tok_stats.add_argument("--input", required=True, help="a curated folder, e.g. OUT/curated")
    tok_stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    tok_stats.set_defaults(func=_tokenizer_stats)

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
