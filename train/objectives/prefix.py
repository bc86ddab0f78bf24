"""Prefix LM (Raffel et al. 2020, section 3.2.3; the S-denoiser of UL2) on the GPT.

A window of L + 1 tokens is cut at a split point s, 1 <= s <= L: the first s tokens are
the prefix, read with fully visible attention, and the model predicts the rest, left to
right (attention.py's prefix mask). The loss is on the continuation only. The split is
uniform over 1..L, or (--prefix-split document) at the start of a document of the
window, chosen uniformly among them (uniform when the window holds no document start).
"""

from __future__ import annotations

import numpy as np

from strata.train.objectives.core import Inputs, Vocabulary, sample_rng
from strata.train.objectives.examples import ExampleObjective


def split_point(window: np.ndarray, rng: np.random.Generator, how: str, eos: int) -> int:
    """s in 1..len(window)-1: the prefix is window[:s]."""
    if how == "document":
        starts = np.flatnonzero(window[:-1] == eos) + 1  # a document starts after each EOS
        if starts.size:
            return int(rng.choice(starts))
    return int(rng.integers(1, len(window)))


class PrefixLM(ExampleObjective):
    """T5/UL2 prefix LM: bidirectional over the prefix, predict the continuation."""

    name = "prefix_lm"
    architecture = "gpt"
    extra_token = True
    words = True

    def __init__(self, cfg, tokenizer: Vocabulary):
        super().__init__(cfg, tokenizer)
        self.decoder_only, self.architecture, self.how = True, "gpt", cfg.prefix_split

    def model_len(self, seq_len: int) -> int:
        return seq_len

    def example(self, window: np.ndarray, sample_id: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        s = split_point(window, sample_rng(self.seed, epoch, sample_id), self.how, self.specials["eos"])
        return window[:s], window[s:]

    def batch(self, tokens, sample_id, epoch) -> Inputs:
        return self.with_segments(super().batch(tokens, sample_id, epoch))
