"""The smallest vocabulary sentencepiece can train for a sample, checked before training.

sentencepiece needs one piece per special token, per user-defined symbol, per byte
(byte fallback) and per character it must cover: the most frequent characters of the
sample until they make up `character_coverage` of it. Below that it stops with an
internal error; strata checks first and names the setting and the minimum.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from strata.config import ConfigError

BYTE_PIECES = 256


def meta_pieces(specials: int, symbols: Sequence[str]) -> int:
    """Pieces every trained model has before any character: specials, symbols, bytes."""
    return specials + len(dict.fromkeys(symbols)) + BYTE_PIECES


def required_characters(sample_path: str, character_coverage: float) -> int:
    """How many distinct characters sentencepiece keeps as pieces for this sample: the
    most frequent ones, in order, until they cover `character_coverage` of all characters."""
    counts: Counter = Counter()
    with open(sample_path, encoding="utf-8", newline="\n") as f:
        for line in f:
            counts.update(line.rstrip("\n"))
    total, covered, required = sum(counts.values()), 0, 0
    for _, count in sorted(counts.items(), key=lambda item: -item[1]):
        if total and covered / total >= character_coverage:
            break
        covered += count
        required += 1
    return required


def check_vocab_size(vocab_size: int, minimum: int, key: str, what: str) -> None:
    if vocab_size < minimum:
        raise ConfigError(f"{key}: {vocab_size} is too small; {what} needs at least {minimum}")
