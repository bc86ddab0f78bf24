"""The heuristic filter families, measured together: Gopher quality (gopher_quality.py),
Gopher repetition (gopher_repetition.py) and C4's line cleaning (c4.py). Curate's annotate
step stores what they find; attributes.heuristic_reason decides on it."""

from __future__ import annotations

from strata.config import FilterSet
from strata.pipeline.c4 import c4_lines
from strata.pipeline.gopher_quality import quality_stats
from strata.pipeline.gopher_repetition import repetition_measures


def heuristic_attributes(text: str, filters: FilterSet, language: str | None = "en") -> dict:
    """What the heuristic families find in `text` as they apply to `language`, whatever
    their thresholds: Gopher's statistics (`gq_*`, `gopher_repetition`) and C4's verdict,
    the reason it drops the document (`c4_reason`) or the lines it keeps (`text_lines`,
    when it removed any). attributes.heuristic_reason decides on them."""
    found = quality_stats(text, filters.gopher_quality, language).as_row()
    found["gopher_repetition"] = repetition_measures(text, filters.gopher_repetition, language)
    cleaned, found["c4_reason"] = c4_lines(text, filters.c4, language)
    found["text_lines"] = cleaned if found["c4_reason"] is None and cleaned != text else None
    return found
