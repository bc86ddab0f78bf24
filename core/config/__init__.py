"""The configuration: one YAML file per build (`strata build`), flags or YAML per training
run (`strata train`), validated before any work starts.

Every section has documented defaults (see README, "Config reference"). An unknown key
or a bad value fails with a `ConfigError` that names the file and the dotted key.

    base.py      Section (strict models) and ConfigError
    curate.py    the curate stages: validate, normalize, filters per category, dedup,
                 decontamination, output
    build.py     BuildConfig: sources, categories, curate, tokenizer, shards
    training.py  TrainConfig
    loading.py   load_config, load_train_config, parse_config: YAML under limits, paths
                 relative to the config file

Every public name is importable from `strata.config`.
"""

from strata.config.base import ConfigError, Section
from strata.config.build import (
    BuildConfig,
    CategoryConfig,
    ShardsConfig,
    SourceConfig,
    SourceFormat,
    TokenizerConfig,
)
from strata.config.curate import (
    DEFAULT_STOP_WORDS,
    FILTER_FAMILIES,
    C4Config,
    DecontaminateConfig,
    DedupConfig,
    EvalSetConfig,
    ExactDedupConfig,
    FilterSet,
    FiltersConfig,
    GopherQualityConfig,
    GopherRepetitionConfig,
    LanguageConfig,
    NearDedupConfig,
    NormalizeConfig,
    OutputConfig,
    ParagraphDedupConfig,
    PIIConfig,
    QualityConfig,
    ValidateConfig,
)
from strata.config.loading import MAX_CONFIG_DEPTH, MAX_CONFIG_NODES, load_config, load_train_config, parse_config
from strata.config.training import TrainConfig

__all__ = [
    "BuildConfig", "C4Config", "CategoryConfig", "ConfigError", "DEFAULT_STOP_WORDS", "DecontaminateConfig",
    "DedupConfig", "EvalSetConfig", "ExactDedupConfig", "FILTER_FAMILIES", "FilterSet", "FiltersConfig",
    "GopherQualityConfig", "GopherRepetitionConfig", "LanguageConfig", "MAX_CONFIG_DEPTH", "MAX_CONFIG_NODES",
    "NearDedupConfig", "NormalizeConfig", "OutputConfig", "PIIConfig", "ParagraphDedupConfig", "QualityConfig",
    "Section", "ShardsConfig", "SourceConfig", "SourceFormat", "TokenizerConfig", "TrainConfig", "ValidateConfig",
    "load_config", "load_train_config", "parse_config",
]
