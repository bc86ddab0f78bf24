"""Normalize: Unicode NFC, one newline convention, no stray control characters.

A pure function; each step is switchable in the config's `normalize` section. Every
step has a fast path for text that needs no change, which is nearly all of it.
"""

from __future__ import annotations

import re
import unicodedata

from strata.config import NormalizeConfig

# C0 and C1 controls except tab and newline (carriage returns are handled by `newlines`).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def normalize_text(text: str, cfg: NormalizeConfig) -> str:
    if cfg.newlines and "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if cfg.control_chars and _CONTROL.search(text):
        text = _CONTROL.sub("", text)
    if cfg.nfc and not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text
