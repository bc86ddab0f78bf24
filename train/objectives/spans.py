"""T5 span corruption (Raffel et al. 2020, section 3.1.4; t5.data.preprocessors.span_corruption).

Of the n tokens of a window that are not special, round(n x noise_density) are noise
(15%), in round(noise / mean_span) spans (mean length 3). As in T5's
`random_spans_noise_mask`, the noise tokens and the others are each cut into that many
non-empty runs at uniformly random points, and the runs alternate, starting with one
that is kept. Special tokens (EOS between documents...) are never noise: the mask is
drawn over the other positions, so a special splits a span it falls in.

    source = the window with each span replaced by its sentinel <extra_id_k>, k = 0, 1, ...
    target = <extra_id_0> span 0 <extra_id_1> span 1 ...

Example: "Thank you for inviting me to your party last week ." ->
source "Thank you <extra_id_0> me to your party <extra_id_1> week .",
target "<extra_id_0> for inviting <extra_id_1> last".
"""

from __future__ import annotations

import numpy as np

from strata.config import ConfigError
from strata.train.objectives.core import Vocabulary, sample_rng
from strata.train.objectives.examples import ExampleObjective


def random_segmentation(items: int, segments: int, rng: np.random.Generator) -> np.ndarray:
    """Lengths of `segments` non-empty runs that add up to `items`, the cut points a
    uniformly random subset of 1..items-1 (T5's _random_segmentation)."""
    cuts = np.sort(rng.choice(np.arange(1, items), size=segments - 1, replace=False))
    return np.diff(np.concatenate([[0], cuts, [items]]))


def noise_mask(length: int, density: float, mean_span: float, rng: np.random.Generator) -> np.ndarray:
    """Bool [length]: True on the noise tokens (T5's random_spans_noise_mask)."""
    if length < 2:
        return np.zeros(length, dtype=bool)
    noise = min(max(int(round(length * density)), 1), length - 1)
    spans = min(max(int(round(noise / mean_span)), 1), noise, length - noise)
    runs = np.stack([random_segmentation(length - noise, spans, rng), random_segmentation(noise, spans, rng)], 1)
    return np.repeat(np.tile([False, True], spans), runs.ravel())


def spans_over(positions: np.ndarray, length: int, mask: np.ndarray) -> np.ndarray:
    """A mask drawn over `positions` (the corruptible ones) as a mask over the window."""
    full = np.zeros(length, dtype=bool)
    full[positions] = mask
    return full


def check_sentinels(seq_len: int, denoisers: list[tuple[float, float]], sentinels: list[int]) -> None:
    """Refuse a window length at which a (mean span, noise density) denoiser would draw more
    spans than the tokenizer has sentinels (span k would reuse sentinel k mod count, and the
    target could not say which span is which)."""
    spans = max(round(seq_len * density / mean_span) for mean_span, density in denoisers)
    if spans > sentinels[1]:
        raise ConfigError(
            f"seq_len: {seq_len} x noise_density / mean_span = {spans} spans, more than the tokenizer's "
            f"{sentinels[1]} sentinels (tokenizer.sentinels in the build config)"
        )


def span_starts(noise: np.ndarray) -> np.ndarray:
    return noise & ~np.concatenate([[False], noise[:-1]])


def corrupt_spans(window: np.ndarray, noise: np.ndarray, sentinels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(source, target) of a window and its noise mask; sentinels = [first id, count]. Span
    k gets sentinel first + k (k modulo count, should a window hold more spans: the
    objectives refuse such window lengths up front, check_sentinels)."""
    first, count = sentinels
    starts = span_starts(noise)
    sentinel = first + (np.cumsum(starts) - 1) % count
    source = np.where(starts, sentinel, window)[~noise | starts]
    target = np.insert(window[noise], np.flatnonzero(starts[noise]), sentinel[starts])
    return source, target


class SpanCorruption(ExampleObjective):
    """T5: reconstruct the dropped spans, each after its sentinel."""

    name = "span_corruption"
    needs = ("sentinels",)

    def __init__(self, cfg, tokenizer: Vocabulary):
        super().__init__(cfg, tokenizer)
        self.density, self.mean_span = cfg.noise_density, cfg.mean_span
        check_sentinels(cfg.seq_len, [(self.mean_span, self.density)], self.specials["sentinels"])

    def example(self, window: np.ndarray, sample_id: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        rng = sample_rng(self.seed, epoch, sample_id)
        positions = self.corruptible(window)
        noise = spans_over(positions, len(window), noise_mask(len(positions), self.density, self.mean_span, rng))
        return corrupt_spans(window, noise, self.specials["sentinels"])
