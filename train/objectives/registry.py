"""The objectives `strata train --objective NAME` knows, by name."""

from __future__ import annotations

from strata.config import ConfigError
from strata.train.objectives.core import Objective, Vocabulary
from strata.train.objectives.bart import BART
from strata.train.objectives.electra import ELECTRA
from strata.train.objectives.lm import CLM, MLM
from strata.train.objectives.permutation import XLNetObjective
from strata.train.objectives.prefix import PrefixLM
from strata.train.objectives.sentence_pairs import NSP, SOP
from strata.train.objectives.spanbert import SpanBERTObjective
from strata.train.objectives.spans import SpanCorruption
from strata.train.objectives.ul2 import UL2

OBJECTIVES: dict[str, type[Objective]] = {
    o.name: o for o in (CLM, MLM, PrefixLM, SpanCorruption, UL2, BART, SpanBERTObjective, ELECTRA, NSP, SOP, XLNetObjective)
}


def objective_for(name: str, cfg, tokenizer: Vocabulary) -> Objective:
    """The objective `name` with cfg's options, for a build's tokenizer."""
    if name not in OBJECTIVES:
        raise ConfigError(f"objective: unknown objective {name!r}; choose one of {', '.join(sorted(OBJECTIVES))}")
    return OBJECTIVES[name](cfg, tokenizer)
