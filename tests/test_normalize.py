import unicodedata

from strata.config import NormalizeConfig
from strata.pipeline.normalize import normalize_text

ALL = NormalizeConfig()


def test_nfc_composes_decomposed_accents():
    decomposed = unicodedata.normalize("NFD", "café déjà vu")
    assert decomposed != "café déjà vu"
    assert normalize_text(decomposed, ALL) == "café déjà vu"


def test_newlines_unified():
    assert normalize_text("a\r\nb\rc\n", ALL) == "a\nb\nc\n"


def test_control_characters_removed_but_tab_and_newline_kept():
    assert normalize_text("a\x00b\x07c\td\ne\x1b[0m\x85f\x7f", ALL) == "abc\td\ne[0mf"


def test_each_step_can_be_switched_off():
    text = unicodedata.normalize("NFD", "é") + "\r\n\x00"
    assert normalize_text(text, NormalizeConfig(nfc=False, newlines=False, control_chars=False)) == text
    assert normalize_text(text, NormalizeConfig(nfc=False, control_chars=False)) == unicodedata.normalize("NFD", "é") + "\n\x00"


def test_clean_text_is_returned_unchanged():
    text = "Plain ASCII text.\nWith two lines."
    assert normalize_text(text, ALL) is text


def test_a_long_text_is_normalized_window_by_window_to_the_same_result(monkeypatch):
    """Windows end after a newline: combining marks that start a line, \\r\\n pairs,
    controls and characters beyond U+FFFF come out as whole-text normalization gives them."""
    import random

    from strata.pipeline import normalize

    rng = random.Random(3)
    parts = ["e\u0301", "\n\u0301a", "\r\n", "\r", "\x00", "\x85", "\U0001f600", "\u1100\u1161", "o\u0308\u0304", "x ", "\n"]
    text = "".join(rng.choice(parts) for _ in range(5000))
    whole = normalize_text(text, ALL)
    monkeypatch.setattr(normalize, "WINDOW_CHARS", 37)
    assert normalize_text(text, ALL) == whole
    assert whole == unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").replace("\x85", ""))
