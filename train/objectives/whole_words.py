"""Words of a window of sentencepiece ids, and whole-word masking (BERT's `--whole-word`).

A word is a run of non-special tokens that starts at a piece beginning with `▁`
(sentencepiece's word-boundary mark; `word_starts` reads it from the tokenizer's piece
table, tokenize/pieces.py), at the window's first token, or right after a special
token (EOS and the like end a word), and runs up to the next such start. Specials belong to
no word and are never masked.

Whole-word masking (Google BERT's `do_whole_word_mask`): the budget is the MLM one (15% of
the non-special tokens, stochastically rounded as in `objectives.mlm_mask`); words are
visited in a random order and a word is masked whole if it still fits the budget, else
skipped, so the masked count never exceeds the budget and a word is never cut. The
80/10/10 split is drawn per token, as in BERT's reference code. Randomness is a pure
function of (seed, epoch, sample_id).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from strata.tokenize.pieces import PieceTable
from strata.train.objectives.core import sample_rng
from strata.train.objectives.masking import corrupt_chosen, masking_budget


def word_starts(pieces: PieceTable) -> np.ndarray:
    """bool [vocab]: True for the pieces whose text starts with whitespace (`▁`, or a
    newline symbol), i.e. that begin a word."""
    return (pieces.bytes > 0) & ~pieces.opens


def word_ids(ids: np.ndarray, word_start: np.ndarray, specials: np.ndarray) -> np.ndarray:
    """Word number of every position of ids [L] (0, 1, ... in order), -1 at specials."""
    special = np.isin(ids, specials)
    starts = word_start[ids].copy()
    starts[0] = True
    starts[1:] |= special[:-1]
    starts &= ~special
    words = np.cumsum(starts) - 1
    words[special] = -1
    return words


def special_array(special_ids: Iterable[int], mask_id: int) -> np.ndarray:
    """The ids a masking never picks: `special_ids` and the mask token, sorted."""
    return np.array(sorted({*special_ids, mask_id}), dtype=np.int64)


def whole_word_mask(tokens, *, seed: int, epoch: int, sample_id: int, vocab_size: int, special_ids: Iterable[int],
                    mask_id: int, word_start: np.ndarray, rate: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """tokens [L] -> (inputs [L], labels [L]) int64, as mlm_mask but whole words."""
    ids = np.array(tokens, dtype=np.int64)
    specials = special_array(special_ids, mask_id)
    rng = sample_rng(seed, epoch, sample_id)
    words = word_ids(ids, word_start, specials)
    sizes = np.bincount(words[words >= 0], minlength=0)
    budget = masking_budget(rng, rate, int(sizes.sum()))
    chosen_words, count = [], 0
    for w in rng.permutation(sizes.size):
        if count == budget:
            break
        if count + sizes[w] <= budget:
            chosen_words.append(w)
            count += sizes[w]
    chosen = np.flatnonzero(np.isin(words, chosen_words))
    return corrupt_chosen(rng, ids, chosen, rng.random(chosen.size), vocab_size, specials, mask_id)


def whole_word_sample(tokens, **options) -> dict[str, np.ndarray]:
    """whole_word_mask as an objective's batch row."""
    idx, targets = whole_word_mask(tokens, **options)
    return {"idx": idx, "targets": targets}
