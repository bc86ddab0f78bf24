"""XLNet's permutation language modelling (Yang et al., 2019, section 2.2-2.3) as a pure
function of a window.

For each sample a factorization order z (a uniform random permutation of the positions,
drawn from (seed, epoch, sample_id)) decides what each position may see: the token at z_t
is predicted from the tokens at z_<t. Partial prediction: only the last 1/K of the order
(K = 6 by default) is predicted, so every prediction has at least 5/6 of the window as
possible context and the early, context-poor positions cost nothing.

The window itself is not changed (no mask tokens): the order is data, `rank[i]` = where
position i comes in z, and the model turns it into its two attention masks
(train/xlnet.py): the content stream of i sees the positions of rank <= rank[i], the query
stream of i those of rank < rank[i] (never its own token).
"""

from __future__ import annotations

import numpy as np

from strata.config import ConfigError
from strata.train.objectives.core import IGNORE_INDEX, Inputs, Objective, Vocabulary, per_sample, sample_rng

PREDICT_ONE_IN = 6  # K


def predicted_count(length: int, k: int = PREDICT_ONE_IN) -> int:
    """How many positions of a window are predicted: length / K rounded, at least one, and
    never all (the first in the order has nothing to be predicted from)."""
    return min(max(1, round(length / k)), length - 1)


def permutation_sample(tokens, *, seed: int, epoch: int, sample_id: int, k: int = PREDICT_ONE_IN) -> dict[str, np.ndarray]:
    """tokens [L] -> {idx (the tokens), targets (the token at the predicted positions,
    -100 elsewhere), rank (position in the factorization order)}, int64 [L]."""
    ids = np.array(tokens, dtype=np.int64)
    order = sample_rng(seed, epoch, sample_id).permutation(ids.size)
    rank = np.empty_like(order)
    rank[order] = np.arange(ids.size)
    labels = np.full_like(ids, IGNORE_INDEX)
    predicted = rank >= ids.size - predicted_count(ids.size, k)
    labels[predicted] = ids[predicted]
    return dict(idx=ids, targets=labels, rank=rank)


class XLNetObjective(Objective):
    """XLNet: permutation LM with partial prediction (--xlnet-k) on train/xlnet.py."""

    name = "xlnet"
    architecture = "xlnet"

    def __init__(self, cfg, tokenizer: Vocabulary):
        super().__init__(cfg, tokenizer)
        if cfg.doc_mask:
            raise ConfigError("doc_mask: xlnet orders the whole window; it does not take --doc-mask")
        self.k = cfg.xlnet_k

    def batch(self, tokens, sample_id, epoch) -> Inputs:
        return per_sample(permutation_sample, tokens, sample_id, epoch, seed=self.seed, k=self.k)
