"""Gopher's repetition rules (Rae et al. 2021, MassiveText), following DataTrove's
GopherRepetitionFilter except where a docstring says otherwise.

A pure function over a document's text and its language (as language ID gave it; the word
n-gram rules apply only where languages.py says they fit). It returns the reason it drops
the document as "gopher_repetition:rule" (e.g. "gopher_repetition:dup_7gram"), or None to
keep it; a value equal to its threshold passes. `repetition_measures` measures the text
whatever the thresholds; gopher_stats.repetition_decision decides on the measures.

Units (text_scan.py scans for them and hashes each): a word is a piece of `str.split()`, so
punctuation stays attached to its word; a line is the stripped text between two "\\n"; a
paragraph is the stripped text between blank lines; blank lines are ignored.

Speed: a line or paragraph repeats an earlier one when their 64-bit hashes are equal; word
n-grams are compared by sorting 64-bit n-gram hashes built from the words' hashes, each n
after the first only where the (n-1)-gram repeats (`_WordNGrams`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from strata.config import GopherRepetitionConfig
from strata.pipeline import text_scan
from strata.pipeline.gopher_stats import repetition_decision
from strata.pipeline.hashing import splitmix64
from strata.pipeline.languages import spaces_between_words

_NGRAM_BASE = np.uint64(0xD6E8FEB86659FD93)


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
    step = text_scan.BLOCK_CHARS  # by chunks of a block's size: no full-length temporaries
    for start in range(0, len(keys), step):
        chunk = keys[start : start + step]
        at = np.arange(start, start + len(chunk)) if positions is None else positions[start : start + len(chunk)]
        chunk |= at.astype(np.uint64)
    keys.sort()
    ordered = np.empty(len(keys), np.int32)
    position_mask = (np.uint64(1) << shift) - np.uint64(1)
    for start in range(0, len(keys), step):
        ordered[start : start + step] = keys[start : start + step] & position_mask
    keys >>= shift
    return ordered, keys[1:] == keys[:-1]


class _Pieces:
    """Hashes and character lengths of a text's words, lines and paragraphs."""

    UNITS = {"word": 0, "line": 1, "para": 2}  # unit -> newlines that separate two of them

    def __init__(self, text: str):
        parts: dict[str, tuple[list, list]] = {unit: ([], []) for unit in self.UNITS}
        for block in map(text_scan.Block, text_scan.blocks(text)):
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
        step = text_scan.BLOCK_CHARS
        for start in range(0, len(positions), step):
            at, chunk = positions[start : start + step], hashes[start : start + step]
            for offset in range(1, n):
                chunk *= _NGRAM_BASE
                chunk += self.word_hashes[at + offset]
        return hashes

    def _top_fraction(self, n: int, ordered: np.ndarray, same_as_next: np.ndarray) -> float:
        """Occurrences of the most frequent n-gram times its characters (its words'
        characters, no whitespace), over all word characters; 0 when no n-gram occurs twice.
        Ties go to the longest n-gram."""
        # A run of True over same_as_next[a:b] is one n-gram occurring b - a + 1 times.
        run_starts, run_ends = text_scan.true_runs(same_as_next)
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
