"""SpanBERT (Joshi et al., 2020): span masking, with the targets of the span boundary
objective (SBO; its head is in train/encoder_heads.py).

Masking (section 3.1): spans are drawn until 15% of the sample's non-special tokens are
masked. A span's length in *words* follows a geometric distribution with p = 0.2 clipped
at 10 words (truncated and renormalised, as SpanBERT's code does: mean 3.8 words); it
starts at a word chosen uniformly among those where a span of that length fits (whole
words of one run, no special inside, not touching another span or the window's edge, so
both boundary tokens exist and are unmasked); it grows word by word until it has its
length or the budget is met (so only a sample's last span can come out shorter, and the
budget is overshot by less than one word). 80/10/10 is decided once per span: all its
tokens become the mask token, or all random tokens, or all stay.

For SBO every masked token carries the positions of its span's boundary tokens and its
place in the span.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

import numpy as np

from strata.train.objectives.core import Inputs, JointObjective, Vocabulary, per_sample, sample_rng
from strata.train.objectives.masking import corrupt_chosen, masking_budget
from strata.train.objectives.whole_words import special_array, word_ids, word_starts

GEOMETRIC_P = 0.2
MAX_SPAN_WORDS = 10
DRAWS_PER_SPAN = 10  # fresh lengths to try when no place fits a span before a sample stops


def span_length_probs(p: float = GEOMETRIC_P, max_words: int = MAX_SPAN_WORDS) -> np.ndarray:
    """P(length = 1..max_words): p (1-p)^(l-1), renormalised over 1..max_words."""
    probs = p * (1 - p) ** np.arange(max_words)
    return probs / probs.sum()


class Spans(NamedTuple):
    """A sample's spans, in the order drawn: token range [start, end), drawn length in words,
    and words actually masked (fewer only when the budget ran out)."""

    start: np.ndarray
    end: np.ndarray
    drawn: np.ndarray
    words: np.ndarray


def draw_spans(words: np.ndarray, budget: int, rng: np.random.Generator, probs: np.ndarray) -> Spans:
    """Place spans over the word numbers `words` [L] (-1 at specials) until `budget` tokens
    are masked (see the module docstring)."""
    L = words.size
    n_words = int(words.max()) + 1 if (words >= 0).any() else 0
    positions = np.flatnonzero(words >= 0)
    first = np.full(n_words, L)
    np.minimum.at(first, words[positions], positions)
    last = np.zeros(n_words, dtype=np.int64)
    np.maximum.at(last, words[positions], positions + 1)
    run = np.cumsum(np.r_[True, first[1:] != last[:-1]]) if n_words else np.zeros(0, dtype=np.int64)
    word_masked = np.zeros(n_words, dtype=bool)
    token_masked = np.zeros(L + 1, dtype=bool)  # one spare slot: the position after the window
    spans, count = [], 0
    while count < budget:
        for _ in range(DRAWS_PER_SPAN):
            length = int(rng.choice(probs.size, p=probs)) + 1
            starts = _fitting_starts(length, first, last, run, word_masked, token_masked, L)
            if starts.size:
                break
        else:
            break
        w = int(rng.choice(starts))
        taken = 0
        while taken < length and count < budget:
            word_masked[w + taken] = True
            token_masked[first[w + taken]:last[w + taken]] = True
            count += last[w + taken] - first[w + taken]
            taken += 1
        spans.append((first[w], last[w + taken - 1], length, taken))
    columns = np.array(spans, dtype=np.int64).reshape(-1, 4).T
    return Spans(*columns)


def _fitting_starts(length, first, last, run, word_masked, token_masked, L) -> np.ndarray:
    """Words where a span of `length` words fits: words w..w+length-1 in one run, none
    masked, with an unmasked token right before and right after inside the window."""
    n = first.size - length + 1
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    w = np.arange(n)
    masked_before = np.r_[0, np.cumsum(word_masked)]
    end_word = w + length - 1
    ok = (run[w] == run[end_word]) & (masked_before[w + length] == masked_before[w])
    ok &= (first[w] > 0) & (last[end_word] < L)
    ok &= ~token_masked[np.maximum(first[w] - 1, 0)] & ~token_masked[last[end_word]]
    return w[ok]


def spanbert_mask(tokens, *, seed: int, epoch: int, sample_id: int, vocab_size: int, special_ids: Iterable[int],
                  mask_id: int, word_start: np.ndarray, rate: float = 0.15) -> tuple[dict[str, np.ndarray], Spans]:
    """tokens [L] -> ({idx, targets, left, right, offset} int64 [L], the spans). At a
    labelled position, `left`/`right` are the positions of its span's boundary tokens and
    `offset` its place in the span (0 first); elsewhere they are 0."""
    ids = np.array(tokens, dtype=np.int64)
    specials = special_array(special_ids, mask_id)
    rng = sample_rng(seed, epoch, sample_id)
    words = word_ids(ids, word_start, specials)
    budget = masking_budget(rng, rate, int((words >= 0).sum()))
    spans = draw_spans(words, budget, rng, span_length_probs())
    lengths = spans.end - spans.start
    chosen = np.concatenate([np.arange(s, e) for s, e in zip(spans.start, spans.end)] or [np.zeros(0, np.int64)])
    action = np.repeat(rng.random(len(lengths)), lengths)  # one 80/10/10 draw per span
    inputs, labels = corrupt_chosen(rng, ids, chosen, action, vocab_size, specials, mask_id)
    left, right, offset = (np.zeros_like(ids) for _ in range(3))
    left[chosen] = np.repeat(spans.start - 1, lengths)
    right[chosen] = np.repeat(spans.end, lengths)
    offset[chosen] = chosen - np.repeat(spans.start, lengths)
    return dict(idx=inputs, targets=labels, left=left, right=right, offset=offset), spans


def spanbert_sample(tokens, **options) -> dict[str, np.ndarray]:
    """spanbert_mask as an objective's batch row."""
    return spanbert_mask(tokens, **options)[0]


class SpanBERTObjective(JointObjective):
    """SpanBERT: span masking; MLM + SBO (--no-sbo: MLM alone) on encoder_heads.SpanBERT."""

    name = "spanbert"
    architecture = "spanbert"
    needs = ("mask",)
    bits_per_byte = False  # with SBO the loss adds a second cross-entropy of the same tokens

    def __init__(self, cfg, tokenizer: Vocabulary):
        super().__init__(cfg, tokenizer)
        self.rate, self.sbo = cfg.mlm_rate, cfg.sbo
        self.word_start = word_starts(tokenizer.pieces)

    def build_model(self, preset: str, vocab_size: int, seq_len: int, **overrides):
        return super().build_model(preset, vocab_size, seq_len, sbo=self.sbo, **overrides)

    def batch(self, tokens, sample_id, epoch) -> Inputs:
        return self.with_segments(per_sample(
            spanbert_sample, tokens, sample_id, epoch, seed=self.seed, vocab_size=self.vocab_size,
            special_ids=self.control_ids(), mask_id=self.specials["mask"], word_start=self.word_start, rate=self.rate,
        ))
