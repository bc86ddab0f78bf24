"""Gopher repetition: exact fractions of hand-built texts, every maximum just inside and just
past its value, and agreement with a naive reference implementation on random texts."""

from __future__ import annotations

import math
import random

import pytest

from corpus import prose
from filter_texts import REPEATING, VOCABULARY, random_text, reference_repetition
from strata.config import GopherRepetitionConfig
from strata.pipeline.gopher_repetition import gopher_repetition, repetition_stats

REPETITION = GopherRepetitionConfig()

DEFAULT_NS = {f"top_{n}gram" for n in (2, 3, 4)} | {f"dup_{n}gram" for n in range(5, 11)}


def test_repetition_of_texts_without_words_is_zero():
    for text in ["", " \n\n\t ", "\u3000"]:
        assert set(repetition_stats(text).values()) == {0.0}
        assert gopher_repetition(text, REPETITION) is None


def test_duplicate_paragraphs_and_lines():
    stats = repetition_stats("alpha beta\n\ngamma\n \n  alpha beta \n\n\n")
    assert stats["dup_para_frac"] == 1 / 3
    assert stats["dup_para_char_frac"] == 10 / 25  # "alpha beta" again, of 10 + 5 + 10
    assert stats["dup_line_frac"] == 1 / 3
    assert stats["dup_line_char_frac"] == 10 / 25


def test_duplicate_lines_within_one_paragraph():
    stats = repetition_stats("one two\nthree\n one two\nfour")
    assert stats["dup_para_frac"] == stats["dup_para_char_frac"] == 0
    assert stats["dup_line_frac"] == 1 / 4
    assert stats["dup_line_char_frac"] == 7 / 23


def test_top_ngram_fraction():
    stats = repetition_stats("a b a b c")
    assert stats["top_2gram"] == 2 * 2 / 5  # "a b" twice, 2 characters, of 5
    assert stats["top_3gram"] == stats["top_4gram"] == 0  # no trigram occurs twice


def test_top_ngram_ties_go_to_the_longest():
    stats = repetition_stats("x y long word x y long word")  # 20 characters
    assert stats["top_2gram"] == 2 * 8 / 20  # "x y", "y long", "long word": twice each
    assert stats["top_3gram"] == 2 * 9 / 20  # "y long word"
    assert stats["top_4gram"] == 2 * 10 / 20


def test_duplicate_ngram_fraction_counts_repeats_of_an_earlier_ngram_once():
    stats = repetition_stats("a b c d e a b c d e f")
    assert stats["dup_5gram"] == 5 / 11  # the second "a b c d e"; the first is not a repeat
    assert stats["dup_6gram"] == 0
    overlapping = repetition_stats("a a a a a a a")  # 5-grams at 0, 1, 2: the last two repeat
    assert overlapping["dup_5gram"] == 6 / 7  # words 1..6, each counted once
    assert overlapping["dup_6gram"] == 6 / 7
    assert repetition_stats("a a a a a a")["dup_6gram"] == 0


def test_ngram_fractions_use_word_characters():
    cfg = GopherRepetitionConfig(top_ngram_max_char_fraction={2: 1, 3: 1}, duplicate_ngram_max_char_fraction={2: 1, 3: 1, 4: 1})
    stats = repetition_stats("aa b ccc aa b ccc dddd", cfg)  # 16 characters
    assert stats["top_2gram"] == 2 * 4 / 16  # "aa b" and "b ccc" tie; "b ccc" is longer
    assert stats["top_3gram"] == 2 * 6 / 16
    assert stats["dup_2gram"] == stats["dup_3gram"] == 6 / 16  # the second "aa b ccc"
    assert stats["dup_4gram"] == 0
    assert repetition_stats("日本 語 日本 語 x")["top_2gram"] == 2 * 3 / 7  # code points


REPETITION_FIELDS = {
    "dup_para_frac": "max_duplicate_paragraph_fraction",
    "dup_para_char_frac": "max_duplicate_paragraph_char_fraction",
    "dup_line_frac": "max_duplicate_line_fraction",
    "dup_line_char_frac": "max_duplicate_line_char_fraction",
}


def repetition_config(limits: dict[str, float]) -> GopherRepetitionConfig:
    """The default measures, each with its maximum from `limits` or else 1.0 (never fails)."""
    return GopherRepetitionConfig(
        **{field: limits.get(name, 1.0) for name, field in REPETITION_FIELDS.items()},
        top_ngram_max_char_fraction={n: limits.get(f"top_{n}gram", 1.0) for n in (2, 3, 4)},
        duplicate_ngram_max_char_fraction={n: limits.get(f"dup_{n}gram", 1.0) for n in range(5, 11)},
    )


@pytest.fixture(scope="module")
def repetitive_text():
    rng = random.Random(3)
    first, second = prose(rng, sentences=9), prose(rng, sentences=9)
    return f"{first}\n\n{second}\n\n{first}\n\n{first.splitlines()[0]}"


@pytest.mark.parametrize("name", [*REPETITION_FIELDS, *sorted(DEFAULT_NS)])
def test_each_repetition_limit_is_a_maximum(repetitive_text, name):
    value = repetition_stats(repetitive_text)[name]
    assert 0 < value < 1
    assert gopher_repetition(repetitive_text, repetition_config({name: value})) is None
    below = math.nextafter(value, 0)
    assert gopher_repetition(repetitive_text, repetition_config({name: below})) == f"gopher_repetition:{name}"


def test_repetition_defaults():
    rng = random.Random(8)
    assert gopher_repetition(prose(rng, sentences=30), REPETITION) is None
    assert gopher_repetition("\n".join(["Buy cheap watches now."] * 5 + ["Other words."] * 5), REPETITION) == (
        "gopher_repetition:dup_line_frac"
    )
    looping = " ".join(prose(rng).split()[:12] * 8)
    assert gopher_repetition(looping, REPETITION) == "gopher_repetition:top_2gram"


def test_disabled_repetition_keeps_everything():
    assert gopher_repetition("spam " * 1000, GopherRepetitionConfig(enabled=False)) is None


def test_repetition_agrees_with_a_reference_on_random_texts():
    rng = random.Random(11)
    for i in range(600):
        text = random_text(rng, REPEATING if i % 2 else VOCABULARY, max_words=150)
        assert repetition_stats(text) == reference_repetition(text), text


def test_repetition_stops_at_the_first_measure_over_its_limit():
    """Including the shortcut: a dup_{n}gram within every larger n's limit settles them."""
    rng = random.Random(12)
    for _ in range(300):
        text = random_text(rng, REPEATING, max_words=150)
        stats = repetition_stats(text)
        limits = {name: rng.choice([value, math.nextafter(value, 0), 0.1, 0.5]) for name, value in stats.items()}
        expected = next((f"gopher_repetition:{name}" for name, value in stats.items() if value > limits[name]), None)
        assert gopher_repetition(text, repetition_config(limits)) == expected


def test_duplicate_ngram_fraction_never_grows_with_n():
    rng = random.Random(13)
    for _ in range(200):
        stats = repetition_stats(random_text(rng, REPEATING, max_words=150))
        dup = [stats[f"dup_{n}gram"] for n in range(5, 11)]
        assert dup == sorted(dup, reverse=True)
