"""CLM and MLM: the two objectives strata started with.

CLM (GPT): teacher forcing. A window of L+1 tokens gives inputs = tokens[:-1] and
targets = tokens[1:]: position t predicts token t+1 from the true tokens 0..t.

MLM (BERT/RoBERTa): in each sample, 15% of the non-special positions are chosen; a chosen
position becomes the mask token 80% of the time, a uniformly random non-special token 10%,
and stays unchanged 10%. Labels hold the original token at chosen positions and -100
(ignored by the loss) everywhere else.

The mask of a sample is a pure function of (seed, epoch, sample_id): it changes from
epoch to epoch (RoBERTa's dynamic masking) yet any run, resumed or not, on any number of
data-loader workers and in any batch order, draws the same mask for the same sample. The
loader must therefore give every sample an id that belongs to the sample (e.g. its index
in the training stream), never one that depends on the worker.

With --doc-mask both add the window's document ids (`segments`): attention stays inside
each document and positions restart at each one (attention.py).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch

from strata.train.objectives.core import Inputs, Objective, Vocabulary, per_sample, sample_rng
from strata.train.objectives.masking import corrupt_chosen, masking_budget
from strata.train.objectives.whole_words import whole_word_sample, word_starts

# --------------------------------------------------------------------------- CLM


def clm_batch(windows) -> tuple[torch.Tensor, torch.Tensor]:
    """windows [B, L+1] (any integer array) -> inputs [B, L], targets [B, L], int64:
    targets[:, t] = windows[:, t+1]."""
    windows = torch.as_tensor(windows, dtype=torch.long)
    return windows[:, :-1], windows[:, 1:]


# --------------------------------------------------------------------------- MLM


def mlm_mask(
    tokens,
    *,
    seed: int,
    epoch: int,
    sample_id: int,
    vocab_size: int,
    special_ids: Iterable[int],
    mask_id: int,
    rate: float = 0.15,
) -> tuple:
    """Mask one sample: tokens [L] (numpy array or tensor) -> (inputs [L], labels [L]),
    int64, numpy or torch as the input was.

    How many positions: of the n non-special positions, floor(rate * n) or one more,
    the extra one with probability frac(rate * n) (stochastic rounding). So each sample
    gets within one position of its exact share, with less spread than independent
    per-token coin flips (HF's collator), and the expected rate is `rate` exactly even for
    short samples, where plain rounding (BERT's reference code) would bias it. Which
    positions: uniformly among the non-special ones. The 80/10/10 split is an independent
    draw per chosen position (as in BERT), so it too is unbiased in short samples.

    `mask_id` counts as special whether or not `special_ids` holds it: special positions
    are never chosen and a random replacement is never special.
    """
    as_torch = isinstance(tokens, torch.Tensor)
    ids = np.array(tokens.cpu() if as_torch else tokens, dtype=np.int64)
    assert ids.ndim == 1, f"one sample at a time, got shape {ids.shape}"
    specials = np.array(sorted({*special_ids, mask_id}), dtype=np.int64)
    rng = sample_rng(seed, epoch, sample_id)

    candidates = np.flatnonzero(~np.isin(ids, specials))
    k = masking_budget(rng, rate, candidates.size)
    chosen = rng.choice(candidates, size=k, replace=False)
    inputs, labels = corrupt_chosen(rng, ids, chosen, rng.random(k), vocab_size, specials, mask_id)
    if as_torch:
        return torch.from_numpy(inputs), torch.from_numpy(labels)
    return inputs, labels


def mlm_batch(
    windows,
    sample_ids: Sequence[int],
    *,
    seed: int,
    epoch: int | Sequence[int],
    vocab_size: int,
    special_ids: Iterable[int],
    mask_id: int,
    rate: float = 0.15,
) -> tuple[torch.Tensor, torch.Tensor]:
    """windows [B, L] with one id per row -> (inputs [B, L], labels [B, L]) int64 tensors;
    row i is mlm_mask(windows[i], sample_id=sample_ids[i], epoch=epoch or epoch[i], ...),
    whatever else is in the batch."""
    windows = np.asarray(windows.cpu() if isinstance(windows, torch.Tensor) else windows)
    assert len(sample_ids) == len(windows), "one sample id per window"
    epochs = np.broadcast_to(np.asarray(epoch, dtype=np.int64), (len(windows),)).tolist()
    special_ids = set(special_ids)
    pairs = [
        mlm_mask(w, seed=seed, epoch=e, sample_id=int(i), vocab_size=vocab_size,
                 special_ids=special_ids, mask_id=mask_id, rate=rate)
        for w, i, e in zip(windows, sample_ids, epochs)
    ]
    inputs, labels = zip(*pairs)
    return torch.from_numpy(np.stack(inputs)), torch.from_numpy(np.stack(labels))


# --------------------------------------------------------------------------- the objectives


class CLM(Objective):
    """GPT: every position predicts the next token, causal attention."""

    name = "clm"
    architecture = "gpt"
    extra_token = True
    words = True

    def batch(self, tokens, sample_id, epoch) -> Inputs:
        idx, targets = clm_batch(tokens)
        return self.with_segments({"idx": idx, "targets": targets})


class MLM(Objective):
    """BERT/RoBERTa: the chosen 15% of the tokens are predicted, fully visible attention;
    with --whole-word whole words are chosen (whole_words.py)."""

    name = "mlm"
    architecture = "encoder"
    needs = ("mask",)

    def __init__(self, cfg, tokenizer: Vocabulary):
        super().__init__(cfg, tokenizer)
        self.rate = cfg.mlm_rate
        # --whole-word: words from the tokenizer's pieces (whole_words.py)
        self.word_start = word_starts(tokenizer.pieces) if cfg.whole_word else None

    def batch(self, tokens, sample_id, epoch) -> Inputs:
        if self.word_start is not None:
            return self.with_segments(per_sample(
                whole_word_sample, tokens, sample_id, epoch, seed=self.seed, vocab_size=self.vocab_size,
                special_ids=self.control_ids(), mask_id=self.specials["mask"], word_start=self.word_start, rate=self.rate,
            ))
        idx, targets = mlm_batch(
            tokens, torch.as_tensor(sample_id).tolist(), seed=self.seed, epoch=torch.as_tensor(epoch).tolist(),
            vocab_size=self.vocab_size, special_ids=self.control_ids(), mask_id=self.specials["mask"], rate=self.rate,
        )
        return self.with_segments({"idx": idx, "targets": targets})
