"""Gopher's quality rules (Rae et al. 2021, MassiveText), following DataTrove's
GopherQualityFilter except where the docstring says otherwise: a pure function over a
document's text and its language (units and conventions in filters.py)."""

from __future__ import annotations

import functools
import re

import numpy as np

from strata.config import GopherQualityConfig
from strata.pipeline.languages import letter_table, spaces_between_words
from strata.pipeline.text_scan import Block, blocks, char_table

_BULLETS = "•‣◦▪●○■-*"


@functools.cache
def _bullet_table() -> np.ndarray:
    return char_table(_BULLETS)


def _ends_with(points: np.ndarray, starts: np.ndarray, ends: np.ndarray, suffix: str) -> np.ndarray:
    """Whether each span of `points` ends with `suffix`."""
    result = ends - starts >= len(suffix)
    for offset, char in enumerate(reversed(suffix), 1):
        result &= points[np.maximum(ends - offset, 0)] == ord(char)
    return result


def _reason(rule: str) -> str:
    return f"gopher_quality:{rule}"


@functools.lru_cache(maxsize=64)
def _stop_word_pattern(stop_words: tuple[str, ...]) -> re.Pattern:
    alternatives = "|".join(map(re.escape, sorted(stop_words, key=len, reverse=True)))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def _distinct_stop_words(text: str, stop_words: tuple[str, ...], enough: int) -> int:
    """How many different stop words occur as whole words (case-sensitive), counting no
    further than `enough`."""
    found: set[str] = set()
    for match in _stop_word_pattern(stop_words).finditer(text):
        found.add(match.group())
        if len(found) >= enough:
            break
    return len(found)


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
    as words, and line fractions ignore blank lines. A long text is scanned block by block and
    fails max_words as soon as the blocks read so far hold too many words.

    In a language without spaces between words only the line and alpha_words rules apply (a
    whitespace "word" there is a clause); the stop-word rule applies only to languages with
    stop words in the config.
    """
    if not cfg.enabled:
        return None
    spaced = spaces_between_words(language)
    letters = letter_table()
    words = chars = alpha_words = lines = bullet_lines = ellipsis_lines = 0
    for block in map(Block, blocks(text)):
        starts, ends = block.word_starts, block.word_ends
        words += len(starts)
        if spaced and words > cfg.max_words:
            return _reason("max_words")
        chars += int((ends - starts).sum())
        letters_before = np.zeros(len(block.points) + 1, np.int32)
        np.cumsum(letters[block.points], out=letters_before[1:])
        alpha_words += int(np.count_nonzero(letters_before[ends] > letters_before[starts]))
        line_starts, line_ends = block.spans(newlines=1)
        lines += len(line_starts)
        bullet_lines += int(np.count_nonzero(_bullet_table()[block.points[line_starts]]))
        ellipsis_lines += int(
            np.count_nonzero(
                _ends_with(block.points, line_starts, line_ends, "...")
                | _ends_with(block.points, line_starts, line_ends, "…")
            )
        )

    if words < (max(cfg.min_words, 1) if spaced else 1):
        return _reason("min_words")
    if spaced and (reason := _word_rules(text, words, chars, cfg)):
        return reason
    if bullet_lines / lines > cfg.max_bullet_lines_fraction:
        return _reason("bullet_lines")
    if ellipsis_lines / lines > cfg.max_ellipsis_lines_fraction:
        return _reason("ellipsis_lines")
    if alpha_words / words < cfg.min_alpha_words_fraction:
        return _reason("alpha_words")
    stop_words = cfg.stop_words_for(language) if spaced else None
    if cfg.min_stop_words > 0 and stop_words:
        if _distinct_stop_words(text, stop_words, cfg.min_stop_words) < cfg.min_stop_words:
            return _reason("stop_words")
    return None


def _word_rules(text: str, words: int, chars: int, cfg: GopherQualityConfig) -> str | None:
    """Gopher's rules on whitespace words, for languages written with spaces between words."""
    if chars / words < cfg.min_mean_word_length:
        return _reason("min_mean_word_length")
    if chars / words > cfg.max_mean_word_length:
        return _reason("max_mean_word_length")
    if text.count("#") / words > cfg.max_symbol_word_ratio:
        return _reason("hash_ratio")
    if (text.count("...") + text.count("…")) / words > cfg.max_symbol_word_ratio:
        return _reason("ellipsis_ratio")
    return None
