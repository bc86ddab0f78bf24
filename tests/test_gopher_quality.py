"""Gopher quality: every rule just inside and just past its threshold, the stop words of
each language, and agreement with a naive reference implementation on random texts."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from corpus import prose
from filter_texts import random_text
from strata.config import GopherQualityConfig
from strata.pipeline.gopher_quality import gopher_quality

QUALITY = GopherQualityConfig()


def words(*parts: str, total: int = 50, filler: str = "house") -> str:
    """'the of' (two stop words), then `parts`, then `filler` up to `total` words: passes
    every quality rule with the defaults unless `parts` or `filler` make it fail one."""
    head = ["the", "of", *parts]
    return " ".join(head + [filler] * (total - len(head)))


def test_quality_keeps_prose():
    assert gopher_quality(prose(random.Random(1)), QUALITY) is None


@pytest.mark.parametrize("total, reason", [(50, None), (49, "gopher_quality:min_words")])
def test_min_words(total, reason):
    assert gopher_quality(words(total=total), QUALITY) == reason


@pytest.mark.parametrize("total, reason", [(60, None), (61, "gopher_quality:max_words")])
def test_max_words(total, reason):
    assert gopher_quality(words(total=total), GopherQualityConfig(max_words=60)) == reason


@pytest.mark.parametrize("text", ["", " \n\t\u3000\n ", "word", "日本語のテキストです"])
def test_texts_with_too_few_words(text):
    assert gopher_quality(text, QUALITY) == "gopher_quality:min_words"


def test_a_text_without_words_fails_even_without_a_minimum():
    assert gopher_quality(" \n ", GopherQualityConfig(min_words=0)) == "gopher_quality:min_words"


@pytest.mark.parametrize(
    "text, reason",
    [
        (words("abcd", filler="abc"), None),  # (3 + 2 + 4 + 47 * 3) / 50 = 3.0
        (words(filler="abc"), "gopher_quality:min_mean_word_length"),  # 149 / 50
        (words("x" * 25, filler="abcdefghij"), None),  # (3 + 2 + 25 + 47 * 10) / 50 = 10.0
        (words("x" * 26, filler="abcdefghij"), "gopher_quality:max_mean_word_length"),  # 10.02
        # Lengths are in code points; CJK characters are letters.
        (words("日本語の", filler="日本語"), None),
        (words(filler="日本語"), "gopher_quality:min_mean_word_length"),
    ],
)
def test_mean_word_length(text, reason):
    assert gopher_quality(text, QUALITY) == reason


@pytest.mark.parametrize(
    "parts, reason",
    [
        (["#tag"] * 5, None),  # 5 "#" in 50 words: 0.1
        (["#tag"] * 3 + ["##"], None),  # characters count, not words
        (["#tag"] * 6, "gopher_quality:hash_ratio"),
        (["so..."] * 5, None),
        (["so..."] * 3 + ["so…"] * 3, "gopher_quality:ellipsis_ratio"),
    ],
)
def test_symbol_to_word_ratios(parts, reason):
    assert gopher_quality(words(*parts), QUALITY) == reason


LINE = "the quiet house of the river and the garden stood"  # 10 words


@pytest.mark.parametrize(
    "lines, reason",
    [
        (["• " + LINE] * 9 + [LINE], None),  # 9 of 10 lines: 0.9
        (["• " + LINE] * 10, "gopher_quality:bullet_lines"),
        (["  - " + LINE, "* " + LINE, "● " + LINE, "\t▪ " + LINE] * 3, "gopher_quality:bullet_lines"),
        (["• " + LINE] * 9 + [LINE, "", "   ", ""], None),  # blank lines do not count
        ([LINE + "..."] * 3 + [LINE] * 7, None),  # 3 of 10 lines: 0.3
        ([LINE + "..."] * 4 + [LINE] * 6, "gopher_quality:ellipsis_lines"),
        ([LINE + "…  "] * 2 + [LINE + "...."] * 2 + [LINE] * 6, "gopher_quality:ellipsis_lines"),
        ([LINE + "... more"] * 10, None),  # an ellipsis inside a line does not end it
    ],
)
def test_line_fractions(lines, reason):
    assert gopher_quality("\n".join(lines), QUALITY) == reason


@pytest.mark.parametrize(
    "parts, reason",
    [
        (["2024"] * 10, None),  # 40 of 50 words hold a letter: 0.8
        (["2024"] * 11, "gopher_quality:alpha_words"),
        (["١٢٣"] * 5 + ["½"] * 4 + ["--"], None),  # Arabic-Indic digits, fractions, dashes: no letters
        (["١٢٣"] * 5 + ["½"] * 5 + ["--"], "gopher_quality:alpha_words"),
        (["42nd"] * 11 + ["Ωmega"], None),  # one letter is enough
    ],
)
def test_alpha_words(parts, reason):
    assert gopher_quality(words(*parts), QUALITY) == reason


@pytest.mark.parametrize(
    "text, reason",
    [
        ("the " * 3 + "house " * 47, "gopher_quality:stop_words"),  # one distinct stop word
        ("The OF " + "house " * 48, "gopher_quality:stop_words"),  # case-sensitive
        ("other often " + "house " * 48, "gopher_quality:stop_words"),  # whole words only
        ("(the, of) " + "house " * 48, None),  # punctuation around them is fine
        ("with have " + "house " * 48, None),
    ],
)
def test_stop_words(text, reason):
    assert gopher_quality(text, QUALITY) == reason


def test_stop_words_come_from_the_config():
    german = GopherQualityConfig(stop_words=["und", "der"])
    assert gopher_quality("und der " + "haus " * 48, german) is None
    assert gopher_quality(words(), german) == "gopher_quality:stop_words"
    assert gopher_quality("house " * 50, GopherQualityConfig(min_stop_words=0)) is None


def test_rules_are_checked_in_order():
    assert gopher_quality("1 2 3", QUALITY) == "gopher_quality:min_words"  # not alpha_words
    assert gopher_quality(words(*["#1"] * 20), QUALITY) == "gopher_quality:hash_ratio"


def test_disabled_quality_keeps_everything():
    off = GopherQualityConfig(enabled=False)
    assert gopher_quality("", off) is None
    assert gopher_quality("# # # #", off) is None


BULLETS = tuple("•‣◦▪●○■-*")


def reference_quality(text: str, cfg: GopherQualityConfig) -> str | None:
    """The quality rules written the obvious way, word by word and line by line."""
    tokens = text.split()
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    n = len(tokens)
    mean = sum(map(len, tokens)) / n if n else 0
    checks = [
        ("max_words", lambda: n > cfg.max_words),
        ("min_words", lambda: n < max(cfg.min_words, 1)),
        ("min_mean_word_length", lambda: mean < cfg.min_mean_word_length),
        ("max_mean_word_length", lambda: mean > cfg.max_mean_word_length),
        ("hash_ratio", lambda: text.count("#") / n > cfg.max_symbol_word_ratio),
        ("ellipsis_ratio", lambda: (text.count("...") + text.count("…")) / n > cfg.max_symbol_word_ratio),
        ("bullet_lines", lambda: sum(l.startswith(BULLETS) for l in lines) / len(lines) > cfg.max_bullet_lines_fraction),
        (
            "ellipsis_lines",
            lambda: sum(l.endswith(("...", "…")) for l in lines) / len(lines) > cfg.max_ellipsis_lines_fraction,
        ),
        ("alpha_words", lambda: sum(any(c.isalpha() for c in t) for t in tokens) / n < cfg.min_alpha_words_fraction),
        ("stop_words", lambda: len(set(re.findall(r"\w+", text)) & set(cfg.stop_words_for("en"))) < cfg.min_stop_words),
    ]
    return next((f"gopher_quality:{name}" for name, failed in checks if failed()), None)


def test_quality_agrees_with_a_reference_on_random_texts():
    rng = random.Random(5)
    reasons = Counter()
    for _ in range(1500):
        text = random_text(rng)
        cfg = GopherQualityConfig(
            min_words=rng.choice([1, 10, 50]),
            max_words=rng.choice([40, 100_000]),
            max_mean_word_length=rng.choice([4.0, 10.0]),
            max_symbol_word_ratio=rng.choice([0.1, 0.3]),
            max_bullet_lines_fraction=rng.choice([0.2, 0.9]),
            max_ellipsis_lines_fraction=rng.choice([0.1, 0.3]),
            min_alpha_words_fraction=rng.choice([0.5, 0.8]),
            min_stop_words=rng.choice([0, 2, 3]),
        )
        expected = reference_quality(text, cfg)
        assert gopher_quality(text, cfg) == expected, (text, cfg)
        reasons[expected] += 1
    assert len(reasons) == 11, reasons  # every rule, and None


def test_stop_words_are_per_language_and_off_without_a_list():
    german = " ".join(["Der Hund und die Katze spielen im Garten mit dem Ball."] * 5)
    assert gopher_quality(german, QUALITY, "de") is None  # German stop words: der? no; und, die, im...
    assert gopher_quality(german, QUALITY, "en") == "gopher_quality:stop_words"
    assert gopher_quality(german, QUALITY, "sv") is None  # no Swedish list: the rule is off
    assert gopher_quality(german, GopherQualityConfig(stop_words=["the", "of"]), "de") == "gopher_quality:stop_words"


@pytest.mark.parametrize("chunk_chars", [3, 7, 64, 1 << 16])
def test_distinct_stop_words_in_chunks_equal_the_whole_word_definition(chunk_chars, monkeypatch):
    from strata.pipeline import gopher_quality as module

    monkeypatch.setattr(module, "_CHUNK_CHARS", chunk_chars)
    rng = random.Random(chunk_chars)
    vocabulary = ["the", "of", "and", "l'", "là", "theme", "_the", "of2", "и", "в", "x", " ", "  ", ",", ".", "\n", "-", "'"]
    for stop_words in (("the", "of", "and", "и", "в"), ("the", "l'", "là")):  # the second: not all word characters
        definition = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, sorted(stop_words, key=len, reverse=True))) + r")(?!\w)")
        for _ in range(200):
            text = "".join(rng.choice(vocabulary) for _ in range(rng.randint(0, 60)))
            assert module._distinct_stop_words(text, stop_words) == len(set(definition.findall(text))), text
