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


def utf8_newline_windows(data: memoryview, size: int) -> Iterator[str]:
    """The UTF-8 text in `data`, decoded window by window: consecutive pieces of about
    `size` bytes, each but the last ending with a newline (a newline byte is never part of
    a multi-byte character), so the whole text never exists as one Python str."""
    start, end = 0, len(data)
    while end - start > size:
        cut = bytes(data[start : start + size]).rfind(b"\n")
        if cut < 0:
            cut = _next_newline(data, start + size, size) - start
            if cut < 0:
                break
        yield str(data[start : start + cut + 1], "utf-8")
        start += cut + 1
    yield str(data[start:], "utf-8")


def _next_newline(data: memoryview, position: int, size: int) -> int:
    """Index of the first newline at or after `position`, or -1; read `size` bytes at a time."""
    while position < len(data):
        found = bytes(data[position : position + size]).find(b"\n")
        if found >= 0:
            return position + found
        position += size
    return -1
