"""Heuristic document filters: Gopher quality and repetition (Rae et al. 2021, MassiveText),
following DataTrove's GopherQualityFilter and GopherRepetitionFilter except where a
docstring says otherwise, and `heuristic_attributes`, which measures a text for them and
runs C4's line cleaning (c4.py).

Pure functions over a document's text and its language (as language ID gave it; the
rules that assume English apply only where languages.py says they fit). Each returns the reason it drops the document as
"family:rule" (e.g. "gopher_repetition:dup_7gram"), or None to keep it; a value equal to
its threshold passes.

Units:
  word       a maximal run of non-whitespace characters: exactly the pieces of `str.split()`
             (no tokenizer, so punctuation stays attached to its word)
  line       the text between two "\\n" (upstream normalisation turns \\r\\n and \\r into \\n),
             stripped; blank lines are ignored everywhere
  paragraph  the text between blank lines, stripped

Speed: one vectorised pass over a text's code points finds its words, lines and paragraphs
and hashes each of them (polynomial prefix hashes, uint64 arithmetic); the rules then work
on those arrays, n-gram repetition by sorting 64-bit n-gram hashes. Texts longer than
2 * _BLOCK_CHARS are scanned in blocks, so per-character arrays never exceed a block.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator

import numpy as np

from strata.config import FilterSet, GopherQualityConfig, GopherRepetitionConfig
from strata.pipeline.c4 import c4_lines
from strata.pipeline.hashing import splitmix64
from strata.pipeline.gopher_stats import QualityStats, quality_decision, repetition_decision
from strata.pipeline.languages import letter_table, spaces_between_words

_BLOCK_CHARS = 1 << 18

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_LINE_BREAK = re.compile(r"\n")
_WHITESPACE = re.compile(r"\s")  # the characters of str.isspace()
_NEWLINE = ord("\n")


def _blocks(text: str) -> Iterator[str]:
    """`text` in consecutive slices of _BLOCK_CHARS to 2 * _BLOCK_CHARS characters (the last
    one may be shorter), each cut just after a paragraph break if the window has one, else a
    line break, else whitespace, else anywhere. Every text of up to 2 * _BLOCK_CHARS
    characters is a single block; in longer ones a paragraph, line or word that straddles a
    cut counts as two."""
    start = 0
    while len(text) - start > 2 * _BLOCK_CHARS:
        window = (start + _BLOCK_CHARS, start + 2 * _BLOCK_CHARS)
        match = (
            _PARAGRAPH_BREAK.search(text, *window)
            or _LINE_BREAK.search(text, *window)
            or _WHITESPACE.search(text, *window)
        )
        end = match.end() if match else window[1]
        yield text[start:end]
        start = end
    yield text[start:]


# --------------------------------------------------------------------------- scanning


def _char_table(chars: Iterable[str]) -> np.ndarray:
    """Membership table for a set of characters, indexed by code point."""
    table = np.zeros(0x110000, bool)
    table[[ord(c) for c in chars]] = True
    return table


# No character from U+3001 on is whitespace.
_WORD_CHAR_TABLE = ~_char_table(chr(c) for c in range(0x3001) if chr(c).isspace())
_BULLETS = "•‣◦▪●○■-*"
_BULLET_TABLE = _char_table(_BULLETS)


def _power_table(base: int, size: int) -> np.ndarray:
    """base**i mod 2**64 for i < size (uint64 arithmetic wraps around)."""
    powers = np.ones(size, np.uint64)
    np.cumprod(np.full(size - 1, base, np.uint64), out=powers[1:])
    return powers


_CHAR_BASE = 0x9E3779B97F4A7C15  # odd, hence invertible modulo 2**64
_CHAR_POWERS = _power_table(_CHAR_BASE, 2 * _BLOCK_CHARS)
_CHAR_INVERSE_POWERS = _power_table(pow(_CHAR_BASE, -1, 2**64), 2 * _BLOCK_CHARS)
_NGRAM_BASE = np.uint64(0xD6E8FEB86659FD93)


def _true_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the runs of True in a bool array."""
    padded = np.zeros(len(mask) + 2, bool)
    padded[1:-1] = mask
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return edges[0::2], edges[1::2]


class _Block:
    """The code points of a block of text and the character spans of its words, lines
    (newlines=1) and paragraphs (newlines=2)."""

    def __init__(self, text: str):
        self.points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)
        self.word_starts, self.word_ends = _true_runs(_WORD_CHAR_TABLE[self.points])

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
        """sum((points[j] + 1) * base**j for j < i) for each offset i, mod 2**64."""
        prefix = np.zeros(len(self.points) + 1, np.uint64)
        np.cumsum(np.multiply(self.points + 1, _CHAR_POWERS[: len(self.points)], dtype=np.uint64), out=prefix[1:])
        return prefix

    def hashes(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """64-bit hashes of the spans: the polynomial of their characters, shifted back to
        offset 0 by the inverse powers. Deterministic across processes, unlike Python's
        salted str hash."""
        prefix = self._hash_prefix
        return (prefix[ends] - prefix[starts]) * _CHAR_INVERSE_POWERS[starts]


def _ends_with(points: np.ndarray, starts: np.ndarray, ends: np.ndarray, suffix: str) -> np.ndarray:
    """Whether each span of `points` ends with `suffix`."""
    result = ends - starts >= len(suffix)
    for offset, char in enumerate(reversed(suffix), 1):
        result &= points[np.maximum(ends - offset, 0)] == ord(char)
    return result


# --------------------------------------------------------------------------- Gopher quality


@functools.lru_cache(maxsize=64)
def _stop_word_pattern(stop_words: tuple[str, ...]) -> re.Pattern:
    alternatives = "|".join(map(re.escape, sorted(stop_words, key=len, reverse=True)))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def _distinct_stop_words(text: str, stop_words: tuple[str, ...]) -> int:
    """How many different stop words occur as whole words (case-sensitive)."""
    found: set[str] = set()
    for match in _stop_word_pattern(stop_words).finditer(text):
        found.add(match.group())
        if len(found) == len(stop_words):
            break
    return len(found)


def quality_stats(text: str, cfg: GopherQualityConfig, language: str | None) -> QualityStats:
    """What Gopher's quality rules look at in `text`, whatever the thresholds: one pass,
    block by block."""
    letters = letter_table()
    words = chars = alpha_words = lines = bullet_lines = ellipsis_lines = 0
    for block in map(_Block, _blocks(text)):
        starts, ends = block.word_starts, block.word_ends
        words += len(starts)
        chars += int((ends - starts).sum())
        letters_before = np.zeros(len(block.points) + 1, np.int32)
        np.cumsum(letters[block.points], out=letters_before[1:])
        alpha_words += int(np.count_nonzero(letters_before[ends] > letters_before[starts]))
        line_starts, line_ends = block.spans(newlines=1)
        lines += len(line_starts)
        bullet_lines += int(np.count_nonzero(_BULLET_TABLE[block.points[line_starts]]))
        ellipsis_lines += int(np.count_nonzero(
            _ends_with(block.points, line_starts, line_ends, "...") | _ends_with(block.points, line_starts, line_ends, "…")
        ))
    stop_words = cfg.stop_words_for(language) if spaces_between_words(language) else None
    found = _distinct_stop_words(text, stop_words) if stop_words else None
    return QualityStats(words, chars, alpha_words, lines, bullet_lines, ellipsis_lines, text.count("#"),
                        text.count("...") + text.count("…"), found)


def gopher_quality(text: str, cfg: GopherQualityConfig, language: str | None = "en") -> str | None:
    """Gopher's quality rules, in DataTrove's order; the reason names the rule:

    max_words, min_words        word count outside [min_words, max_words]; a text without
                                words always fails min_words
    min/max_mean_word_length    mean characters per word outside the range
    hash_ratio, ellipsis_ratio  "#", resp. "..." and "…", per word above max_symbol_word_ratio
    bullet_lines                fraction of lines starting with one of • ‣ ◦ ▪ ● ○ ■ - *
    ellipsis_lines              fraction of lines ending with "..." or "…"
    alpha_words                 fraction of words holding a letter (str.isalpha) below minimum
    stop_words                  fewer distinct stop words than min_stop_words, matched as
                                whole words, case-sensitively

    Unlike DataTrove (nltk tokens), words keep their punctuation and stand-alone symbols count
    as words, and line fractions ignore blank lines.

    In a language without spaces between words only the line and alpha_words rules apply (a
    whitespace "word" there is a clause); the stop-word rule applies only to languages with
    stop words in the config.
    """
    if not cfg.enabled:
        return None
    return quality_decision(quality_stats(text, cfg, language), cfg, language)


# --------------------------------------------------------------------------- Gopher repetition


def _duplicate_fractions(hashes: np.ndarray, lengths: np.ndarray) -> tuple[float, float]:
    """(fraction of pieces equal to an earlier piece, fraction of all pieces' characters that
    are in such repeats)."""
    if not len(hashes):
        return 0.0, 0.0
    _, first_occurrences = np.unique(hashes, return_index=True)
    total_chars = int(lengths.sum())
    distinct_chars = int(lengths[first_occurrences].sum())
    return (len(hashes) - len(first_occurrences)) / len(hashes), (total_chars - distinct_chars) / total_chars


def _occurrences_by_hash(keys: np.ndarray, positions: np.ndarray | None, shift: np.uint64) -> tuple[np.ndarray, np.ndarray]:
    """The positions of hashes in order of hash value, and whether each of them holds the
    same value as the next; `keys` (the hashes, at `positions`, or at 0, 1, ... if None) is
    overwritten. The position is packed into the low `shift` bits of the hash so that a plain
    integer sort (SIMD, several times faster than an argsort) does the grouping; that leaves
    64 - log2(words) bits of hash, enough to keep chance collisions negligible even for the
    8M words of a 50 MB text."""
    keys >>= shift
    keys <<= shift
    for start in range(0, len(keys), _BLOCK_CHARS):  # by chunks: no full-length temporaries
        chunk = keys[start : start + _BLOCK_CHARS]
        at = np.arange(start, start + len(chunk)) if positions is None else positions[start : start + len(chunk)]
        chunk |= at.astype(np.uint64)
    keys.sort()
    ordered = np.empty(len(keys), np.int32)
    position_mask = (np.uint64(1) << shift) - np.uint64(1)
    for start in range(0, len(keys), _BLOCK_CHARS):
        ordered[start : start + _BLOCK_CHARS] = keys[start : start + _BLOCK_CHARS] & position_mask
    keys >>= shift
    return ordered, keys[1:] == keys[:-1]


class _Pieces:
    """Hashes and character lengths of a text's words, lines and paragraphs."""

    UNITS = {"word": 0, "line": 1, "para": 2}  # unit -> newlines that separate two of them

    def __init__(self, text: str):
        parts: dict[str, tuple[list, list]] = {unit: ([], []) for unit in self.UNITS}
        for block in map(_Block, _blocks(text)):
            for unit, newlines in self.UNITS.items():
                starts, ends = block.spans(newlines)
                parts[unit][0].append(block.hashes(starts, ends))
                parts[unit][1].append((ends - starts).astype(np.int32))
        self.hashes = {unit: _joined(hashes) for unit, (hashes, _) in parts.items()}
        self.lengths = {unit: _joined(lengths) for unit, (_, lengths) in parts.items()}


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


class _WordNGrams:
    """A text's words as mixed 64-bit hashes and character lengths, and the repetition of
    their n-grams, measured for n in ascending order.

    An n-gram can repeat only where its (n-1)-gram does, so each n after the first is
    hashed and sorted only at the positions of the repeated (n-1)-grams: one sort of all
    positions per text, the others on what repeats (a few percent of natural text)."""

    def __init__(self, word_hashes: np.ndarray, word_lengths: np.ndarray):
        # Mixed (in place: the caller hands them over) so that the n-gram polynomial over
        # them behaves like one over random values.
        self.word_hashes, self.word_lengths = splitmix64(word_hashes), word_lengths
        self.total_chars = int(word_lengths.sum())
        self._shift = np.uint64(max(len(word_hashes) - 1, 1).bit_length())

    def measures(self, top_ns: list[int], dup_ns: list[int]) -> dict[str, float]:
        """top_{n}gram for n in `top_ns` and dup_{n}gram for n in `dup_ns`, by name."""
        found = {**{f"top_{n}gram": 0.0 for n in top_ns}, **{f"dup_{n}gram": 0.0 for n in dup_ns}}
        wanted = set(top_ns) | set(dup_ns)
        positions = None  # those of the n-grams that may repeat: all at first
        for n in range(min(wanted, default=1), max(wanted, default=0) + 1):
            count = len(self.word_hashes) - n + 1
            if positions is not None:
                positions = positions[positions < count]
            if count <= 0 or (positions is not None and not len(positions)):
                break  # no n-gram, or nothing repeats at n - 1: nothing does at n or above
            ordered, same_as_next = _occurrences_by_hash(self._ngram_hashes(n, positions), positions, self._shift)
            if n in top_ns:
                found[f"top_{n}gram"] = self._top_fraction(n, ordered, same_as_next)
            if n in dup_ns:
                found[f"dup_{n}gram"] = self._duplicate_fraction(n, ordered, same_as_next)
            in_repeat = np.zeros(len(ordered), bool)
            in_repeat[1:] |= same_as_next
            in_repeat[:-1] |= same_as_next
            positions = ordered[in_repeat]
            positions.sort()
        return found

    def _ngram_hashes(self, n: int, positions: np.ndarray | None) -> np.ndarray:
        """The n-gram hashes sum(word_hash[i + k] * B**(n - 1 - k)) at `positions` (every
        position if None), computed by chunks so that temporaries stay small."""
        if positions is None:
            count = len(self.word_hashes) - n + 1
            hashes = self.word_hashes[:count].copy()
            for offset in range(1, n):
                hashes *= _NGRAM_BASE
                hashes += self.word_hashes[offset : offset + count]
            return hashes
        hashes = self.word_hashes[positions]
        for start in range(0, len(positions), _BLOCK_CHARS):
            at, chunk = positions[start : start + _BLOCK_CHARS], hashes[start : start + _BLOCK_CHARS]
            for offset in range(1, n):
                chunk *= _NGRAM_BASE
                chunk += self.word_hashes[at + offset]
        return hashes

    def _top_fraction(self, n: int, ordered: np.ndarray, same_as_next: np.ndarray) -> float:
        """Occurrences of the most frequent n-gram times its characters (its words'
        characters, no whitespace), over all word characters; 0 when no n-gram occurs twice.
        Ties go to the longest n-gram."""
        # A run of True over same_as_next[a:b] is one n-gram occurring b - a + 1 times.
        run_starts, run_ends = _true_runs(same_as_next)
        if not len(run_starts):
            return 0.0
        counts = run_ends - run_starts + 1
        top_count = counts.max()
        top_positions = ordered[run_starts[counts == top_count]]
        top_lengths = sum(self.word_lengths[top_positions + k] for k in range(n))
        return int(top_count) * int(top_lengths.max()) / self.total_chars

    def _duplicate_fraction(self, n: int, ordered: np.ndarray, same_as_next: np.ndarray) -> float:
        """Characters of the words covered by a repeat of an earlier n-gram (every
        occurrence but the first), each word counted once, over all word characters. This is
        how DataTrove and the Gopher paper count it, so Gopher's thresholds mean the same here
        (RedPajama-v2 also counts the first occurrence, which drops far more). Never grows
        with n: a repeated (n+1)-gram starts a repeated n-gram at both of its first two words."""
        if not same_as_next.any():
            return 0.0
        # In hash order, equal hashes sit in position order: all but the first are repeats.
        repeated = np.zeros(len(ordered), bool)
        repeated[1:] = same_as_next
        starts_repeat = np.zeros(len(self.word_hashes), bool)
        starts_repeat[ordered[repeated]] = True
        covered = np.zeros(len(self.word_hashes), bool)
        for offset in range(n):
            covered[offset:] |= starts_repeat[: len(starts_repeat) - offset]
        return int(self.word_lengths.sum(where=covered)) / self.total_chars


def _repetition_measures(text: str, top_ns: Iterable[int], dup_ns: Iterable[int]) -> Iterator[tuple[str, float]]:
    """(name, value) of each repetition measure in check order; no word n-gram measures
    when `top_ns` and `dup_ns` are empty."""
    pieces = _Pieces(text)
    yield from zip(("dup_para_frac", "dup_para_char_frac"), _duplicate_fractions(pieces.hashes["para"], pieces.lengths["para"]))
    yield from zip(("dup_line_frac", "dup_line_char_frac"), _duplicate_fractions(pieces.hashes["line"], pieces.lengths["line"]))
    if not top_ns and not dup_ns:
        return
    yield from _WordNGrams(pieces.hashes["word"], pieces.lengths["word"]).measures(top_ns, dup_ns).items()


def repetition_stats(text: str, cfg: GopherRepetitionConfig | None = None) -> dict[str, float]:
    """Every repetition measure of `text` for the n-gram sizes of `cfg` (default: the
    defaults), by the names `gopher_repetition` gives as reasons. For tests and diagnostics."""
    return repetition_measures(text, cfg or GopherRepetitionConfig(), "en")


def repetition_measures(text: str, cfg: GopherRepetitionConfig, language: str | None) -> dict[str, float]:
    """Every repetition measure that applies to `language`, by name."""
    spaced = spaces_between_words(language)
    top_ns = sorted(cfg.top_ngram_max_char_fraction) if spaced else []
    dup_ns = sorted(cfg.duplicate_ngram_max_char_fraction) if spaced else []
    return dict(_repetition_measures(text, top_ns, dup_ns))


def gopher_repetition(text: str, cfg: GopherRepetitionConfig, language: str | None = "en") -> str | None:
    """Gopher's repetition rules, in DataTrove's order; each fraction above its maximum drops:

    dup_para_frac, dup_para_char_frac   paragraphs that repeat an earlier one: share of
                                        paragraphs, and of paragraph characters
    dup_line_frac, dup_line_char_frac   the same for lines
    top_{n}gram                         see `_WordNGrams._top_fraction`
    dup_{n}gram                         see `_WordNGrams._duplicate_fraction`

    Character fractions are over the characters of the pieces compared (paragraphs, lines or
    words), not over the whole text. The word n-gram rules apply only to languages
    written with spaces between words.
    """
    if not cfg.enabled:
        return None
    return repetition_decision(repetition_measures(text, cfg, language), cfg, language)


# --------------------------------------------------------------------------- all families


def heuristic_attributes(text: str, filters: FilterSet, language: str | None = "en") -> dict:
    """What the heuristic families find in `text` as they apply to `language`, whatever
    their thresholds: Gopher's statistics (`gq_*`, `gopher_repetition`) and C4's verdict,
    the reason it drops the document (`c4_reason`) or the lines it keeps (`text_lines`,
    when it removed any). attributes.heuristic_reason decides on them."""
    found = quality_stats(text, filters.gopher_quality, language).as_row()
    found["gopher_repetition"] = repetition_measures(text, filters.gopher_repetition, language)
    cleaned, found["c4_reason"] = c4_lines(text, filters.c4, language)
    found["text_lines"] = cleaned if found["c4_reason"] is None and cleaned != text else None
    return found
