"""BERT's corruption primitives, shared by the masking objectives (MLM, whole-word MLM,
SpanBERT, sentence pairs): how many positions a sample masks, and the 80/10/10 rule."""

from __future__ import annotations

import numpy as np

from strata.train.objectives.core import IGNORE_INDEX

MASK_FRACTION = 0.8  # of the chosen positions: -> mask token
RANDOM_FRACTION = 0.1  # -> random non-special token; the remaining 0.1 stay unchanged


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
