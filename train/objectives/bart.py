"""BART's denoising (Lewis et al. 2020, section 2.2): sentence permutation, then text
infilling; the encoder-decoder reconstructs the original window.

Sentence permutation: inside each document of the window, its sentences (ended by a
piece whose text ends with ".", "!" or "?", as fairseq's full-stop rule) are shuffled;
the EOS stays at the document's end.

Text infilling: span lengths are drawn from Poisson(3) until they cover 30% of the
window's non-special tokens (the last one cut to fit), spans of length 0 included. The
spans are laid out in random order at uniformly random places, apart from each other
(the kept tokens between them form a uniformly random composition), and each span is
replaced by ONE mask token, so the model must also predict how many tokens are missing;
a 0-length span inserts a mask. Special tokens are never masked.
"""

from __future__ import annotations

import numpy as np

from strata.config import ConfigError
from strata.train.attention import segments_from_eos
from strata.train.objectives.core import Vocabulary, sample_rng
from strata.train.objectives.examples import ExampleObjective


def poisson_spans(budget: int, mean: float, rng: np.random.Generator) -> np.ndarray:
    """Span lengths ~ Poisson(mean), drawn until they add up to `budget` (the last cut)."""
    if budget == 0:
        return np.zeros(0, dtype=np.int64)
    lengths: list[int] = []
    total = 0
    while total < budget:
        draw = rng.poisson(mean, size=max(8, int(2 * (budget - total) / mean) + 1))
        lengths.extend(draw.tolist())
        total += int(draw.sum())
    lengths = np.array(lengths, dtype=np.int64)
    covered = np.cumsum(lengths)
    last = int(np.searchsorted(covered, budget))  # the first span that reaches the budget
    lengths = lengths[: last + 1]
    lengths[-1] -= covered[last] - budget
    return lengths


def infill(window: np.ndarray, positions: np.ndarray, spans: np.ndarray, mask_id: int, rng: np.random.Generator) -> np.ndarray:
    """The window with `spans` (lengths, in order) masked among `positions` (the n
    corruptible ones): the n - sum(spans) kept ones are cut into len(spans) + 1 runs, each
    possibly empty, uniformly among the ways (stars and bars); span i starts after run i.
    Each span becomes one mask token, placed before the position it starts at."""
    n, k = len(positions), len(spans)
    places = np.sort(rng.choice(n - int(spans.sum()) + k, size=k, replace=False))
    before = np.concatenate([[0], np.cumsum(spans)[:-1]]).astype(np.int64)  # masked tokens before span i
    starts = places - np.arange(k) + before  # kept + masked positions before span i: in 0..n
    masked = np.zeros(n + 1, dtype=bool)
    masked[np.repeat(starts, spans) + np.arange(spans.sum()) - np.repeat(before, spans)] = True
    keep = np.ones(len(window) + 1, dtype=bool)
    keep[positions[masked[:n]]] = False
    keep[-1] = False
    inserts = np.zeros(len(window) + 1, dtype=np.int64)
    np.add.at(inserts, np.append(positions, len(window))[starts], 1)
    values = np.stack([np.full(len(window) + 1, mask_id), np.append(window, 0)], 1).ravel()
    return np.repeat(values, np.stack([inserts, keep], 1).ravel())


def permute_sentences(window: np.ndarray, ends: np.ndarray, eos: int, rng: np.random.Generator) -> np.ndarray:
    """The window with the sentences of each document shuffled; ends: bool per position,
    True where a sentence ends. A document's EOS stays last."""
    documents = segments_from_eos(window, eos).numpy()
    sentence = np.concatenate([[0], np.cumsum(ends[:-1] | (window[:-1] == eos))])
    key = rng.random(sentence[-1] + 1)[sentence]
    key[window == eos] = np.inf
    return window[np.lexsort((np.arange(len(window)), key, documents))]


class BART(ExampleObjective):
    """Reconstruct the window from its permuted, infilled version."""

    name = "bart"
    needs = ("mask",)

    def __init__(self, cfg, tokenizer: Vocabulary):
        super().__init__(cfg, tokenizer)
        self.rate, self.mean, self.permute = cfg.bart_rate, cfg.bart_poisson, cfg.bart_permute
        pieces = tokenizer.pieces
        if self.permute and pieces is None:
            raise ConfigError("bart_permute: sentence permutation needs the tokenizer's pieces (the build's model)")
        self.sentence_end = pieces.sentence_end if pieces is not None else None

    def model_len(self, seq_len: int) -> int:
        """0-length spans add mask tokens: a source may be longer than the window."""
        return 2 * super().model_len(seq_len)

    def example(self, window: np.ndarray, sample_id: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        rng = sample_rng(self.seed, epoch, sample_id)
        source = window
        if self.permute:
            source = permute_sentences(window, self.sentence_end[window], self.specials["eos"], rng)
        positions = self.corruptible(source)
        spans = poisson_spans(int(round(self.rate * len(positions))), self.mean, rng)
        return infill(source, positions, spans, self.specials["mask"], rng), window
