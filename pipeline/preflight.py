"""What a build checks before it touches anything in OUT.

The config is valid when it is loaded; here the rest that can be known without data: every
input glob matches, the tokenizer's vocabulary can hold its fixed pieces, and OUT is a
folder (or prefix) strata can write. A build that fails here leaves OUT as it was.
"""

from __future__ import annotations

import os

from strata.config import BuildConfig
from strata.errors import BuildError
from strata.pipeline.read import InputFile, discover_inputs
from strata.redact import redact_url
from strata.storage import filesystem, is_local
from strata.tokenize.trainer import BUILTIN_SYMBOLS, SPECIALS
from strata.tokenize.vocab import check_vocab_size, meta_pieces


def preflight(config: BuildConfig, out: str) -> list[InputFile]:
    """Check the build can start; returns its input files."""
    check_out(out)
    files = discover_inputs(config.sources)
    if config.tokenizer.model is None:
        symbols = [*BUILTIN_SYMBOLS, *config.tokenizer.user_defined_symbols]
        minimum = meta_pieces(len(SPECIALS), symbols) + 1
        check_vocab_size(config.tokenizer.vocab_size, minimum, "tokenizer.vocab_size",
                         "a trained tokenizer (256 byte pieces, the special and user-defined pieces, and characters)")
    return files


def check_out(out: str) -> None:
    """OUT must be a folder or prefix, or not exist yet where one can be made."""
    shown = redact_url(out)
    if not is_local(out):
        fs, path = filesystem(out)
        if fs.isfile(path):
            raise BuildError(f"--out {shown}: is a file, not a folder or prefix")
        return
    path = os.path.abspath(out.removeprefix("file://"))
    if os.path.exists(path) and not os.path.isdir(path):
        raise BuildError(f"--out {shown}: exists and is not a folder")
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise BuildError(f"--out {shown}: {parent} is a file, so the folder cannot be made")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BuildError(f"--out {shown}: {parent} is not writable")
