"""The errors a user can act on, and how the command line shows every error.

An error that names its key, path or reason is printed as one to three lines on stderr
with a non-zero exit code and no traceback; anything else is shown the same way with its
type, and `strata --debug ...` shows the traceback. Every message goes through
`redact_text` first, so a URL's credentials never reach the terminal.
"""

from __future__ import annotations

from strata.redact import redact_text

MAX_MESSAGE_LINES = 3


class StrataError(Exception):
    """A problem the user can act on; the message names the key, path or reason."""

    label = "error"
    exit_code = 1


class BuildError(StrataError):
    """A build that cannot start or cannot finish: OUT unusable, no usable records, ..."""


class CheckpointError(StrataError):
    """A checkpoint that is missing, incomplete, or not one strata wrote."""


def describe_error(err: BaseException) -> tuple[int, str]:
    """(exit code, message of at most MAX_MESSAGE_LINES lines) for an error ending a command."""
    if isinstance(err, StrataError):
        code, text = err.exit_code, f"strata: {err.label}: {err}"
    elif isinstance(err, OSError) and err.strerror:
        where = f"{err.filename}: " if err.filename else ""
        code, text = 1, f"strata: error: {where}{err.strerror}"
    else:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        code = 1
        text = f"strata: unexpected error: {type(err).__name__}: {first}\n(run `strata --debug ...` to see the traceback)"
    lines = redact_text(text).splitlines()
    if len(lines) > MAX_MESSAGE_LINES:
        lines = [*lines[: MAX_MESSAGE_LINES - 1], lines[MAX_MESSAGE_LINES - 1] + " ..."]
    return code, "\n".join(lines)
