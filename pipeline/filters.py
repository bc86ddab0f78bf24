"""Heuristic document filters: `apply_heuristics` runs the families in order, one file each:

  gopher_quality.py     Gopher's quality rules (Rae et al. 2021, MassiveText)
  gopher_repetition.py  Gopher's repetition rules
  c4.py                 C4's line cleaning (Raffel et al. 2020)

all following DataTrove's filters except where a docstring says otherwise; text_scan.py
holds the scan the Gopher families share.

Pure functions over a document's text and its language (as language ID gave it; the
rules that assume English apply only where languages.py says they fit). Each returns the
reason it drops the document as "family:rule" (e.g. "gopher_repetition:dup_7gram"), or None to keep it; a value equal to
its threshold passes.

Units:
  word       a maximal run of non-whitespace characters: exactly the pieces of `str.split()`
             (no tokenizer, so punctuation stays attached to its word)
  line       the text between two "\\n" (upstream normalisation turns \\r\\n and \\r into \\n),
             stripped; blank lines are ignored everywhere
  paragraph  the text between blank lines, stripped
"""

from __future__ import annotations

from strata.config import FilterSet
from strata.pipeline.c4 import c4_lines
from strata.pipeline.gopher_quality import gopher_quality
from strata.pipeline.gopher_repetition import gopher_repetition


def apply_heuristics(text: str, filters: FilterSet, language: str | None = "en") -> tuple[str, str | None]:
    """Runs the enabled heuristic families in the order gopher_quality, gopher_repetition,
    c4, each as it applies to `language`; the first reason wins. Returns (the C4-cleaned
    text, None) for a kept document and (`text` unchanged, reason) for a dropped one."""
    reason = gopher_quality(text, filters.gopher_quality, language) or gopher_repetition(
        text, filters.gopher_repetition, language
    )
    if reason:
        return text, reason
    cleaned, reason = c4_lines(text, filters.c4, language)
    return (text, reason) if reason else (cleaned, None)
