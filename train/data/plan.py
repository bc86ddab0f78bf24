"""The plan: which pieces of which blocks make each window of the global sequence (see
the package doc), found for a few steps' windows at once, vectorised.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterator, Mapping

import numpy as np

from strata.train.data.blocks import BlockTable
from strata.train.mixing import Interleave, block_order

PLAN_STEPS = 8  # steps planned at once: the plan's numpy calls cost per call, not per window


@dataclass
class Cut:
    """The windows of some steps of one rank (B consecutive windows a step) and the pieces
    of blocks they are made of: flat arrays of pieces in window order, then in order within
    the window."""

    steps: list[int]
    ids: np.ndarray  # global window index (sample_id) of each window
    categories: np.ndarray  # index into Plan.names
    epochs: np.ndarray  # the pass over its category that the window starts in
    window: np.ndarray  # per piece: index of its window in `ids`
    offset: np.ndarray  # per piece: where it goes in the windows laid end to end
    block: np.ndarray  # per piece: block id
    start: np.ndarray  # per piece: first token within the block
    stop: np.ndarray  # per piece: end (exclusive) within the block

    def blocks(self) -> list[int]:
        """Block ids in the order the windows need them, each once."""
        return list(dict.fromkeys(self.block.tolist()))

    def pieces(self) -> Iterator[tuple[int, int, int, int]]:
        """(offset, block, start, stop) of each piece, as Python ints."""
        return zip(self.offset.tolist(), self.block.tolist(), self.start.tolist(), self.stop.tolist())

    def part(self, j: int) -> "Cut":
        """The cut of its j-th step alone."""
        size = len(self.ids) // len(self.steps)
        low, high = self.window.searchsorted([j * size, (j + 1) * size]).tolist()
        windows, pieces = slice(j * size, (j + 1) * size), slice(low, high)
        return Cut(
            [self.steps[j]], self.ids[windows], self.categories[windows], self.epochs[windows],
            self.window[pieces] - j * size, self.offset[pieces] - self.offset[low],
            self.block[pieces], self.start[pieces], self.stop[pieces],
        )


class Plan:
    """The global window sequence over a block table (see the module doc)."""

    PASSES_KEPT = 2  # block orders kept per category: a cut rarely spans more than two passes

    def __init__(self, table: BlockTable, shares: Mapping[str, float], seed: int, seq_len: int, extra_token: bool):
        self.table = table
        self.mix = Interleave(shares)
        self.names = self.mix.names
        self.seed = seed
        self.stride = seq_len
        self.window = seq_len + int(extra_token)
        ranges = [table.categories[name] for name in self.names]
        self.totals = [int(table.tokens[r.start : r.stop].sum()) for r in ranges]
        self._passes: OrderedDict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def cut(self, steps: list[int], ids: np.ndarray) -> Cut:
        """The windows `ids` (of `steps`): each is tokens [u*S, u*S + L) of its category's
        endless stream (pass after pass), split where blocks end."""
        categories, units = self.mix.locate(ids)
        starts = units * self.stride
        epochs = np.empty_like(starts)
        parts = []
        for c in np.unique(categories).tolist():
            windows = np.flatnonzero(categories == c)  # in id order, so their starts ascend
            total = self.totals[c]
            first, stop = starts[windows], starts[windows] + self.window
            epochs[windows] = first // total
            for epoch in range(int(first[0]) // total, (int(stop[-1]) - 1) // total + 1):
                base = epoch * total
                inside = (first < base + total) & (stop > base)
                low = np.maximum(first[inside], base) - base  # the window's range within the pass
                high = np.minimum(stop[inside], base + total) - base
                parts.append(self._split(c, epoch, windows[inside], low, high))
        window, block, start, stop = (np.concatenate(column) for column in zip(*parts))
        order = np.argsort(window, kind="stable")  # parts came in pass order
        window, block, start, stop = window[order], block[order], start[order], stop[order]
        offset = np.cumsum(stop - start) - (stop - start)
        return Cut(steps, ids, categories, epochs, window, offset, block, start, stop)

    def _split(self, c: int, epoch: int, windows: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple:
        """Pieces (window, block, start, stop) of the token ranges [low, high) of a pass."""
        order, ends = self._pass(c, epoch)
        first = ends.searchsorted(low, "right")
        count = ends.searchsorted(high - 1, "right") - first + 1
        each = np.repeat(np.arange(len(windows)), count)
        position = first[each] + np.arange(len(each)) - np.repeat(np.cumsum(count) - count, count)
        block = order[position]
        block_start = ends[position] - self.table.tokens[block]
        start = np.maximum(low[each], block_start) - block_start
        stop = np.minimum(high[each], ends[position]) - block_start
        return windows[each], block, start, stop

    def _pass(self, c: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(block ids in reading order, cumulative tokens at the end of each) of a pass."""
        key = (c, epoch)
        if key not in self._passes:
            blocks = self.table.categories[self.names[c]]
            order = blocks.start + block_order(len(blocks), self.seed, epoch, self.names[c])
            self._passes[key] = (order, np.cumsum(self.table.tokens[order]))
            if len(self._passes) > self.PASSES_KEPT * len(self.names):
                self._passes.popitem(last=False)
        else:
            self._passes.move_to_end(key)
        return self._passes[key]
