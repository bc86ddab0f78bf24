"""Random texts for the heuristic filters' tests, and the repetition measures written the
obvious way, to compare the vectorised ones with."""

from __future__ import annotations

import random
import re
from collections import Counter

VOCABULARY = ["the", "of", "The", "and", "house", "a", "bb", "extraordinarily", "#x", "so...", "x…", "2024", "½",
              "日本", "Ωmega", "•", "-", "*", "--", "(that)", "with,", "\ud800"]  # fmt: skip
SEPARATORS = [" "] * 6 + ["\n", "\n\n", " \n \n", "\t", "\u00a0", "\u2003", "\u3000", "\r\n"]


def random_text(rng: random.Random, vocabulary=VOCABULARY, max_words: int = 120) -> str:
    return "".join(rng.choice(vocabulary) + rng.choice(SEPARATORS) for _ in range(rng.randint(0, max_words)))


def duplicate_fractions(pieces: list[str]) -> tuple[float, float]:
    seen, repeats, repeat_chars = set(), 0, 0
    for piece in pieces:
        if piece in seen:
            repeats, repeat_chars = repeats + 1, repeat_chars + len(piece)
        seen.add(piece)
    return (repeats / len(pieces), repeat_chars / sum(map(len, pieces))) if pieces else (0.0, 0.0)


def reference_repetition(text: str) -> dict[str, float]:
    """The repetition measures written the obvious way, on lists of str."""
    tokens = text.split()
    total = sum(map(len, tokens))
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    stats = dict(zip(["dup_para_frac", "dup_para_char_frac"], duplicate_fractions(paragraphs)))
    stats.update(zip(["dup_line_frac", "dup_line_char_frac"], duplicate_fractions(lines)))
    for n in (2, 3, 4):
        counts = Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        top = max(counts.values(), default=0)
        longest = max((sum(map(len, gram)) for gram, count in counts.items() if count == top), default=0)
        stats[f"top_{n}gram"] = top * longest / total if top > 1 else 0.0
    for n in range(5, 11):
        grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        seen, covered = set(), set()
        for i, gram in enumerate(grams):
            if gram in seen:  # a repeat of an earlier occurrence
                covered.update(range(i, i + n))
            seen.add(gram)
        stats[f"dup_{n}gram"] = sum(len(tokens[i]) for i in covered) / total if covered else 0.0
    return stats


REPEATING = ["a", "b", "the", "cc", "日本", "é", "x.", "--", "\ud800", "a\x00"]
