"""Normalize: Unicode NFC, one newline convention, no stray control characters.

A pure function; each step is switchable in the config's `normalize` section. Every
step has a fast path for text that needs no change, which is nearly all of it.
"""

from __future__ import annotations

import re
import unicodedata

from strata.config import NormalizeConfig
from strata.pipeline.windows import newline_windows

# Texts longer than this are normalized in newline-ended windows of about this size.
WINDOW_CHARS = 1 << 20

# Carriage returns (alone or before \n) and C0/C1 controls other than tab and newline.
_NEWLINES_AND_CONTROLS = re.compile(r"\r\n?|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_NEWLINES = re.compile(r"\r\n?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _replacement(match: re.Match) -> str:
    return "\n" if match.group()[0] == "\r" else ""


def normalize_text(text: str, cfg: NormalizeConfig) -> str:
    """One pass for newlines and controls, then NFC; a text over WINDOW_CHARS is changed
    window by window (see windows.py), so that a long document is copied about once, not
    once per step plus NFC's whole-text decomposition buffer (4 bytes a character: a 50 MB
    document beyond U+FFFF is a 200 MB Python str, and each extra copy of it counts)."""
    if cfg.newlines and cfg.control_chars:
        pattern = _NEWLINES_AND_CONTROLS
    else:
        pattern = _NEWLINES if cfg.newlines else _CONTROLS if cfg.control_chars else None
    if pattern is not None and not pattern.search(text):
        pattern = None
    nfc = cfg.nfc and not text.isascii() and not unicodedata.is_normalized("NFC", text)
    if pattern is None and not nfc:
        return text
    if len(text) <= WINDOW_CHARS:
        return _normalized(text, pattern, nfc)
    return "".join(_normalized(window, pattern, nfc) for window in newline_windows(text, WINDOW_CHARS))


def _normalized(text: str, pattern: re.Pattern | None, nfc: bool) -> str:
    if pattern is not None:
        text = pattern.sub(_replacement, text)
    return unicodedata.normalize("NFC", text) if nfc else text
