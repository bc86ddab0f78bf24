"""Mixing: which category each unit of the training stream comes from, and in which order a
category's blocks are read. Pure functions of their arguments, no state, no clock.

Interleave. Shares are quantised to integer weights w_c summing to a resolution R (2^16
by default; every category with a positive share keeps w_c >= 1). Unit m of category c
(m = 1, 2, ...) may go out from slot floor((m-1) R / w_c) on and must go out before slot
ceil(m R / w_c); each slot sends, of the units that may go out, the one with the earliest
deadline, ties to the category whose name sorts first. This is earliest-deadline-first over
Pfair windows (Baruah et al. 1996): with the weights summing to R every deadline is met, so
after any k units each category has produced floor or ceil of its w_c k / R, always within
one unit of its share. Plain largest-deficit-first (Megatron's blending) keeps each category
within one unit of its share only for a few categories: with 10-20 it runs up to ~1.2 units
ahead. Like it, this interleave is deterministic rather than i.i.d. draws.

After R slots every category has sent exactly w_c units and the schedule starts over, so the
interleave is periodic: one period is computed once (O(log C) a unit) and the category and
the rank within its category of any unit k come from two array look-ups, which is what lets
a resumed run jump to any step.

Block order: each pass (epoch) over a category reads all its blocks, across all its shards,
in a permutation seeded by (seed, epoch, category).
"""

from __future__ import annotations

import heapq
import math
import zlib
from typing import Mapping

import numpy as np

RESOLUTION = 2**16


def quantize(shares: Mapping[str, float], resolution: int = RESOLUTION) -> dict[str, int]:
    """Integer weights summing to `resolution`, proportional to the positive shares (largest
    remainders; every positive share gets at least 1), in name order."""
    positive = {name: float(share) for name, share in sorted(shares.items()) if share > 0}
    if not positive:
        raise ValueError(f"no category has a positive share: {dict(shares)}")
    if len(positive) > resolution:
        raise ValueError(f"{len(positive)} categories need a resolution above {resolution}")
    total = sum(positive.values())
    exact = {name: share / total * resolution for name, share in positive.items()}
    weights = {name: max(1, math.floor(x)) for name, x in exact.items()}
    by_remainder = sorted(exact, key=lambda name: (weights[name] - exact[name], name))
    by_size = sorted(weights, key=lambda name: (-weights[name], name))
    excess = sum(weights.values()) - resolution
    for name in (by_remainder if excess < 0 else by_size)[: abs(excess)]:
        weights[name] -= 1 if excess > 0 else -1
    return weights


class Interleave:
    """The category of every unit of an endless stream mixed by `shares` (see the module doc)."""

    def __init__(self, shares: Mapping[str, float], resolution: int = RESOLUTION):
        quantized = quantize(shares, resolution)
        common = math.gcd(*quantized.values())
        self.names: tuple[str, ...] = tuple(quantized)
        self.weights = np.array([w // common for w in quantized.values()], dtype=np.int64)
        self.period = int(self.weights.sum())
        self.categories, self.ranks = self._one_period()

    @property
    def shares(self) -> dict[str, float]:
        """The quantised shares the interleave realises."""
        return {name: w / self.period for name, w in zip(self.names, self.weights.tolist())}

    def _one_period(self) -> tuple[np.ndarray, np.ndarray]:
        """(category index, rank within the category) of each unit of one period."""
        weights, period = self.weights.tolist(), self.period
        produced = [0] * len(weights)
        released: list[tuple[int, int]] = []  # (deadline, category) of units that may go out
        waiting = [(0, c) for c in range(len(weights))]  # (release slot, category) of the next units
        categories = np.empty(period, dtype=np.int16)
        ranks = np.empty(period, dtype=np.int64)
        for slot in range(period):
            while waiting and waiting[0][0] <= slot:
                _, c = heapq.heappop(waiting)
                heapq.heappush(released, (-(-(produced[c] + 1) * period // weights[c]), c))
            deadline, c = heapq.heappop(released)
            assert deadline > slot, "EDF missed a deadline; the weights must sum to the period"
            categories[slot], ranks[slot] = c, produced[c]
            produced[c] += 1
            if produced[c] < weights[c]:
                heapq.heappush(waiting, (produced[c] * period // weights[c], c))
        return categories, ranks

    def locate(self, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(category index, index of the unit among its category's units) of every unit."""
        units = np.asarray(units, dtype=np.int64)
        cycle, slot = np.divmod(units, self.period)
        categories = self.categories[slot].astype(np.int64)
        return categories, cycle * self.weights[categories] + self.ranks[slot]

    def counts(self, n: int) -> np.ndarray:
        """Units of each category among the first n."""
        cycle, rest = divmod(n, self.period)
        return cycle * self.weights + np.bincount(self.categories[:rest], minlength=len(self.names))


def interleave(shares: Mapping[str, float], n: int, resolution: int = RESOLUTION) -> list[str]:
    """The category names of the first n units."""
    mix = Interleave(shares, resolution)
    categories, _ = mix.locate(np.arange(n))
    return [mix.names[c] for c in categories.tolist()]


def block_order(n_blocks: int, seed: int, epoch: int, category: str) -> np.ndarray:
    """A permutation of range(n_blocks): the order in which pass `epoch` reads a category's
    blocks. Seeded through NumPy's SeedSequence by (seed, epoch, crc32 of the name), so it is
    the same on every machine, Python and process."""
    key = [seed, epoch, zlib.crc32(category.encode())]
    return np.random.default_rng(np.random.SeedSequence(key)).permutation(n_blocks)
