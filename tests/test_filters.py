"""Heuristic filters: every rule just inside and just past its threshold, exact repetition
fractions of hand-built texts, agreement with naive reference implementations on random
texts, the C4 line rules, and a 20 MB document under a memory bound."""

from __future__ import annotations

import math
import random
import re
import tracemalloc
from collections import Counter

import numpy as np
import pytest

from corpus import prose
from strata.config import C4Config, FilterSet, GopherQualityConfig, GopherRepetitionConfig
from strata.pipeline import text_scan
from strata.pipeline.c4 import c4_lines
from strata.pipeline.attributes import heuristic_reason
from strata.pipeline.gopher_quality import gopher_quality
from strata.pipeline.gopher_repetition import gopher_repetition, repetition_stats
from strata.pipeline.heuristics import heuristic_attributes

QUALITY = GopherQualityConfig()
REPETITION = GopherRepetitionConfig()
C4 = C4Config()
STOP_WORDS = set(QUALITY.stop_words_for("en"))


def words(*parts: str, total: int = 50, filler: str = "house") -> str:
    """'the of' (two stop words), then `parts`, then `filler` up to `total` words: passes
    every quality rule with the defaults unless `parts` or `filler` make it fail one."""
    head = ["the", "of", *parts]
    return " ".join(head + [filler] * (total - len(head)))


# --------------------------------------------------------------------------- Gopher quality


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


VOCABULARY = ["the", "of", "The", "and", "house", "a", "bb", "extraordinarily", "#x", "so...", "x…", "2024", "½",
              "日本", "Ωmega", "•", "-", "*", "--", "(that)", "with,", "\ud800"]  # fmt: skip
SEPARATORS = [" "] * 6 + ["\n", "\n\n", " \n \n", "\t", "\u00a0", "\u2003", "\u3000", "\r\n"]


def random_text(rng: random.Random, vocabulary=VOCABULARY, max_words: int = 120) -> str:
    return "".join(rng.choice(vocabulary) + rng.choice(SEPARATORS) for _ in range(rng.randint(0, max_words)))


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


# --------------------------------------------------------------------------- Gopher repetition

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


# --------------------------------------------------------------------------- C4


def test_c4_keeps_sentences_and_removes_bad_lines():
    text = "\n".join(
        [
            "  This line is a proper sentence.  ",
            "A heading without punctuation",
            "Trailing off into nothing...",
            "Too short.",
            "",
            "Please enable JavaScript to view this page.",
            "This site uses cookies to improve things.",
            "Read our Privacy Policy before you go.",
            "By using it you accept the terms of use.",
            'He said "this is the end."',
            "Is this also kept as a line?",
            "Yes it is kept as well!",
            "It's what they call 'the end'",
        ]
    )
    cleaned, reason = c4_lines(text, C4Config(max_removed_fraction=1.0))
    assert reason is None
    assert cleaned.split("\n") == [
        "This line is a proper sentence.",
        'He said "this is the end."',
        "Is this also kept as a line?",
        "Yes it is kept as well!",
        "It's what they call 'the end'",
    ]


@pytest.mark.parametrize(
    "switch, line",
    [
        ({"remove_lines_without_terminal_punctuation": False}, "A heading without punctuation"),
        ({"remove_lines_without_terminal_punctuation": False}, "Trailing off into nothing..."),
        ({"min_words_per_line": 1}, "Short."),
        ({"remove_javascript_lines": False}, "Please enable JavaScript to view this page."),
        ({"remove_policy_lines": False}, "This site uses cookies to improve things."),
    ],
)
def test_c4_line_rules_can_be_switched_off(switch, line):
    text = f"This line is a proper sentence.\n{line}"
    assert c4_lines(text, C4Config(max_removed_fraction=1.0)) == ("This line is a proper sentence.", None)
    assert c4_lines(text, C4Config(max_removed_fraction=1.0, **switch)) == (text, None)


@pytest.mark.parametrize(
    "text, cfg, reason",
    [
        ("A fine line of text here.\nSome LOREM Ipsum dolor sit amet", C4, "c4:lorem_ipsum"),
        ("function f() { return 1; } is a line.", C4Config(drop_curly_brace=True), "c4:curly_brace"),
        ("", C4, "c4:too_few_lines"),
        ("no punctuation at all\nnor here", C4, "c4:too_few_lines"),
        ("One kept sentence here.\nTwo kept sentences here.", C4Config(min_lines=3), "c4:too_few_lines"),
    ],
)
def test_c4_drops_return_the_text_unchanged(text, cfg, reason):
    assert c4_lines(text, cfg) == (text, reason)


def test_c4_defaults_keep_curly_braces_and_count_kept_lines():
    assert c4_lines("Use {braces} in a line.", C4) == ("Use {braces} in a line.", None)
    three = "One kept sentence here.\nTwo kept sentences here.\nThree kept sentences here."
    assert c4_lines(three, C4Config(min_lines=3)) == (three, None)


def test_disabled_c4_keeps_everything():
    assert c4_lines("lorem ipsum {", C4Config(enabled=False)) == ("lorem ipsum {", None)


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


def traced_peak(function, *args):
    tracemalloc.start()
    try:
        result = function(*args)
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

JAPANESE_LINES = "chmod はファイルのアクセス権を変更します。\n所有者だけが変更できます！\n「はい」と答えました。」\n本当ですか？"


def test_c4_knows_unicode_sentence_terminals():
    assert c4_lines(JAPANESE_LINES, C4, "ja") == (JAPANESE_LINES, None)
    # a line of Japanese is one whitespace word: the words-per-line rule is off for it
    assert c4_lines("見出し\n" + JAPANESE_LINES, C4, "ja") == (JAPANESE_LINES, None)
    assert c4_lines("Это предложение на русском языке.\nА это вопрос?", C4, "ru")[1] is None


def test_c4_terminal_rule_is_off_for_languages_without_terminals():
    thai = "ภาษาไทยไม่มีเครื่องหมายจบประโยค\nประโยคถัดไปเริ่มหลังช่องว่าง"
    assert c4_lines(thai, C4, "th") == (thai, None)
    assert c4_lines(thai, C4, "en") == (thai, "c4:too_few_lines")


@pytest.mark.parametrize("max_removed, reason", [(0.5, "c4:fragment"), (0.9, None)])
def test_c4_drops_a_document_cut_by_more_than_the_fraction(max_removed, reason):
    text = "One kept sentence is here.\nA heading without any punctuation at all\nAnother long heading line without a stop"
    cleaned, got = c4_lines(text, C4Config(max_removed_fraction=max_removed))
    assert got == reason
    assert cleaned == (text if reason else "One kept sentence is here.")


def test_gopher_word_rules_are_off_for_languages_without_spaces():
    japanese = "日本語の文章には単語の間に空白がありません。" * 10  # one whitespace "word"
    assert gopher_quality(japanese, QUALITY, "en") == "gopher_quality:min_words"
    assert gopher_quality(japanese, QUALITY, "ja") is None
    assert gopher_repetition(japanese + "\n" + japanese, REPETITION, "ja") == "gopher_repetition:dup_line_frac"


def test_stop_words_are_per_language_and_off_without_a_list():
    german = " ".join(["Der Hund und die Katze spielen im Garten mit dem Ball."] * 5)
    assert gopher_quality(german, QUALITY, "de") is None  # German stop words: der? no; und, die, im...
    assert gopher_quality(german, QUALITY, "en") == "gopher_quality:stop_words"
    assert gopher_quality(german, QUALITY, "sv") is None  # no Swedish list: the rule is off
    assert gopher_quality(german, GopherQualityConfig(stop_words=["the", "of"]), "de") == "gopher_quality:stop_words"
