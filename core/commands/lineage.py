"""`strata audit`, `strata verify`, `strata trace` and `strata sample`: reading what a
build or a run recorded."""

from __future__ import annotations

import argparse
import json
import sys


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


def add_parsers(commands: argparse._SubParsersAction) -> None:
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
