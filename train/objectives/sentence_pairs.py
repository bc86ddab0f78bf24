"""Sentence-pair objectives beside MLM: BERT's next sentence prediction (NSP) and ALBERT's
sentence order prediction (SOP).

A packed window holds whole documents, each ended by EOS (the first and last may be cut by
the window). From one window, a pure function of (seed, epoch, sample_id) builds one pair
of segments A and B, laid out as in the papers:

    [CLS] A [SEP] B [SEP] [PAD] ...     token types 0 over [CLS] A [SEP], 1 over B [SEP]

A and B together take up to L - 3 tokens: a chunk of a document, cut at a uniform point.
- NSP (Devlin et al., 2019, section 3.1): with probability 1/2, B is the chunk's true
  continuation (label 0, IsNext); otherwise B is a segment of another document of the window
  (label 1, NotNext). A window with a single document has no other one to draw from: its
  pair is a true continuation and its NSP label is -100 (ignored); MLM still trains on it.
- SOP (Lan et al., 2020, section 4.1): both segments from one document, consecutive; with
  probability 1/2 they are swapped (label 1), else in order (label 0).

MLM (objectives.mlm_mask, 15%, 80/10/10) then masks the pair; [CLS], [SEP] and [PAD] are
specials and never masked. Attention skips the padding (its positions form a segment of
their own). The model: train/encoder_heads.py's PairEncoder.
"""

from __future__ import annotations

from typing import Iterable, Literal

import numpy as np

from strata.train.objectives.core import IGNORE_INDEX, Inputs, JointObjective, Vocabulary, per_sample, sample_rng
from strata.train.objectives.lm import mlm_mask

PAIR_STREAM = 1  # the pair draws from its own stream, independent of the MLM mask's


def documents(ids: np.ndarray, eos_id: int) -> list[np.ndarray]:
    """The non-empty documents of a window, EOS tokens dropped."""
    cuts = np.flatnonzero(ids == eos_id)
    parts = (part[part != eos_id] for part in np.split(ids, cuts))
    return [part for part in parts if part.size]


def segment_pair(
    ids: np.ndarray, task: Literal["nsp", "sop"], rng: np.random.Generator, eos_id: int, room: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """(A, B, label) from one window, A and B together at most `room` tokens."""
    flip = rng.random() < 0.5  # NotNext for NSP, swapped for SOP
    docs = documents(ids, eos_id)
    usable = [i for i, d in enumerate(docs) if d.size >= 2]
    if not usable:
        return (docs[0][:room] if docs else ids[:0]), ids[:0], IGNORE_INDEX
    d = usable[rng.integers(len(usable))]
    size = min(docs[d].size, room)
    start = rng.integers(docs[d].size - size + 1)
    chunk = docs[d][start:start + size]
    cut = rng.integers(1, size)
    a, b = chunk[:cut], chunk[cut:]
    if task == "sop":
        return (b, a, 1) if flip else (a, b, 0)
    others = [i for i in range(len(docs)) if i != d]
    if not flip:
        return a, b, 0 if others else IGNORE_INDEX
    if not others:
        return a, b, IGNORE_INDEX
    other = docs[others[rng.integers(len(others))]]
    length = min(other.size, room - a.size)
    offset = rng.integers(other.size - length + 1)
    return a, other[offset:offset + length], 1


def sentence_pair_sample(tokens, *, task: Literal["nsp", "sop"], seed: int, epoch: int, sample_id: int, vocab_size: int,
                         special_ids: Iterable[int], mask_id: int, eos_id: int, cls_id: int, sep_id: int, pad_id: int,
                         rate: float = 0.15) -> dict[str, np.ndarray | int]:
    """tokens [L] -> {idx, targets, token_types, segments} int64 [L] and pair_label (0, 1,
    or -100). `targets` are MLM's."""
    ids = np.asarray(tokens, dtype=np.int64)
    L = ids.size
    a, b, label = segment_pair(ids, task, sample_rng(seed, epoch, sample_id, PAIR_STREAM), eos_id, L - 3)
    pair = np.concatenate([[cls_id], a, [sep_id], b, [sep_id]])
    window = np.full(L, pad_id, dtype=np.int64)
    window[:pair.size] = pair
    token_types = np.zeros(L, dtype=np.int64)
    token_types[a.size + 2:pair.size] = 1
    segments = (np.arange(L) >= pair.size).astype(np.int64)
    inputs, labels = mlm_mask(window, seed=seed, epoch=epoch, sample_id=sample_id, vocab_size=vocab_size,
                              special_ids={*special_ids, cls_id, sep_id, pad_id}, mask_id=mask_id, rate=rate)
    return dict(idx=inputs, targets=labels, token_types=token_types, segments=segments, pair_label=label)


class SentencePairObjective(JointObjective):
    """MLM + a pair classifier on encoder_heads.PairEncoder; `task` is nsp or sop."""

    architecture = "pair_encoder"
    needs = ("mask", "pad", "cls", "sep")
    bits_per_byte = False  # the loss adds the pair classifier's to MLM's

    def __init__(self, cfg, tokenizer: Vocabulary):
        super().__init__(cfg, tokenizer)
        self.rate = cfg.mlm_rate

    def batch(self, tokens, sample_id, epoch) -> Inputs:
        """The pair is its own attention structure (padding apart): --doc-mask changes nothing."""
        s = self.specials
        return per_sample(sentence_pair_sample, tokens, sample_id, epoch, task=self.name, seed=self.seed,
                          vocab_size=self.vocab_size, special_ids=self.control_ids(), mask_id=s["mask"],
                          eos_id=s["eos"], cls_id=s["cls"], sep_id=s["sep"], pad_id=s["pad"], rate=self.rate)


class NSP(SentencePairObjective):
    """BERT: MLM + next sentence prediction."""

    name = "nsp"


class SOP(SentencePairObjective):
    """ALBERT: MLM + sentence order prediction."""

    name = "sop"
