"""What the heuristic rules and dedup may assume about a document's language and script.

The Gopher and C4 rules were made for English: words separated by spaces, sentences ended
by `.!?`. Applied to Japanese they drop every line (sentences end with `。`) and count a
whole clause as one word. So, as FineWeb-2 does per language, each rule states where it
applies; the language is the one language ID gave the document as read:

  rule                                      applies to
  ----------------------------------------  ------------------------------------------------
  Gopher word count, mean word length,      languages written with spaces between words
  "#"/ellipsis per word                     (all but UNSEGMENTED_LANGUAGES)
  Gopher stop words                         languages with a stop-word list in the config
                                            (default: en, de, fr, es, it, pt, nl, pl, ru);
                                            off for the others
  Gopher word n-gram repetition             languages with spaces between words
  Gopher line/paragraph repetition,         every language
  bullet/ellipsis lines, alphabetic words
  C4 terminal punctuation                   every language with sentence terminals, using
                                            Unicode's Sentence_Terminal marks (`。！？।؟…`);
                                            off for NO_TERMINAL_LANGUAGES (Thai, Lao, Tibetan)
  C4 words per line                         languages with spaces between words

Dedup chooses its shingles by script, per document: `mostly_unsegmented(text)` says
whether most of a text's letters are in scripts written without spaces (Han, Hiragana,
Katakana, Thai, Lao, Khmer, Myanmar, Tibetan), for which it uses character n-grams.

Tables indexed by code point are built on first use, not at import.
"""

from __future__ import annotations

import functools
import unicodedata

import numpy as np

# lid.176 labels of languages written without spaces between words.
UNSEGMENTED_LANGUAGES = frozenset({"ja", "zh", "yue", "wuu", "th", "lo", "km", "my", "bo", "dz"})
# ... and of those whose sentences carry no terminal mark (Thai and Lao end a sentence
# with a space; Tibetan's shad is not a Sentence_Terminal in Unicode).
NO_TERMINAL_LANGUAGES = frozenset({"th", "lo", "bo", "dz"})

# Unicode's Sentence_Terminal property (PropList.txt, Unicode 15), Basic Multilingual Plane.
SENTENCE_TERMINALS = frozenset(
    "!.?\u0589\u061d\u061e\u061f\u06d4\u0700\u0701\u0702\u07f9\u0837\u0839\u083d\u083e\u0964\u0965"
    "\u104a\u104b\u1362\u1367\u1368\u166e\u1735\u1736\u1803\u1809\u1944\u1945\u1aa8\u1aa9\u1aaa\u1aab"
    "\u1b5a\u1b5b\u1b5e\u1b5f\u1b7d\u1b7e\u1c3b\u1c3c\u1c7e\u1c7f\u17d4\u17d5\u203c\u203d\u2047\u2048"
    "\u2049\u2e2e\u2e3c\u2e53\u2e54\u3002\ua4ff\ua60e\ua60f\ua6f3\ua6f7\ua876\ua877\ua8ce\ua8cf\ua92f"
    "\ua9c8\ua9c9\uaa5d\uaa5e\uaa5f\uaaf0\uaaf1\uabeb\ufe52\ufe56\ufe57\uff01\uff0e\uff1f\uff61"
)
# Closing marks that may follow a terminal: 」』）” and the like (categories Pe, Pf) and
# ASCII quotes.
_CLOSING_CATEGORIES = frozenset({"Pe", "Pf"})
_ASCII_QUOTES = "\"'"

# Scripts written without spaces between words, as code point ranges.
_UNSEGMENTED_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x0F00, 0x0FFF),  # Tibetan
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # half-width Katakana
    (0x20000, 0x3134F),  # CJK extensions B-G
)


def spaces_between_words(language: str | None) -> bool:
    """Whether words of `language` are separated by spaces (unknown: assume so)."""
    return language not in UNSEGMENTED_LANGUAGES


def marks_sentence_ends(language: str | None) -> bool:
    """Whether `language` ends its sentences with a terminal mark (unknown: assume so)."""
    return language not in NO_TERMINAL_LANGUAGES


def ends_a_sentence(line: str) -> bool:
    """Whether a stripped line ends like a sentence: with a Sentence_Terminal, possibly
    followed by closing quotes or brackets (`。」`, `?)`), or with an ASCII quote (C4's
    own rule counts `"` as terminal, DataTrove's also `'`). A line ending with "..." does not."""
    if not line or line.endswith("..."):
        return False
    if line[-1] in _ASCII_QUOTES:
        return True
    end = len(line)
    while end and unicodedata.category(line[end - 1]) in _CLOSING_CATEGORIES:
        end -= 1
    return end > 0 and line[end - 1] in SENTENCE_TERMINALS


@functools.cache
def _unsegmented_table() -> np.ndarray:
    table = np.zeros(0x110000, bool)
    for low, high in _UNSEGMENTED_RANGES:
        table[low : high + 1] = True
    return table


@functools.cache
def letter_table() -> np.ndarray:
    """str.isalpha() of every code point (1.1 MB, built on first use in about 0.1 s)."""
    return np.fromiter((chr(c).isalpha() for c in range(0x110000)), bool, 0x110000)


def mostly_unsegmented(text: str, sample_chars: int = 4096) -> bool:
    """Whether most letters among the first `sample_chars` characters are in scripts
    written without spaces between words (CJK, Thai, ...)."""
    points = np.frombuffer(text[:sample_chars].encode("utf-32-le", "surrogatepass"), np.uint32)
    letters = int(np.count_nonzero(letter_table()[points]))
    return letters > 0 and 2 * int(np.count_nonzero(_unsegmented_table()[points])) > letters
