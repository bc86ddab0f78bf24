"""The `strata` command line: global flags, logging and error handling; each command group's
flags and body live in strata/commands/ (build.py: build, tokenizer, quality; training.py:
train; models.py: export, generate, eval; lineage.py: audit, verify, trace, sample)."""

from __future__ import annotations

import argparse
import logging
import sys

from strata.commands import build, lineage, models, training
from strata.errors import describe_error
from strata.pipeline.console import is_noise
from strata.redact import RedactingFilter
from strata.version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strata",
        description="Build LLM pretraining corpora, tokenizers and training streams, with full lineage.",
    )
    parser.add_argument("--version", action="version", version=f"strata {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log Beam's own messages too")
    parser.add_argument("--debug", action="store_true", help="on an error, show the Python traceback")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (build, training, models, lineage):
        group.add_parsers(commands)
    return parser


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
