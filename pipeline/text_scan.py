"""The vectorised scan the heuristic families share (gopher_quality.py, gopher_repetition.py).

One pass over a text's code points finds its words, lines and paragraphs and hashes each of
them (polynomial prefix hashes, uint64 arithmetic); the families' rules then work on those
arrays. Texts longer than 2 * BLOCK_CHARS are scanned in blocks, so per-character arrays
never exceed a block.

Units:
  word       a maximal run of non-whitespace characters: exactly the pieces of `str.split()`
             (no tokenizer, so punctuation stays attached to its word)
  line       the text between two "\\n" (upstream normalisation turns \\r\\n and \\r into \\n),
             stripped; blank lines are ignored everywhere
  paragraph  the text between blank lines, stripped

The lookup tables (indexed by code point, or by offset for the powers: a few MB in all) are
built on first use, not at import, so a worker that enables no family never builds them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator

import numpy as np

BLOCK_CHARS = 1 << 18

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_LINE_BREAK = re.compile(r"\n")
_WHITESPACE = re.compile(r"\s")  # the characters of str.isspace()
_NEWLINE = ord("\n")
BULLETS = "•‣◦▪●○■-*"
CHAR_BASE = 0x9E3779B97F4A7C15  # odd, hence invertible modulo 2**64
_CHAR_BASE_INVERSE = pow(CHAR_BASE, -1, 2**64)


def blocks(text: str) -> Iterator[str]:
    """`text` in consecutive slices of BLOCK_CHARS to 2 * BLOCK_CHARS characters (the last
    one may be shorter), each cut just after a paragraph break if the window has one, else a
    line break, else whitespace, else anywhere. Every text of up to 2 * BLOCK_CHARS
    characters is a single block; in longer ones a paragraph, line or word that straddles a
    cut counts as two."""
    start = 0
    while len(text) - start > 2 * BLOCK_CHARS:
        window = (start + BLOCK_CHARS, start + 2 * BLOCK_CHARS)
        match = (
            _PARAGRAPH_BREAK.search(text, *window)
            or _LINE_BREAK.search(text, *window)
            or _WHITESPACE.search(text, *window)
        )
        end = match.end() if match else window[1]
        yield text[start:end]
        start = end
    yield text[start:]


# --------------------------------------------------------------------------- tables


def _char_table(chars: Iterable[str]) -> np.ndarray:
    """Membership table for a set of characters, indexed by code point (1.1 MB)."""
    table = np.zeros(0x110000, bool)
    table[[ord(c) for c in chars]] = True
    return table


@functools.cache
def word_char_table() -> np.ndarray:
    """Whether each code point belongs to a word: not str.isspace(). No character from
    U+3001 on is whitespace."""
    return ~_char_table(chr(c) for c in range(0x3001) if chr(c).isspace())


@functools.cache
def bullet_table() -> np.ndarray:
    """Whether each code point is one of BULLETS."""
    return _char_table(BULLETS)


@functools.cache
def power_table(base: int, size: int) -> np.ndarray:
    """base**i mod 2**64 for i < size (uint64 arithmetic wraps around)."""
    powers = np.ones(size, np.uint64)
    np.cumprod(np.full(size - 1, base, np.uint64), out=powers[1:])
    return powers


def _char_powers(inverse: bool) -> np.ndarray:
    """The powers of the character base (or of its inverse) for every offset in a block."""
    return power_table(_CHAR_BASE_INVERSE if inverse else CHAR_BASE, 2 * BLOCK_CHARS)


# --------------------------------------------------------------------------- scanning


def true_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the runs of True in a bool array."""
    padded = np.zeros(len(mask) + 2, bool)
    padded[1:-1] = mask
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return edges[0::2], edges[1::2]


class Block:
    """The code points of a block of text and the character spans of its words, lines
    (newlines=1) and paragraphs (newlines=2)."""

    def __init__(self, text: str):
        self.points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)
        self.word_starts, self.word_ends = true_runs(word_char_table()[self.points])

    def spans(self, newlines: int) -> tuple[np.ndarray, np.ndarray]:
        """Spans of the lines (newlines=1) or paragraphs (newlines=2): groups of words split
        wherever the whitespace between two words holds at least `newlines` "\\n"."""
        starts, ends = self.word_starts, self.word_ends
        if newlines == 0 or not len(starts):
            return starts, ends
        begins_group = np.empty(len(starts), bool)
        begins_group[0] = True
        np.greater_equal(self._newlines_between_words, newlines, out=begins_group[1:])
        first_words = np.flatnonzero(begins_group)
        last_words = np.empty_like(first_words)
        last_words[:-1] = first_words[1:] - 1
        last_words[-1] = len(starts) - 1
        return starts[first_words], ends[last_words]

    @functools.cached_property
    def _newlines_between_words(self) -> np.ndarray:
        """Number of "\\n" between each word and the next."""
        newlines_before = np.zeros(len(self.points) + 1, np.int32)
        np.cumsum(self.points == _NEWLINE, out=newlines_before[1:])
        return newlines_before[self.word_starts[1:]] - newlines_before[self.word_ends[:-1]]

    @functools.cached_property
    def _hash_prefix(self) -> np.ndarray:
        return hash_prefix(self.points)

    def hashes(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        return span_hashes(self._hash_prefix, starts, ends)


def hash_prefix(points: np.ndarray) -> np.ndarray:
    """sum((points[j] + 1) * base**j for j < i) for each offset i, mod 2**64; at most
    2 * BLOCK_CHARS code points."""
    prefix = np.zeros(len(points) + 1, np.uint64)
    powers = _char_powers(inverse=False)[: len(points)]
    np.cumsum(np.multiply(points + 1, powers, dtype=np.uint64), out=prefix[1:])
    return prefix


def span_hashes(prefix: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """64-bit hashes of the spans of the code points `prefix` is the hash_prefix of: the
    polynomial of their characters, shifted back to offset 0 by the inverse powers (the same
    span hashes the same wherever it is). Deterministic across processes, unlike Python's
    salted str hash."""
    return (prefix[ends] - prefix[starts]) * _char_powers(inverse=True)[starts]


def ends_with(points: np.ndarray, starts: np.ndarray, ends: np.ndarray, suffix: str) -> np.ndarray:
    """Whether each span of `points` ends with `suffix`."""
    result = ends - starts >= len(suffix)
    for offset, char in enumerate(reversed(suffix), 1):
        result &= points[np.maximum(ends - offset, 0)] == ord(char)
    return result
