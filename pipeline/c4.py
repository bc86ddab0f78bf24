"""C4's line cleaning (Raffel et al. 2020), following DataTrove's C4QualityFilter except where
the docstring says otherwise, with rules that know their languages (languages.py).

A pure function over a document's text and its language.
"""

from __future__ import annotations

import re

from strata.config import C4Config
from strata.pipeline.languages import ends_a_sentence, marks_sentence_ends, spaces_between_words

_POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
_LINE = re.compile(r"[^\n]+")


def _c4_keeps_line(line: str, cfg: C4Config, language: str | None) -> bool:
    if cfg.remove_lines_without_terminal_punctuation and marks_sentence_ends(language) and not ends_a_sentence(line):
        return False
    if spaces_between_words(language) and len(line.split()) < cfg.min_words_per_line:
        return False
    if cfg.remove_javascript_lines or cfg.remove_policy_lines:
        lowered = line.lower()
        if cfg.remove_javascript_lines and "javascript" in lowered:
            return False
        if cfg.remove_policy_lines and any(phrase in lowered for phrase in _POLICY_PHRASES):
            return False
    return True


def c4_lines(text: str, cfg: C4Config, language: str | None = "en") -> tuple[str, str | None]:
    """C4's line cleaning. Returns (the kept lines, stripped, joined by "\\n"; None), or
    (`text` unchanged, reason) when the document is dropped:

    lorem_ipsum     "lorem ipsum" anywhere, in any case (the paper's page rule; DataTrove
                    only looks in lines that survived the line rules)
    curly_brace     a "{" anywhere (drop_curly_brace, off by default: it drops code)
    too_few_lines   fewer than min_lines lines left
    fragment        the rules removed more than max_removed_fraction of the characters of
                    its (stripped, non-blank) lines: what is left is not the document

    A line goes when it does not end like a sentence (`languages.ends_a_sentence`: Unicode
    sentence terminals, so `。` and `！` count; a line ending with "..." goes), has fewer
    than min_words_per_line words, mentions "javascript", or holds a cookie or terms-of-use
    phrase, each rule behind its C4Config switch and applied only where it fits the
    language (see languages.py). Blank lines always go.
    """
    if not cfg.enabled:
        return text, None
    if cfg.drop_lorem_ipsum and "lorem ipsum" in text.lower():
        return text, "c4:lorem_ipsum"
    if cfg.drop_curly_brace and "{" in text:
        return text, "c4:curly_brace"
    lines = [line for match in _LINE.finditer(text) if (line := match.group().strip())]
    kept = [line for line in lines if _c4_keeps_line(line, cfg, language)]
    if len(kept) < cfg.min_lines:
        return text, "c4:too_few_lines"
    total_chars = sum(map(len, lines))
    if total_chars - sum(map(len, kept)) > cfg.max_removed_fraction * total_chars:
        return text, "c4:fragment"
    return "\n".join(kept), None
