"""The objectives `strata train --objective NAME` knows, by name."""

from __future__ import annotations

from strata.config import ConfigError
from strata.train.objectives.core import Objective
from strata.train.objectives.lm import CLM, MLM

OBJECTIVES: dict[str, type[Objective]] = {o.name: o for o in (CLM, MLM)}


def objective_for(name: str, cfg, tokenizer: dict) -> Objective:
    """The objective `name` with cfg's options, for a build's tokenizer (the manifest's
    `tokenizer` entry: vocab_size, special_ids)."""
    if name not in OBJECTIVES:
        raise ConfigError(f"objective: unknown objective {name!r}; choose one of {', '.join(sorted(OBJECTIVES))}")
    return OBJECTIVES[name](cfg, tokenizer)
