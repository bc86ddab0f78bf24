"""The heuristic filters together: the scan they share (text_scan.py) in blocks of any size,
tables built on first use and not at import, all families measured at once, and a 20 MB
document under a memory bound. Each family's rules have their own file: test_gopher_quality.py,
test_gopher_repetition.py, test_c4.py."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from corpus import prose
from filter_texts import REPEATING, random_text, reference_repetition
from strata.config import C4Config, FilterSet, GopherQualityConfig, GopherRepetitionConfig
from strata.pipeline import text_scan
from strata.pipeline.attributes import heuristic_reason
from strata.pipeline.gopher_quality import gopher_quality
from strata.pipeline.gopher_repetition import gopher_repetition, repetition_stats
from strata.pipeline.heuristics import heuristic_attributes

QUALITY = GopherQualityConfig()
REPETITION = GopherRepetitionConfig()
STOP_WORDS = set(QUALITY.stop_words_for("en"))


# --------------------------------------------------------------------------- scanning in blocks


def test_words_end_exactly_where_str_split_ends_them():
    every_char = "".join(map(chr, range(0x110000)))
    is_space = np.array([c.isspace() for c in every_char])
    assert (~text_scan.word_char_table() == is_space).all()
    regex_space = np.zeros(0x110000, bool)
    regex_space[[ord(c) for c in re.findall(r"\s", every_char)]] = True
    assert (regex_space == is_space).all()  # block cuts at \s never split a word


def test_blocks_cover_the_text(monkeypatch):
    monkeypatch.setattr(text_scan, "BLOCK_CHARS", 8)
    rng = random.Random(4)
    for _ in range(200):
        text = random_text(rng) + "x" * rng.choice([0, 40])  # sometimes a word longer than 2 blocks
        blocks = list(text_scan.blocks(text))
        assert "".join(blocks) == text
        assert all(8 <= len(block) <= 16 for block in blocks[:-1]) and len(blocks[-1]) <= 16


def short_paragraph(rng: random.Random) -> str:
    lines = [" ".join(rng.choices(REPEATING, k=rng.randint(1, 3))) for _ in range(rng.randint(1, 3))]
    return "\n".join(lines)


def test_small_blocks_give_the_same_results(monkeypatch):
    """Texts of paragraphs under 32 characters scanned in blocks of 32-64 characters: every
    cut falls on a paragraph break, so nothing straddles one."""
    rng = random.Random(6)
    texts = ["\n\n".join(short_paragraph(rng) for _ in range(rng.randint(1, 40))) for _ in range(200)]
    texts = [text for text in texts if max(map(len, text.split("\n\n"))) < 32]
    configs = [GopherQualityConfig(min_words=5, min_mean_word_length=1, min_alpha_words_fraction=0.5, min_stop_words=0),
               GopherQualityConfig(max_words=40, min_words=1, min_stop_words=0)]  # fmt: skip
    whole = [(repetition_stats(text), [gopher_quality(text, cfg) for cfg in configs]) for text in texts]
    monkeypatch.setattr(text_scan, "BLOCK_CHARS", 32)
    assert any(len(list(text_scan.blocks(text))) > 3 for text in texts)
    for text, expected in zip(texts, whole):
        assert (repetition_stats(text), [gopher_quality(text, cfg) for cfg in configs]) == expected
        assert expected[0] == reference_repetition(text)


# --------------------------------------------------------------------------- tables on first use

# Run in a fresh interpreter: what the family modules import from elsewhere first, then the
# families under tracemalloc (what their import keeps allocated: the peak also counts
# compiling them when no bytecode is cached), then one document through each family.
IMPORT_COST = r"""
import json, tracemalloc
import numpy, strata.config, strata.pipeline.c4, strata.pipeline.gopher_stats, strata.pipeline.hashing
from strata.pipeline.languages import letter_table
tracemalloc.start()
from strata.pipeline import gopher_quality, gopher_repetition, heuristics, text_scan
kept_by_import = tracemalloc.get_traced_memory()[0]
tracemalloc.stop()
tables = {"word_char": text_scan.word_char_table, "bullet": text_scan.bullet_table,
          "powers": text_scan.power_table, "letter": letter_table}
def built():
    return {name: table.cache_info().currsize for name, table in tables.items()}
found = {"kept_by_import": kept_by_import, "after_import": built()}
text = "the cat sat on the mat\n- and the dog of the house sat there too..." * 5
gopher_quality.gopher_quality(text, strata.config.GopherQualityConfig())
found["after_quality"] = built()
gopher_repetition.gopher_repetition(text, strata.config.GopherRepetitionConfig())
found["after_repetition"] = built()
print(json.dumps(found))
"""


def test_importing_the_families_builds_no_tables():
    """The code-point tables (1.1 MB each) and the power tables (4 MB each) wait for the
    first document of a family that needs them: a worker that enables no family, or only
    one, does not pay for the others."""
    result = subprocess.run([sys.executable, "-c", IMPORT_COST], capture_output=True, text=True, check=True)
    found = json.loads(result.stdout)
    assert found["kept_by_import"] < 2**20  # the modules themselves: ~85 KB
    assert found["after_import"] == {"word_char": 0, "bullet": 0, "powers": 0, "letter": 0}
    assert found["after_quality"] == {"word_char": 1, "bullet": 1, "powers": 0, "letter": 1}
    assert found["after_repetition"] == {"word_char": 1, "bullet": 1, "powers": 2, "letter": 1}


# --------------------------------------------------------------------------- all families


def _heuristics(text, rules):
    """(C4's kept lines or None, the first reason) as annotation and then selection find them."""
    found = heuristic_attributes(text, rules, "en")
    return found["text_lines"], heuristic_reason({**found, "language": "en"}, rules)


def test_heuristic_attributes_hold_the_cleaned_text_of_a_kept_document():
    text = prose(random.Random(2)) + "\nA heading without punctuation"
    cleaned, reason = _heuristics(text, FilterSet())
    assert reason is None
    assert cleaned == text.rsplit("\n", 1)[0]


def test_heuristic_selection_first_reason_wins():
    spam = "buy now " * 10  # too short for quality and repetitive
    assert _heuristics(spam, FilterSet()) == (None, "gopher_quality:min_words")
    no_quality = FilterSet(gopher_quality=GopherQualityConfig(enabled=False))
    assert _heuristics(spam, no_quality) == (None, "gopher_repetition:top_2gram")
    only_c4 = no_quality.model_copy(update={"gopher_repetition": GopherRepetitionConfig(enabled=False)})
    assert _heuristics(spam, only_c4) == (None, "c4:too_few_lines")
    nothing = only_c4.model_copy(update={"c4": C4Config(enabled=False)})
    assert _heuristics(spam, nothing) == (None, None)


# --------------------------------------------------------------------------- a 20 MB document


@pytest.fixture(scope="module")
def twenty_mb_text():
    """About 3.3M words: 10 MB of random words in lines of 13, then the same words in lines
    of 17. No line or paragraph repeats and no n-gram dominates, but every 5-gram occurs
    twice."""
    rng = np.random.default_rng(7)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocabulary = {"".join(rng.choice(letters, int(k))) for k in rng.integers(2, 9, 6000)} - STOP_WORDS
    vocabulary = sorted(vocabulary)
    picks = [vocabulary[i] for i in (rng.zipf(1.3, 1_650_000) % len(vocabulary))]
    first = "\n".join(" ".join(picks[i : i + 13]) for i in range(0, len(picks), 13))
    second = "\n".join(" ".join(picks[i : i + 17]) for i in range(0, len(picks), 17))
    return f"{first}\n\n{second}"


def traced_peak(function, text, *args):
    """The result and peak traced memory of function(text, *args), not counting the tables
    the scan builds on its first use in this process (once per process, not per document)."""
    function(text[:1000], *args)
    tracemalloc.start()
    try:
        result = function(text, *args)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_quality_of_a_huge_document_reads_one_block(twenty_mb_text):
    """Per-character arrays of one block (at most 512K characters: uint32 code points,
    int32 letter counts, bool flags, ~10 bytes a character) bound the memory."""
    assert len(twenty_mb_text) > 19_000_000
    reason, peak = traced_peak(gopher_quality, twenty_mb_text, QUALITY)
    assert reason == "gopher_quality:max_words"
    assert peak < 12 * 2**20
    reason, peak = traced_peak(gopher_quality, twenty_mb_text, GopherQualityConfig(max_words=10**9))
    assert reason == "gopher_quality:stop_words"  # every block scanned, no stop word anywhere
    assert peak < 12 * 2**20


def test_repetition_of_a_huge_document_stays_within_memory(twenty_mb_text):
    """About 28 bytes a word at the peak: the uint64 hash and int32 length of every word,
    held twice while the blocks' arrays are joined, or once beside one n-gram size's uint64
    sort keys, int32 positions and bool flags. That is under 5 bytes a character of this
    text (~6 characters a word); the words as a list of str alone would take ~57 bytes a
    word."""
    reason, peak = traced_peak(gopher_repetition, twenty_mb_text, REPETITION)
    assert reason == "gopher_repetition:dup_5gram"
    assert peak < 6 * len(twenty_mb_text)


# --------------------------------------------------------------------------- rules that know their languages


def test_gopher_word_rules_are_off_for_languages_without_spaces():
    japanese = "日本語の文章には単語の間に空白がありません。" * 10  # one whitespace "word"
    assert gopher_quality(japanese, QUALITY, "en") == "gopher_quality:min_words"
    assert gopher_quality(japanese, QUALITY, "ja") is None
    assert gopher_repetition(japanese + "\n" + japanese, REPETITION, "ja") == "gopher_repetition:dup_line_frac"
