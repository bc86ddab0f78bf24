"""Words of a window of sentencepiece ids, and whole-word masking (BERT's `--whole-word`).

A word is a run of non-special tokens that starts at a piece beginning with `▁`
(sentencepiece's word-boundary mark), at the window's first token, or right after a special
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

import hashlib
from typing import Iterable, Sequence

import fsspec
import numpy as np
import sentencepiece as spm
import torch

from strata.manifests.manifest import ShardError
from strata.storage import join
from strata.train.objectives import corrupt_chosen, masking_budget

WORD_MARK = "\u2581"  # ▁


def word_start_table(pieces: Sequence[str]) -> np.ndarray:
    """bool [vocab]: True for the ids whose piece starts a word (begins with ▁)."""
    return np.array([p.startswith(WORD_MARK) for p in pieces], dtype=bool)


def build_word_starts(build: str, manifest: dict) -> np.ndarray:
    """word_start_table of a build's tokenizer (OUT/<tokenizer path>), whose bytes must
    match the manifest's sha256."""
    record = manifest["tokenizer"]
    uri = join(build, record["path"])
    with fsspec.open(uri, "rb") as f:
        model = f.read()
    if hashlib.sha256(model).hexdigest() != record["model_sha256"]:
        raise ShardError(f"{uri}: the tokenizer model does not match the manifest's sha256")
    processor = spm.SentencePieceProcessor(model_proto=model)
    return word_start_table([processor.id_to_piece(i) for i in range(processor.get_piece_size())])


def sample_rng(seed: int, epoch: int, sample_id: int, stream: int = 0) -> np.random.Generator:
    """The generator of one sample's randomness; `stream` separates independent uses."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch, sample_id, stream])))


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


def whole_word_batch(windows, sample_ids: Sequence[int], *, epoch, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """windows [B, L] -> (inputs, labels) [B, L] int64 tensors, row by row (see mlm_batch)."""
    windows = np.asarray(windows.cpu() if isinstance(windows, torch.Tensor) else windows)
    epochs = np.broadcast_to(np.asarray(epoch, dtype=np.int64), (len(windows),)).tolist()
    rows = [whole_word_mask(w, sample_id=int(i), epoch=e, **kwargs) for w, i, e in zip(windows, sample_ids, epochs)]
    return torch.from_numpy(np.stack([r[0] for r in rows])), torch.from_numpy(np.stack([r[1] for r in rows]))
