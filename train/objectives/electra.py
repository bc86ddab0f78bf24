"""ELECTRA's sample (Clark et al., 2020): what the generator reads, and the numbers its
draws are made with; the model and its loss are train/electra.py's.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from strata.train.objectives.core import IGNORE_INDEX, Inputs, JointObjective, Vocabulary, per_sample, sample_rng
from strata.train.objectives.masking import masking_budget
from strata.train.objectives.whole_words import special_array


def electra_sample(tokens, *, seed: int, epoch: int, sample_id: int, special_ids: Iterable[int], mask_id: int,
                   rate: float = 0.15) -> dict[str, np.ndarray]:
    """tokens [L] -> {idx, targets} int64 [L] (the generator's MLM sample) and noise
    float32 [L] (uniform numbers for the generator's draws)."""
    ids = np.array(tokens, dtype=np.int64)
    rng = sample_rng(seed, epoch, sample_id)
    candidates = np.flatnonzero(~np.isin(ids, special_array(special_ids, mask_id)))
    chosen = rng.choice(candidates, size=masking_budget(rng, rate, candidates.size), replace=False)
    inputs, labels = ids.copy(), np.full_like(ids, IGNORE_INDEX)
    inputs[chosen], labels[chosen] = mask_id, ids[chosen]
    return dict(idx=inputs, targets=labels, noise=rng.random(ids.size).astype(np.float32))


class ELECTRA(JointObjective):
    """Replaced token detection: generator MLM + 50 x discriminator loss; the extras report
    both losses, the share of replaced tokens and the discriminator's accuracy."""

    name = "electra"
    architecture = "electra"
    needs = ("mask",)
    bits_per_byte = False  # the loss is not a likelihood of the tokens

    def __init__(self, cfg, tokenizer: Vocabulary):
        super().__init__(cfg, tokenizer)
        self.rate, self.generator_ratio = cfg.mlm_rate, cfg.generator_ratio

    def build_model(self, preset: str, vocab_size: int, seq_len: int, **overrides):
        return super().build_model(preset, vocab_size, seq_len, generator_ratio=self.generator_ratio, **overrides)

    def exports(self, model) -> dict[str, dict]:
        """The discriminator, as an Encoder's `transformer.*` weights."""
        return {"discriminator": model.discriminator_state()}

    def batch(self, tokens, sample_id, epoch) -> Inputs:
        return self.with_segments(per_sample(electra_sample, tokens, sample_id, epoch, seed=self.seed,
                                             special_ids=self.control_ids(), mask_id=self.specials["mask"],
                                             rate=self.rate))
