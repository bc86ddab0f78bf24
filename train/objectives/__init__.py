"""Pretraining objectives: each a pure function from a packed window to model inputs and
targets, the model it trains and its loss (core.py); registry.py names them.

    lm.py              clm (GPT next token), mlm (BERT/RoBERTa masking, --whole-word)
    prefix.py          prefix_lm (T5/UL2 prefix LM on the GPT)
    spans.py           span_corruption (T5)
    ul2.py             ul2 (UL2's mixture of denoisers, with mode tokens)
    bart.py            bart (text infilling and sentence permutation)
    examples.py        the (source, target) objectives on the encoder-decoder or the GPT
    masking.py         BERT's masking budget and 80/10/10, shared by the masking objectives
    whole_words.py     words from the tokenizer's pieces; whole-word masking
    spanbert.py        spanbert (span masking + span boundary objective)
    sentence_pairs.py  nsp, sop (MLM + BERT's / ALBERT's pair classification)
    electra.py         electra (replaced token detection)
    permutation.py     xlnet (permutation LM, partial prediction)
"""

from strata.train.attention import positions_from_segments, segments_from_eos
from strata.train.objectives.core import IGNORE_INDEX, Objective, Vocabulary, sample_rng, unigram_entropy
from strata.train.objectives.lm import clm_batch, mlm_batch, mlm_mask
from strata.train.objectives.registry import OBJECTIVES, objective_for

__all__ = [
    "IGNORE_INDEX", "OBJECTIVES", "Objective", "Vocabulary", "clm_batch", "mlm_batch", "mlm_mask", "objective_for",
    "positions_from_segments", "sample_rng", "segments_from_eos", "unigram_entropy",
]
