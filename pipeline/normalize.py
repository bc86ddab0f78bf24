"""Normalize: Unicode NFC, one newline convention, no stray control characters.

A pure function; each step is switchable in the config's `normalize` section. Every
step has a fast path for text that needs no change, which is nearly all of it.
"""

from __future__ import annotations

import re
import unicodedata

from strata.config import NormalizeConfig

# Carriage returns (alone or before \n) and C0/C1 controls other than tab and newline.
_NEWLINES_AND_CONTROLS = re.compile(r"\r\n?|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_NEWLINES = re.compile(r"\r\n?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _replacement(match: re.Match) -> str:
    return "\n" if match.group()[0] == "\r" else ""


def normalize_text(text: str, cfg: NormalizeConfig) -> str:
    """One pass for newlines and controls, so a changed text is copied once (a 50 MB
    document is 200 MB as a Python str when it has a character beyond U+FFFF)."""
    if cfg.newlines and cfg.control_chars:
        pattern = _NEWLINES_AND_CONTROLS
    else:
        pattern = _NEWLINES if cfg.newlines else _CONTROLS if cfg.control_chars else None
    if pattern is not None and pattern.search(text):
        text = pattern.sub(_replacement, text)
    if cfg.nfc and not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text
