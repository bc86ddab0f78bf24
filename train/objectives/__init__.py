"""Pretraining objectives: each a pure function from a packed window to model inputs and
targets, the model it trains and its loss (core.py); registry.py names them.

    lm.py        clm (GPT next token), mlm (BERT/RoBERTa masking)
"""

from strata.train.attention import positions_from_segments, segments_from_eos
from strata.train.objectives.core import IGNORE_INDEX, Objective, sample_rng, unigram_entropy
from strata.train.objectives.lm import clm_batch, mlm_batch, mlm_mask
from strata.train.objectives.registry import OBJECTIVES, objective_for

__all__ = [
    "IGNORE_INDEX", "OBJECTIVES", "Objective", "clm_batch", "mlm_batch", "mlm_mask", "objective_for",
    "positions_from_segments", "sample_rng", "segments_from_eos", "unigram_entropy",
]
