"""The build configuration (`strata build CONFIG.yaml`): sources, mixture categories, the
curate stages (curate.py), tokenizer and shards."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal, Optional

from pydantic import ConfigDict, Field, ValidationError, model_validator

from strata.config.base import Section, describe_errors
from strata.config.curate import (
    DecontaminateConfig, DedupConfig, FiltersConfig, NormalizeConfig, OutputConfig, ValidateConfig,
)
from strata.redact import redact_strings

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


class TokenizerConfig(Section):
    model: Optional[str] = None  # a sentencepiece .model, or a HF tokenizer.json or its folder; else one is trained
    model_type: Literal["bpe", "unigram"] = "bpe"
    vocab_size: int = Field(default=32000, ge=64)
    # sentencepiece holds its sample in memory, about 12x its bytes: 64 MiB keeps the stage
    # under 1 GB whatever the corpus size; raise it where memory allows
    sample_bytes: int = Field(default=64 * 2**20, gt=0)
    user_defined_symbols: list[str] = Field(default_factory=list)
    # add the objectives' special tokens: <cls>, <sep>, UL2's [NLU] [NLG] [S2S], and T5's
    # sentinels <extra_id_0..sentinels-1> (tokenize/specials.py)
    objective_specials: bool = False
    sentinels: int = Field(default=100, ge=1)


class ShardsConfig(Section):
    block_tokens: int = Field(default=65536, ge=16)
    target_bytes: int = Field(default=256 * 2**20, gt=0)
    val_fraction: float = Field(default=0.005, ge=0, lt=1)
    keep_tokens: bool = True  # the token store (pipeline/token_store.py): rebuilds reuse token ids


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
                    f"filters.per_category.{category}: " + describe_errors(err, prefix=())
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
