"""UL2's mixture of denoisers (Tay et al. 2022, "UL2: Unifying Language Learning
Paradigms", section 3.1).

Each sample draws a mode by the mixture weights (--ul2-mixture), then one of the mode's
denoisers uniformly, the seven of the paper's final mixture:

    R  regular denoising  [NLU]  spans of mean 3 and 8, 15% of the tokens
    X  extreme denoising  [NLG]  (mean 3, 50%), (mean 8, 50%), (mean 64, 15%), (mean 64, 50%)
    S  sequential (prefix LM) [S2S]  the window cut at a uniform split point; the target
                          is the rest

The source starts with the mode's token (the paradigm token that tells the model which
mode it is in); the R and X targets are T5's (spans.py), S's the continuation. Default
weights: each of the seven denoisers equally likely (R 2/7, X 4/7, S 1/7). The realized
share of each mode goes to the metrics every step (`ul2/R`, `ul2/X`, `ul2/S`).
"""

from __future__ import annotations

import numpy as np
import torch

from strata.train.objectives.core import Inputs, Vocabulary, sample_rng
from strata.train.objectives.examples import ExampleObjective
from strata.train.objectives.prefix import split_point
from strata.train.objectives.spans import check_sentinels, corrupt_spans, noise_mask, spans_over

MODES = ("R", "X", "S")
MODE_TOKENS = {"R": "mode_nlu", "X": "mode_nlg", "S": "mode_s2s"}
DENOISERS = {  # (mean span, noise density)
    "R": [(3, 0.15), (8, 0.15)],
    "X": [(3, 0.5), (8, 0.5), (64, 0.15), (64, 0.5)],
}


class UL2(ExampleObjective):
    """Mixture of denoisers with mode tokens."""

    name = "ul2"
    needs = ("sentinels", *MODE_TOKENS.values())

    def __init__(self, cfg, tokenizer: Vocabulary):
        super().__init__(cfg, tokenizer)
        weights = np.array([cfg.ul2_mixture.get(m, 0.0) for m in MODES], dtype=np.float64)
        self.mixture = weights / weights.sum()
        used = [d for mode, weight in zip(MODES, self.mixture) if weight > 0 for d in DENOISERS.get(mode, [])]
        if used:
            check_sentinels(cfg.seq_len, used, self.specials["sentinels"])

    def mode(self, sample_id: int, epoch: int) -> int:
        """The index in MODES of a sample's mode (its own random stream)."""
        return int(sample_rng(self.seed, epoch, sample_id, 1).choice(len(MODES), p=self.mixture))

    def example(self, window: np.ndarray, sample_id: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        mode = MODES[self.mode(sample_id, epoch)]
        rng = sample_rng(self.seed, epoch, sample_id)
        if mode == "S":
            s = split_point(window, rng, "uniform", self.specials["eos"])
            source, target = window[:s], window[s:]
        else:
            mean_span, density = DENOISERS[mode][rng.integers(len(DENOISERS[mode]))]
            positions = self.corruptible(window)
            noise = spans_over(positions, len(window), noise_mask(len(positions), density, mean_span, rng))
            source, target = corrupt_spans(window, noise, self.specials["sentinels"])
        return np.concatenate([[self.specials[MODE_TOKENS[mode]]], source]), target

    def batch(self, tokens, sample_id, epoch) -> Inputs:
        inputs = super().batch(tokens, sample_id, epoch)
        inputs["mode"] = torch.tensor([self.mode(int(i), int(e)) for i, e in zip(sample_id, epoch)])
        return inputs

    def loss(self, model, inputs: Inputs) -> tuple[torch.Tensor, int, dict[str, float]]:
        _, loss = model(**{name: t for name, t in inputs.items() if name != "mode"})
        modes = inputs["mode"].tolist()
        mixture = {f"ul2/{m}": modes.count(k) / len(modes) for k, m in enumerate(MODES)}
        return loss, self.num_targets(inputs), mixture
