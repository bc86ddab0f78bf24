"""Gopher's quality rules (Rae et al. 2021, MassiveText), following DataTrove's
GopherQualityFilter except where the docstring says otherwise.

A pure function over a document's text and its language (as language ID gave it; the rules
that assume English apply only where languages.py says they fit). It returns the reason it
drops the document as "gopher_quality:rule" (e.g. "gopher_quality:min_words"), or None to
keep it; a value equal to its threshold passes. `quality_stats` measures the text whatever
the thresholds; gopher_stats.quality_decision decides on the measures.

Units (text_scan.py scans for them): a word is a piece of `str.split()`, so punctuation
stays attached to its word; a line is the stripped text between two "\\n", and blank lines
are ignored.
"""

from __future__ import annotations

import functools
import re

import numpy as np

from strata.config import GopherQualityConfig
from strata.pipeline.gopher_stats import QualityStats, quality_decision
from strata.pipeline.languages import letter_table, spaces_between_words
from strata.pipeline.text_scan import Block, blocks, bullet_table, ends_with


_WORD_RUN = re.compile(r"\w+")
_NOT_WORD = re.compile(r"\W")
_CHUNK_CHARS = 1 << 16


@functools.lru_cache(maxsize=64)
def _stop_word_pattern(stop_words: tuple[str, ...]) -> re.Pattern:
    alternatives = "|".join(map(re.escape, sorted(stop_words, key=len, reverse=True)))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def _distinct_stop_words(text: str, stop_words: tuple[str, ...]) -> int:
    """How many different stop words occur as whole words (case-sensitive): not preceded or
    followed by a word character (`\w`). A stop word made of word characters occurs so exactly
    where it is a whole run of them, so the text's runs are collected a chunk at a time (cut
    at a non-word character) and intersected with the list: one C-level scan, where trying
    the alternation at every character cost ten times as much."""
    wanted = frozenset(stop_words)
    if not all(_WORD_RUN.fullmatch(word) for word in wanted):
        return len({match.group() for match in _stop_word_pattern(stop_words).finditer(text)})
    found: set[str] = set()
    start = 0
    while start < len(text) and len(found) < len(wanted):
        end = len(text)
        if start + _CHUNK_CHARS < len(text) and (cut := _NOT_WORD.search(text, start + _CHUNK_CHARS)):
            end = cut.start()
        found |= wanted.intersection(_WORD_RUN.findall(text, start, end))
        start = end
    return len(found)


def quality_stats(text: str, cfg: GopherQualityConfig, language: str | None) -> QualityStats:
    """What Gopher's quality rules look at in `text`, whatever the thresholds: one pass,
    block by block."""
    letters, bullets = letter_table(), bullet_table()
    words = chars = alpha_words = lines = bullet_lines = ellipsis_lines = 0
    for block in map(Block, blocks(text)):
        starts, ends = block.word_starts, block.word_ends
        words += len(starts)
        chars += int((ends - starts).sum())
        letters_before = np.zeros(len(block.points) + 1, np.int32)
        np.cumsum(letters[block.points], out=letters_before[1:])
        alpha_words += int(np.count_nonzero(letters_before[ends] > letters_before[starts]))
        line_starts, line_ends = block.spans(newlines=1)
        lines += len(line_starts)
        bullet_lines += int(np.count_nonzero(bullets[block.points[line_starts]]))
        ellipsis_lines += int(np.count_nonzero(
            ends_with(block.points, line_starts, line_ends, "...") | ends_with(block.points, line_starts, line_ends, "…")
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
