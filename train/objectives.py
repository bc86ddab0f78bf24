"""Training objectives as pure functions of a window of token ids.

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

Document-boundary masking: `segments_from_eos` numbers the documents of a packed window;
the models turn these ids into a block-diagonal attention mask and into positions that
restart at each document (`positions_from_segments`).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch

IGNORE_INDEX = -100  # label of positions the loss skips (F.cross_entropy's default)
MASK_FRACTION = 0.8  # of the chosen positions: -> mask token
RANDOM_FRACTION = 0.1  # -> random non-special token; the remaining 0.1 stay unchanged


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
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch, sample_id])))

    candidates = np.flatnonzero(~np.isin(ids, specials))
    k = masking_budget(rng, rate, candidates.size)
    chosen = rng.choice(candidates, size=k, replace=False)
    inputs, labels = corrupt_chosen(rng, ids, chosen, rng.random(k), vocab_size, specials, mask_id)
    if as_torch:
        return torch.from_numpy(inputs), torch.from_numpy(labels)
    return inputs, labels


def masking_budget(rng: np.random.Generator, rate: float, candidates: int) -> int:
    """How many of `candidates` positions to mask: rate x candidates, stochastically rounded
    (floor, or one more with probability equal to the fraction)."""
    share = rate * candidates
    return int(share) + int(rng.random() < share - int(share))


def corrupt_chosen(
    rng: np.random.Generator, ids: np.ndarray, chosen: np.ndarray, action: np.ndarray, vocab_size: int,
    specials: np.ndarray, mask_id: int,
) -> tuple[np.ndarray, np.ndarray]:
    """BERT's 80/10/10 at the `chosen` positions of `ids` [L]: where `action` (uniform in
    [0, 1), one per chosen position) is below 0.8 the mask token, below 0.9 a random
    non-special token, else the token unchanged. -> (inputs, labels), labels holding the
    original at the chosen positions and -100 elsewhere. One action per position is BERT's
    rule; whole-word and span masking may repeat one action over a word or span."""
    masked = chosen[action < MASK_FRACTION]
    randomized = chosen[(action >= MASK_FRACTION) & (action < MASK_FRACTION + RANDOM_FRACTION)]
    inputs = ids.copy()
    labels = np.full_like(ids, IGNORE_INDEX)
    labels[chosen] = ids[chosen]
    inputs[masked] = mask_id
    inputs[randomized] = _random_non_special(rng, randomized.size, vocab_size, specials)
    return inputs, labels


def _random_non_special(rng: np.random.Generator, size: int, vocab_size: int, specials: np.ndarray) -> np.ndarray:
    """`size` ids uniform over [0, vocab_size) minus `specials` (sorted, unique): draw the
    rank r among the non-special ids, then step over the specials at or below it (the j-th
    special has s_j - j non-special ids before it)."""
    specials = specials[(specials >= 0) & (specials < vocab_size)]
    rank = rng.integers(0, vocab_size - specials.size, size=size)
    return rank + np.searchsorted(specials - np.arange(specials.size), rank, side="right")


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


# --------------------------------------------------------------------------- document boundaries


def segments_from_eos(window, eos_id: int) -> torch.Tensor:
    """Document number of every position of a packed window [..., L]: a document is its
    tokens up to and including its EOS, and the next one starts right after. For CLM pass
    the inputs: an EOS position stays in its own document, so it still predicts the first
    token of the next document, as in unmasked packing."""
    eos = (torch.as_tensor(window) == eos_id).long()
    return eos.cumsum(-1) - eos


def positions_from_segments(segments: torch.Tensor) -> torch.Tensor:
    """Position of every token within its segment [..., L] -> [..., L]: 0 at each segment
    start (wherever the id changes), counting up to the next. Vectorized, on any device."""
    index = torch.arange(segments.shape[-1], device=segments.device).expand_as(segments)
    starts = torch.ones_like(segments, dtype=torch.bool)
    starts[..., 1:] = segments[..., 1:] != segments[..., :-1]
    first = torch.where(starts, index, 0).cummax(-1).values
    return index - first


# --------------------------------------------------------------------------- statistics


def unigram_entropy(tokens) -> float:
    """Entropy in nats of the token frequencies of a stream: the loss of the best model that
    ignores context, so a model that learns anything from context must go below it."""
    counts = np.bincount(np.asarray(tokens, dtype=np.int64).ravel())
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())
