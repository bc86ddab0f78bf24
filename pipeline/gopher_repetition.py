"""Gopher's repetition rules (Rae et al. 2021, MassiveText), following DataTrove's
GopherRepetitionFilter except where a docstring says otherwise: pure functions over a
document's text and its language (units and conventions in filters.py). n-gram repetition
works by sorting 64-bit n-gram hashes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from strata.config import GopherRepetitionConfig
from strata.pipeline.languages import spaces_between_words
from strata.pipeline.text_scan import BLOCK_CHARS, Block, blocks, splitmix64, true_runs

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


def _occurrences_by_hash(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The positions of hashes in order of hash value, and whether each of them holds the
    same value as the next; `keys` (the hashes) is overwritten. The position is packed into
    the low bits of the hash so that a plain integer sort (SIMD, several times faster than
    an argsort) does the grouping; that leaves 64 - log2(len) bits of hash, enough to keep
    chance collisions negligible even for the 8M words of a 50 MB text."""
    shift = np.uint64(max(len(keys) - 1, 1).bit_length())
    keys >>= shift
    keys <<= shift
    for start in range(0, len(keys), BLOCK_CHARS):  # by chunks: no full-length temporaries
        chunk = keys[start : start + BLOCK_CHARS]
        chunk |= np.arange(start, start + len(chunk), dtype=np.uint64)
    keys.sort()
    positions = np.empty(len(keys), np.int32)
    position_mask = (np.uint64(1) << shift) - np.uint64(1)
    for start in range(0, len(keys), BLOCK_CHARS):
        positions[start : start + BLOCK_CHARS] = keys[start : start + BLOCK_CHARS] & position_mask
    keys >>= shift
    return positions, keys[1:] == keys[:-1]


class _Pieces:
    """Hashes and character lengths of a text's words, lines and paragraphs."""

    UNITS = {"word": 0, "line": 1, "para": 2}  # unit -> newlines that separate two of them

    def __init__(self, text: str):
        parts: dict[str, tuple[list, list]] = {unit: ([], []) for unit in self.UNITS}
        for block in map(Block, blocks(text)):
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
    their n-grams."""

    def __init__(self, word_hashes: np.ndarray, word_lengths: np.ndarray):
        # Mixed (in place: the caller hands them over) so that the n-gram polynomial over
        # them behaves like one over random values.
        self.word_hashes, self.word_lengths = splitmix64(word_hashes), word_lengths
        self.total_chars = int(word_lengths.sum())

    def _ngram_occurrences(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """`_occurrences_by_hash` of the n-gram hashes sum(word_hash[i + k] * B**(n - 1 - k)),
        computed afresh for each n so that one n-gram-sized array at a time is alive."""
        count = len(self.word_hashes) - n + 1
        hashes = self.word_hashes[:count].copy()
        for offset in range(1, n):
            hashes *= _NGRAM_BASE
            hashes += self.word_hashes[offset : offset + count]
        return _occurrences_by_hash(hashes)

    def top_fraction(self, n: int) -> float:
        """Occurrences of the most frequent n-gram times its characters (its words'
        characters, no whitespace), over all word characters; 0 when no n-gram occurs twice.
        Ties go to the longest n-gram."""
        if n > len(self.word_hashes):
            return 0.0
        positions, same_as_next = self._ngram_occurrences(n)
        # A run of True over same_as_next[a:b] is one n-gram occurring b - a + 1 times.
        run_starts, run_ends = true_runs(same_as_next)
        if not len(run_starts):
            return 0.0
        counts = run_ends - run_starts + 1
        top_count = counts.max()
        top_positions = positions[run_starts[counts == top_count]]
        top_lengths = sum(self.word_lengths[top_positions + k] for k in range(n))
        return int(top_count) * int(top_lengths.max()) / self.total_chars

    def duplicate_fraction(self, n: int) -> float:
        """Characters of the words covered by a repeat of an earlier n-gram (every
        occurrence but the first), each word counted once, over all word characters. This is
        how DataTrove and the Gopher paper count it, so Gopher's thresholds mean the same here
        (RedPajama-v2 also counts the first occurrence, which drops far more). Never grows
        with n: a repeated (n+1)-gram starts a repeated n-gram at both of its first two words."""
        if n > len(self.word_hashes):
            return 0.0
        positions, same_as_next = self._ngram_occurrences(n)
        if not same_as_next.any():
            return 0.0
        # In hash order, equal hashes sit in position order: all but the first are repeats.
        repeated = np.zeros(len(positions), bool)
        repeated[1:] = same_as_next
        starts_repeat = np.zeros(len(positions), bool)
        starts_repeat[positions[repeated]] = True
        covered = np.zeros(len(self.word_hashes), bool)
        for offset in range(n):
            covered[offset : offset + len(starts_repeat)] |= starts_repeat
        return int(self.word_lengths.sum(where=covered)) / self.total_chars


def _repetition_measures(text: str, top_ns: Iterable[int], dup_ns: Iterable[int]) -> Iterator[tuple[str, float]]:
    """(name, value) of each repetition measure in check order, computed lazily; no word
    n-gram measures when `top_ns` and `dup_ns` are empty."""
    pieces = _Pieces(text)
    yield from zip(("dup_para_frac", "dup_para_char_frac"), _duplicate_fractions(pieces.hashes["para"], pieces.lengths["para"]))
    yield from zip(("dup_line_frac", "dup_line_char_frac"), _duplicate_fractions(pieces.hashes["line"], pieces.lengths["line"]))
    if not top_ns and not dup_ns:
        return
    ngrams = _WordNGrams(pieces.hashes["word"], pieces.lengths["word"])
    for n in top_ns:
        yield f"top_{n}gram", ngrams.top_fraction(n)
    for n in dup_ns:
        yield f"dup_{n}gram", ngrams.duplicate_fraction(n)


def repetition_stats(text: str, cfg: GopherRepetitionConfig | None = None) -> dict[str, float]:
    """Every repetition measure of `text` for the n-gram sizes of `cfg` (default: the
    defaults), by the names `gopher_repetition` gives as reasons. For tests and diagnostics."""
    cfg = cfg or GopherRepetitionConfig()
    return dict(
        _repetition_measures(text, sorted(cfg.top_ngram_max_char_fraction), sorted(cfg.duplicate_ngram_max_char_fraction))
    )


def gopher_repetition(text: str, cfg: GopherRepetitionConfig, language: str | None = "en") -> str | None:
    """Gopher's repetition rules, in DataTrove's order; each fraction above its maximum drops:

    dup_para_frac, dup_para_char_frac   paragraphs that repeat an earlier one: share of
                                        paragraphs, and of paragraph characters
    dup_line_frac, dup_line_char_frac   the same for lines
    top_{n}gram                         see `_WordNGrams.top_fraction`
    dup_{n}gram                         see `_WordNGrams.duplicate_fraction`

    Character fractions are over the characters of the pieces compared (paragraphs, lines or
    words), not over the whole text. Since dup_{n}gram never grows with n, the duplicate
    n-gram checks stop at the first value within every larger n's maximum: for ordinary
    prose one n-gram size instead of six. The word n-gram rules apply only to languages
    written with spaces between words.
    """
    if not cfg.enabled:
        return None
    spaced = spaces_between_words(language)
    top_ns = sorted(cfg.top_ngram_max_char_fraction) if spaced else []
    dup_ns = sorted(cfg.duplicate_ngram_max_char_fraction) if spaced else []
    limits = {
        "dup_para_frac": cfg.max_duplicate_paragraph_fraction,
        "dup_para_char_frac": cfg.max_duplicate_paragraph_char_fraction,
        "dup_line_frac": cfg.max_duplicate_line_fraction,
        "dup_line_char_frac": cfg.max_duplicate_line_char_fraction,
        **{f"top_{n}gram": cfg.top_ngram_max_char_fraction[n] for n in top_ns},
        **{f"dup_{n}gram": cfg.duplicate_ngram_max_char_fraction[n] for n in dup_ns},
    }
    # A dup_{n}gram value at or below the smallest maximum of the larger n's settles them all.
    settles_the_rest = {
        f"dup_{n}gram": min(cfg.duplicate_ngram_max_char_fraction[m] for m in dup_ns[i + 1 :])
        for i, n in enumerate(dup_ns[:-1])
    }
    for name, value in _repetition_measures(text, top_ns, dup_ns):
        if value > limits[name]:
            return f"gopher_repetition:{name}"
        if value <= settles_the_rest.get(name, -1.0):
            break
    return None
