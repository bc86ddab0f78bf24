"""Source -> target examples as model inputs, for the two ways of learning them.

Prefix LM, span corruption, UL2 and BART each turn a window into one (source, target)
pair of token lists per sample. Either

- the encoder-decoder (t5.py) reads the source in its encoder and predicts the target
  with its decoder, teacher-forced (the decoder reads the target shifted right by one,
  starting from the pad token, as T5 does), or
- the decoder-only GPT reads source + target as one sequence through the prefix mask
  (attention.py): fully visible over the source, causal over the target, and the loss
  only on the target.

Rows of a batch differ in length; they are padded at the end to the longest (pad
token in the inputs, -100 in the targets; the encoder's padding is a segment of its own,
-1, which attention_mask keeps apart).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from strata.train.objectives.core import IGNORE_INDEX, Inputs, Objective, Vocabulary, as_numpy

PADDING_SEGMENT = -1


def pad_rows(rows: Sequence[np.ndarray], value: int) -> torch.Tensor:
    """int64 [B, longest row], each row padded at the end with `value`."""
    out = np.full((len(rows), max(1, *(len(r) for r in rows))), value, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return torch.from_numpy(out)


def encoder_decoder_inputs(pairs: Sequence[tuple[np.ndarray, np.ndarray]], pad: int) -> Inputs:
    """idx (source), segments (0, or -1 on padding), decoder_idx (pad + target[:-1]), targets."""
    sources = [s for s, _ in pairs]
    return {
        "idx": pad_rows(sources, pad),
        "segments": pad_rows([np.zeros(len(s), dtype=np.int64) for s in sources], PADDING_SEGMENT),
        "decoder_idx": pad_rows([np.concatenate([[pad], t[:-1]]) for _, t in pairs], pad),
        "targets": pad_rows([t for _, t in pairs], IGNORE_INDEX),
    }


def prefix_lm_inputs(pairs: Sequence[tuple[np.ndarray, np.ndarray]], pad: int) -> Inputs:
    """idx (source + target, less its last token), prefix (the source's length), targets
    (the next token wherever it is a target token: from the last source position on)."""
    rows = [np.concatenate([s, t]) for s, t in pairs]
    targets = [np.concatenate([np.full(len(s) - 1, IGNORE_INDEX), t]) for s, t in pairs]
    return {
        "idx": pad_rows([r[:-1] for r in rows], pad),
        "prefix": torch.tensor([len(s) for s, _ in pairs], dtype=torch.long),
        "targets": pad_rows(targets, IGNORE_INDEX),
    }


def example_inputs(pairs: Sequence[tuple[np.ndarray, np.ndarray]], pad: int, decoder_only: bool) -> Inputs:
    return prefix_lm_inputs(pairs, pad) if decoder_only else encoder_decoder_inputs(pairs, pad)


class ExampleObjective(Objective):
    """An objective whose samples are (source, target) pairs (`example`), learned by the
    encoder-decoder or, with --decoder-only, by the GPT through the prefix mask."""

    architecture = "t5"

    def __init__(self, cfg, tokenizer: Vocabulary):
        super().__init__(cfg, tokenizer)
        self.decoder_only = cfg.decoder_only
        if self.decoder_only:
            self.architecture = "gpt"

    def model_len(self, seq_len: int) -> int:
        """Room for a source of up to seq_len + 1 tokens (a mode token) and as long a target."""
        return 2 * seq_len + 2 if self.decoder_only else seq_len + 1

    def batch(self, tokens, sample_id, epoch) -> Inputs:
        windows = as_numpy(tokens)
        pairs = [self.example(w, int(i), int(e)) for w, i, e in zip(windows, sample_id, epoch)]
        return example_inputs(pairs, self.specials["pad"], self.decoder_only)

    def example(self, window: np.ndarray, sample_id: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def corruptible(self, window: np.ndarray) -> np.ndarray:
        """Positions that are not special tokens (EOS between documents, ...)."""
        return np.flatnonzero(~np.isin(window, self.control_ids()))
