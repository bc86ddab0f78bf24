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
