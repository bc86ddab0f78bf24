"""Reading a config: YAML (safe_load) under limits on depth and size, validation into the
models, and local paths made relative to the config file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from strata.config.base import ConfigError, describe_errors
from strata.config.build import BuildConfig
from strata.config.curate import FiltersConfig
from strata.config.training import TrainConfig


def parse_config(data: Any, origin: str = "<config>") -> BuildConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the config must be a mapping, got {type(data).__name__}")
    try:
        return BuildConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{origin}: {describe_errors(err)}") from None


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
        raise ConfigError(f"{origin}: {describe_errors(err)}") from None


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
