"""C4's line rules: each line rule and its switch, the document drops, and the rules that
know their languages."""

from __future__ import annotations

import pytest

from strata.config import C4Config
from strata.pipeline.c4 import c4_lines

C4 = C4Config()


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
