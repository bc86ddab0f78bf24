"""A long text in consecutive newline-ended windows, for the steps that must not hold more
than a window's worth of intermediate copies: Unicode normalization (a newline is a starter
that composes with nothing, so NFC of the windows, joined, is NFC of the text) and
sentencepiece encoding ("\n" is a piece of its own in strata's tokenizers)."""

from __future__ import annotations

from typing import Iterator


def newline_windows(text: str, size: int) -> Iterator[str]:
    """`text` in consecutive pieces of about `size` characters, each but the last ending
    with a newline (a piece runs on to the next newline when there is none sooner)."""
    start = 0
    while len(text) - start > size:
        cut = text.rfind("\n", start, start + size)
        if cut < 0:
            cut = text.find("\n", start + size)
            if cut < 0:
                break
        yield text[start : cut + 1]
        start = cut + 1
    yield text[start:]
