"""Gopher's decisions on a document's statistics (gopher_quality.py and gopher_repetition.py
compute them).

The statistics of a text (word, line and symbol counts; repetition fractions) depend on
the text, its language and the few settings that say what to count (stop words, n-gram
sizes); the decisions compare them with thresholds. Curate stores the statistics as
attribute columns, so changing only thresholds re-decides every document without reading
its text again, with the same reason a from-scratch run gives (same expressions, same order).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from strata.config import GopherQualityConfig, GopherRepetitionConfig
from strata.pipeline.languages import spaces_between_words


@dataclass(frozen=True)
class QualityStats:
    """What Gopher's quality rules look at; `stop_words` is None where the rule does not apply."""

    words: int
    chars: int  # characters inside words
    alpha_words: int
    lines: int
    bullet_lines: int
    ellipsis_lines: int
    hashes: int  # "#" in the text
    ellipses: int  # "..." and "…" in the text
    stop_words: int | None  # distinct stop words found as whole words

    def as_row(self) -> dict:
        return {f"gq_{name}": value for name, value in asdict(self).items()}

    @classmethod
    def from_row(cls, row: dict) -> "QualityStats":
        return cls(**{name: row[f"gq_{name}"] for name in cls.__dataclass_fields__})


def quality_decision(stats: QualityStats, cfg: GopherQualityConfig, language: str | None) -> str | None:
    """Gopher's quality rules on `stats`, in DataTrove's order (see gopher_quality.gopher_quality)."""
    if not cfg.enabled:
        return None
    spaced = spaces_between_words(language)
    words = stats.words
    if spaced and words > cfg.max_words:
        return "gopher_quality:max_words"
    if words < (max(cfg.min_words, 1) if spaced else 1):
        return "gopher_quality:min_words"
    if spaced:
        if stats.chars / words < cfg.min_mean_word_length:
            return "gopher_quality:min_mean_word_length"
        if stats.chars / words > cfg.max_mean_word_length:
            return "gopher_quality:max_mean_word_length"
        if stats.hashes / words > cfg.max_symbol_word_ratio:
            return "gopher_quality:hash_ratio"
        if stats.ellipses / words > cfg.max_symbol_word_ratio:
            return "gopher_quality:ellipsis_ratio"
    if stats.bullet_lines / stats.lines > cfg.max_bullet_lines_fraction:
        return "gopher_quality:bullet_lines"
    if stats.ellipsis_lines / stats.lines > cfg.max_ellipsis_lines_fraction:
        return "gopher_quality:ellipsis_lines"
    if stats.alpha_words / words < cfg.min_alpha_words_fraction:
        return "gopher_quality:alpha_words"
    if cfg.min_stop_words > 0 and stats.stop_words is not None and stats.stop_words < cfg.min_stop_words:
        return "gopher_quality:stop_words"
    return None


def repetition_names(cfg: GopherRepetitionConfig, language: str | None) -> list[str]:
    """The repetition measures that apply to `language`, in the order the rules check them."""
    spaced = spaces_between_words(language)
    names = ["dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac"]
    if spaced:
        names += [f"top_{n}gram" for n in sorted(cfg.top_ngram_max_char_fraction)]
        names += [f"dup_{n}gram" for n in sorted(cfg.duplicate_ngram_max_char_fraction)]
    return names


def repetition_decision(measures: dict[str, float], cfg: GopherRepetitionConfig, language: str | None) -> str | None:
    """Gopher's repetition rules on `measures`, in DataTrove's order: the first fraction
    above its maximum drops. A dup_{n}gram value at or below the smallest maximum of the
    larger n's ends the checks, as gopher_repetition.gopher_repetition's early stop does."""
    if not cfg.enabled:
        return None
    dup_limits = cfg.duplicate_ngram_max_char_fraction
    limits = {
        "dup_para_frac": cfg.max_duplicate_paragraph_fraction,
        "dup_para_char_frac": cfg.max_duplicate_paragraph_char_fraction,
        "dup_line_frac": cfg.max_duplicate_line_fraction,
        "dup_line_char_frac": cfg.max_duplicate_line_char_fraction,
        **{f"top_{n}gram": limit for n, limit in cfg.top_ngram_max_char_fraction.items()},
        **{f"dup_{n}gram": limit for n, limit in dup_limits.items()},
    }
    dup_ns = sorted(dup_limits) if spaces_between_words(language) else []
    settles_the_rest = {f"dup_{n}gram": min(dup_limits[m] for m in dup_ns[i + 1:]) for i, n in enumerate(dup_ns[:-1])}
    for name in repetition_names(cfg, language):
        value = measures[name]
        if value > limits[name]:
            return f"gopher_repetition:{name}"
        if value <= settles_the_rest.get(name, -1.0):
            break
    return None
