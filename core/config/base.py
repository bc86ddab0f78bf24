"""What every config section shares: strict models (an unknown key is an error) and the
error that names the file and the dotted key."""

from __future__ import annotations

import copy

from pydantic import BaseModel, ConfigDict, ValidationError

from strata.errors import StrataError


class ConfigError(StrataError, ValueError):
    """A configuration problem, with the file and the dotted key it concerns."""

    label = "config error"
    exit_code = 2


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def describe_errors(err: ValidationError, prefix: tuple = ()) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in (*prefix, *e["loc"]) if p != "__root__")
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"{loc or '<top>'}: {msg}")
    return "; ".join(parts)


def deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
