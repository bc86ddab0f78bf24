"""The `strata` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from strata.config import load_config
from strata.errors import describe_error
from strata.pipeline.console import filtered_stderr, is_noise
from strata.redact import RedactingFilter
from strata.version import __version__

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strata",
        description="Build LLM pretraining corpora, tokenizers and training streams, with full lineage.",
    )
    parser.add_argument("--version", action="version", version=f"strata {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log Beam's own messages too")
    parser.add_argument("--debug", action="store_true", help="on an error, show the Python traceback")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    tok_train.add_argument("--sample-bytes", type=int, default=200 * 2**20)
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

    _add_train_parser(commands)
    _add_model_parsers(commands)
    _add_lineage_parsers(commands)
    return parser


def _add_train_parser(commands) -> None:
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
    train.set_defaults(func=_train)


# --------------------------------------------------------------------------- export, generate, eval


def _export(args: argparse.Namespace) -> int:
    from strata.train.export import export_run

    result = export_run(args.run, args.out, args.step)
    print(f"exported step {result['step']} as {result['architecture']} to {result['out']} "
          f"(config.json, model.safetensors, tokenizer.json, README.md)")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from strata.train.generate import generate_ids, prompt_ids
    from strata.train.load import load_model

    loaded = load_model(args.source, args.step)
    prompt = prompt_ids(loaded.encoder, args.prompt)
    new = generate_ids(loaded.model, prompt, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                       top_p=args.top_p, seed=args.seed, eos=loaded.encoder.special_ids["eos"])
    eos = loaded.encoder.special_ids["eos"]
    print(args.prompt + loaded.encoder.decode([t for t in new if t != eos]))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from strata.train.evaluate import as_json, eval_build, eval_files, format_eval
    from strata.train.load import load_model

    loaded = load_model(args.source, args.step)
    data = args.data or ([loaded.run["data"]] if loaded.run else None)
    if not data:
        print("strata eval: give --data BUILD or files", file=sys.stderr)
        return 2
    if len(data) == 1 and not data[0].endswith((".jsonl", ".txt")):
        figures = eval_build(loaded, data[0], split=args.split, seq_len=args.seq_len, batch_size=args.batch_size,
                             eval_batches=args.eval_batches, seed=args.seed)
    else:
        figures = eval_files(loaded, data, seq_len=args.seq_len, seed=args.seed or 0)
    print(json.dumps(as_json(figures), indent=2) if args.json else format_eval(figures))
    return 0


def _add_model_parsers(commands) -> None:
    export = commands.add_parser(
        "export", help="write a run's checkpoint as a Hugging Face model folder (transformers loads it)",
        description="GPT -> GPT2LMHeadModel, MLM encoder -> RobertaPreLayerNormForMaskedLM, safetensors weights, "
        "the build's tokenizer as tokenizer.json (same ids), and a model card README.md with the run's lineage.",
    )
    export.add_argument("run", metavar="RUN")
    export.add_argument("--step", type=int, help="the checkpoint of this step (default: the latest)")
    export.add_argument("--out", required=True, metavar="DIR")
    export.set_defaults(func=_export)

    generate = commands.add_parser("generate", help="continue a prompt with a GPT (a run or an exported folder)")
    generate.add_argument("source", metavar="RUN|DIR")
    generate.add_argument("--prompt", required=True)
    generate.add_argument("--max-new-tokens", type=int, default=64)
    generate.add_argument("--temperature", type=float, default=1.0, help="0: greedy")
    generate.add_argument("--top-k", type=int)
    generate.add_argument("--top-p", type=float)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--step", type=int, help="for a RUN: the checkpoint of this step")
    generate.set_defaults(func=_generate)

    evaluate = commands.add_parser(
        "eval", help="loss, perplexity and bits per byte per category, on a build's validation blocks or on files",
        description="With a build, the trainer's validation (the same windows); with .jsonl/.txt files, documents "
        "encoded as in training (ids + EOS, packed, windows of seq_len).",
    )
    evaluate.add_argument("source", metavar="RUN|DIR")
    evaluate.add_argument("--data", nargs="+", metavar="BUILD|FILE", help="default: a RUN's build")
    evaluate.add_argument("--split", choices=("val",), default="val")
    for flag, meaning in (("--seq-len", "window tokens"), ("--batch-size", "windows per batch"),
                          ("--eval-batches", "batches per category"), ("--seed", "val order and MLM masks")):
        evaluate.add_argument(flag, type=int, help=f"{meaning} (default: a RUN's own)")
    evaluate.add_argument("--step", type=int, help="for a RUN: the checkpoint of this step")
    evaluate.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    evaluate.set_defaults(func=_eval)


# --------------------------------------------------------------------------- audit, verify, trace


def _audit(args: argparse.Namespace) -> int:
    from strata.manifests import audit, report
    from strata.manifests.lineage import is_run
    from strata.storage import write_bytes_atomic

    if is_run(args.path):
        result, text, page = audit.audit_run(args.path, args.data), audit.format_run_audit, report.run_page
    else:
        result, text, page = audit.audit_build(args.path), audit.format_build_audit, report.build_page
    if args.html:
        write_bytes_atomic(args.html, page(result).encode())
    print(json.dumps(result, indent=2) if args.json else text(result))
    if args.html:
        print(f"report: {args.html}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from strata.manifests.verify import format_verify, verify_build

    result = verify_build(args.out)
    print(json.dumps(result, indent=2) if args.json else format_verify(result))
    return 0 if result["ok"] else 1


def _trace(args: argparse.Namespace) -> int:
    from strata.manifests import trace

    if args.step is not None:
        if args.run is None or args.doc_id is not None:
            print("strata trace: --step needs --run RUN (and takes no DOC_ID)", file=sys.stderr)
            return 2
        result, text = trace.trace_step(args.run, args.step, args.out), trace.format_step_trace
    else:
        if args.doc_id is None:
            print("strata trace: give OUT DOC_ID, or --run RUN --step N", file=sys.stderr)
            return 2
        result, text = trace.trace_document(args.out, args.doc_id, args.run), trace.format_document_trace
    print(json.dumps(result, indent=2) if args.json else text(result))
    return 0


def _sample(args: argparse.Namespace) -> int:
    from strata.pipeline.sample import format_sample, sample_documents

    if not (args.reason or args.category or args.kept):
        print("strata sample: give --reason REASON, --category CATEGORY or --kept", file=sys.stderr)
        return 2
    result = sample_documents(args.out, reason=args.reason, category=args.category, kept=args.kept, n=args.n,
                              seed=args.seed, lines=args.lines)
    print(json.dumps(result, indent=2) if args.json else format_sample(result))
    return 0


def _add_lineage_parsers(commands) -> None:
    audit = commands.add_parser(
        "audit",
        help="what a build's mixture holds and why records were removed, or what a training run consumed",
        description=(
            "PATH is a build's OUT (mixture target vs realized, per-source fates and drop reasons, duplicates, "
            "languages, document lengths, tokenizer fertility) or a training run's RUN, recognised by its run.json "
            "(tokens consumed per category against the shares, effective epochs, validation loss over steps)."
        ),
    )
    audit.add_argument("path", metavar="OUT|RUN", help="a build folder or prefix, or a run folder")
    audit.add_argument("--json", action="store_true", help="print JSON instead of tables")
    audit.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report with charts")
    audit.add_argument("--data", metavar="OUT", help="for a RUN: the build it trained on (default: run.json's)")
    audit.set_defaults(func=_audit)

    verify = commands.add_parser(
        "verify",
        help="check every shard's size, sha256 and block index against the manifest",
        description="Reads every shard once; exits 1 naming each missing, truncated or corrupt shard.",
    )
    verify.add_argument("out", metavar="OUT", help="a build folder or prefix (s3://, gs://, ...)")
    verify.add_argument("--json", action="store_true", help="print JSON instead of text")
    verify.set_defaults(func=_verify)

    trace = commands.add_parser(
        "trace",
        help="a document's lineage and the steps that trained on it, or the documents of a step",
        description=(
            "`strata trace OUT DOC_ID [--run RUN]`: where the document came from, its fate, its blocks and token "
            "ranges, and with --run the steps, ranks and samples that trained on any part of it. "
            "`strata trace [OUT] --run RUN --step N`: the documents step N trained on, with their sources "
            "(OUT defaults to the run's build)."
        ),
    )
    trace.add_argument("out", metavar="OUT", nargs="?", help="the build")
    trace.add_argument("doc_id", metavar="DOC_ID", nargs="?", help="a document's doc_id")
    trace.add_argument("--run", metavar="RUN", help="a training run folder")
    trace.add_argument("--step", type=int, help="with --run: the documents of this step")
    trace.add_argument("--json", action="store_true", help="print JSON instead of text")
    trace.set_defaults(func=_trace)

    sample = commands.add_parser(
        "sample",
        help="a few documents that met a given fate, by their first lines, to judge a filter by example",
        description=(
            "Picks N documents from the build's lineage (seeded) that were dropped for REASON, belong to CATEGORY, "
            "or were kept, and prints their first lines as read from the input, with source file and record."
        ),
    )
    sample.add_argument("out", metavar="OUT", help="a build folder or prefix")
    sample.add_argument("--reason", help="a drop reason, e.g. c4:fragment or near_duplicate")
    sample.add_argument("--category", help="a category")
    sample.add_argument("--kept", action="store_true", help="kept documents only")
    sample.add_argument("--n", type=int, default=5, help="documents to show (default 5)")
    sample.add_argument("--seed", type=int, default=0, help="which sample (default 0)")
    sample.add_argument("--lines", type=int, default=5, help="first lines shown per document (default 5)")
    sample.add_argument("--json", action="store_true", help="print JSON instead of text")
    sample.set_defaults(func=_sample)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    beam_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, beam_args = argv[:cut], argv[cut + 1 :]
    args = build_parser().parse_args(argv)
    args.beam_args = beam_args
    quiet = getattr(args, "quiet", False)
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S"
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
        if not args.verbose:  # Beam logs a few notices on the root logger
            handler.addFilter(lambda record: not is_noise(record.getMessage()))
    if not args.verbose:
        # Beam's own INFO messages are about its machinery; its warnings and errors still show
        # (the few known noise lines are dropped by strata.pipeline.console).
        logging.getLogger("apache_beam").setLevel(logging.WARNING)
        logging.getLogger("distributed").setLevel(logging.WARNING)
        logging.getLogger("botocore").setLevel(logging.WARNING)
        args.beam_args = ["--default_sdk_harness_log_level=WARNING", *args.beam_args]
    try:
        return args.func(args)
    except Exception as err:  # every error ends as a short message; --debug shows the traceback
        if args.debug:
            raise
        code, message = describe_error(err)
        print(message, file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("strata: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
