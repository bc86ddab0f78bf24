"""BatchLoader: a rank's batches in step order, made in this process or by DataLoader
workers that hand their tokens over through shared memory.
"""

from __future__ import annotations

import time
from typing import Iterator, Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from strata.manifests.manifest import ShardError
from strata.train.data.plan import Cut
from strata.train.data.stream import StreamingWindows


class _Ring:
    """Shared memory through which DataLoader workers hand gathered tokens to the main
    process. Through the DataLoader's pipe a batch's 64 KiB would cost more CPU than making
    it; here it costs one copy, and a message carries only the cut of `chunk` steps (each
    message wakes two processes: ~150 us in a VM). Worker w's n-th message uses slot
    n % slots of its row once the main process has released message n - slots (the
    DataLoader keeps at most prefetch_factor < slots messages of a worker in flight, so
    that wait is a guard)."""

    def __init__(self, workers: int, slots: int, windows: int, window: int, dtype: np.dtype):
        self.slots = slots
        torch_dtype = {np.dtype(np.uint16): torch.uint16, np.dtype(np.uint32): torch.uint32}[np.dtype(dtype)]
        self.tokens = torch.empty((workers, slots, windows, window), dtype=torch_dtype).share_memory_()
        self.released = torch.zeros(workers, dtype=torch.int64).share_memory_()

    def slot(self, worker: int, n: int) -> np.ndarray:
        """Where `worker` writes the tokens of its message n, once free."""
        released = self.released.numpy()
        while released[worker] < n - self.slots + 1:
            time.sleep(0.0002)
        return self.tokens[worker, n % self.slots].numpy()

    def take(self, worker: int, n: int) -> np.ndarray:
        return self.tokens[worker, n % self.slots].numpy()

    def release(self, worker: int, n: int) -> None:
        self.released[worker] = n + 1


class _Messages(IterableDataset):
    """What a BatchLoader worker sends: (cut of `chunk` consecutive steps, (worker, n)),
    the tokens being in the ring."""

    def __init__(self, windows: StreamingWindows, ring: _Ring, chunk: int):
        self.windows, self.ring, self.chunk = windows, ring, chunk

    def __iter__(self) -> Iterator[tuple[Cut, tuple[int, int]] | ShardError]:
        worker = get_worker_info().id
        gathered = self.windows.gathered(self.chunk, self.chunk, out=lambda n: self.ring.slot(worker, n))
        try:
            for n, (cut, _) in enumerate(gathered):
                yield cut, (worker, n)
        except ShardError as err:  # as a message: the DataLoader would wrap it in a traceback
            yield err


def _as_is(message: tuple) -> tuple:
    """Messages as they are (DataLoader's default_convert would walk them)."""
    return message


class BatchLoader:
    """The rank's local batches, one a step, in step order (fields as `collate`'s), made in
    this process or by `num_workers` DataLoader workers, each making about `chunk_tokens`
    tokens' worth of consecutive steps at a time. Tracks the next step for state_dict(): a
    new iteration starts after the last batch handed out."""

    def __init__(
        self,
        windows: StreamingWindows,
        num_workers: int = 0,
        pin_memory: bool = False,
        prefetch_factor: int = 2,
        chunk_tokens: int = 1 << 20,
    ):
        self.windows = windows
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.prefetch_factor = prefetch_factor
        self.chunk_steps = max(1, chunk_tokens // (windows.local_batch * windows.plan.window))

    def __iter__(self) -> Iterator[dict]:
        if not self.num_workers:
            for batch in self.windows.batches():
                yield self._hand_out(batch)
            return
        w = self.windows
        slots = self.prefetch_factor + 2
        ring = _Ring(self.num_workers, slots, self.chunk_steps * w.local_batch, w.plan.window, w.token_dtype)
        messages = DataLoader(
            _Messages(w, ring, self.chunk_steps),
            batch_size=None,
            collate_fn=_as_is,
            num_workers=self.num_workers,
            prefetch_factor=self.prefetch_factor,
        )
        for message in messages:
            if isinstance(message, ShardError):
                raise message
            cut, (worker, n) = message
            w.check_shards(cut)
            batches = w.split(cut, ring.take(worker, n))  # copies the tokens out
            ring.release(worker, n)
            for batch in batches:
                yield self._hand_out(batch)

    def _hand_out(self, batch: dict) -> dict:
        if self.pin_memory:
            batch["tokens"] = batch["tokens"].pin_memory()
        self.windows.start_step = batch["step"] + 1
        return batch

    def state_dict(self) -> dict:
        return self.windows.state_dict()

    def load_state_dict(self, state: Mapping) -> None:
        self.windows.load_state_dict(state)
