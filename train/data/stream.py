"""StreamingWindows: one rank's windows of the global sequence (see the package doc), as
batches or one window at a time, with where each came from (Sources).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info

from strata.manifests.block_codec import token_dtype
from strata.manifests.manifest import Manifest
from strata.storage import is_local
from strata.train.data.blocks import BlockReader, BlockTable
from strata.train.data.plan import PLAN_STEPS, Cut, Plan
from strata.train.integrity import ShardVerifier
from strata.train.verified_record import VerifiedRecord


def _distributed() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class StreamingWindows(IterableDataset):
    """Windows of one rank, in the global order (see the module doc), from `start_step` on
    (to `end_step`, exclusive, or without end). Iterating yields one dict per window:

        tokens     LongTensor [seq_len (+1 with extra_token)]
        sample_id  the window's index in the global sequence
        epoch      the pass over its category the window starts in
        category   its category
        step       the global step it belongs to
        sources    [(block_key, token_start, token_end)] it was cut from, in order

    Use it with DataLoader(batch_size=local_batch, collate_fn=collate), or with BatchLoader,
    which builds whole batches without per-window tensors (about 3x faster) and keeps
    start_step at the step after the last batch it handed out. state_dict() is that step;
    with a plain DataLoader, set start_step from the batches' "step" yourself. rank and
    world_size default to torch.distributed's.

    With `verify` (the default), every block read is checked against its index checksum,
    and the shards the batches come from against the manifest's size and sha256 (see
    train/integrity.py): a batch is handed out only once each of its shards has the
    manifest's size; finish_checks() waits for the sha256 of every shard touched. A shard's
    sha256 is computed once per machine (the record of verified shards), or every run with
    `verify_every_run`.
    """

    def __init__(
        self,
        build: str,
        split: str = "train",
        *,
        seq_len: int,
        extra_token: bool,
        global_batch: int,
        rank: int | None = None,
        world_size: int | None = None,
        seed: int = 0,
        weights: Mapping[str, float] | None = None,
        start_step: int = 0,
        end_step: int | None = None,
        cache_bytes: int = 64 << 20,
        readahead: int = 8,
        io_threads: int | None = None,
        verify: bool = True,
        verify_every_run: bool = False,
    ):
        super().__init__()
        default_rank, default_world = _distributed()
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size
        if global_batch % self.world_size or not 0 <= self.rank < self.world_size:
            raise ValueError(f"global batch {global_batch} over {self.world_size} ranks (rank {self.rank})")
        self.build = build.rstrip("/")
        self.global_batch = global_batch
        self.local_batch = global_batch // self.world_size
        self.start_step, self.end_step = start_step, end_step
        self.cache_bytes, self.readahead = cache_bytes, readahead
        # Local reads come from the page cache, behind the kernel's own readahead: threads
        # would only contend for the GIL. Object stores answer in tens of milliseconds.
        self.io_threads = (0 if is_local(self.build) else 8) if io_threads is None else io_threads
        manifest = Manifest.read(self.build)
        self.vocab_size = manifest.tokenizer.vocab_size
        shares = self._shares(manifest, split, weights)
        self.verify, self.verify_every_run = verify, verify_every_run
        self.table = BlockTable.load(self.build, manifest, split, sorted(shares), verify)
        self._verifier: ShardVerifier | None = None
        self.plan = Plan(self.table, shares, seed, seq_len, extra_token)
        shards = [s.sha256 for c in sorted(shares) for s in manifest.categories[c].shards if s.split == split]
        stream = [split, self.plan.mix.shares, seed, seq_len, extra_token, global_batch, shards]
        self.fingerprint = hashlib.sha256(json.dumps(stream).encode()).hexdigest()

    @staticmethod
    def _shares(manifest: Manifest, split: str, weights: Mapping[str, float] | None) -> dict[str, float]:
        """Categories that take part, with their share: the manifest's, or `weights`."""
        categories = manifest.categories
        has_data = {c for c, entry in categories.items() if any(s.split == split for s in entry.shards)}
        if weights is None:
            return {c: entry.share for c, entry in categories.items() if entry.share > 0 and c in has_data}
        unknown = sorted(c for c, w in weights.items() if w > 0 and c not in has_data)
        if unknown:
            raise ValueError(f"weights name categories without {split} data: {unknown}; the build has {sorted(has_data)}")
        return {c: w for c, w in weights.items() if w > 0}

    def check_shards(self, cut: Cut) -> None:
        """Before the cut's batches are handed out: the size of each shard they come from,
        the first time; its sha256 is queued (raises the first mismatch found so far)."""
        if not self.verify:
            return
        if self._verifier is None:
            t = self.table
            record = None if self.verify_every_run else VerifiedRecord()
            self._verifier = ShardVerifier(self.build, t.uris, t.paths, t.sizes, t.sha256s, record)
        self._verifier.touch(np.unique(self.table.shard[cut.block]).tolist())

    def finish_checks(self) -> None:
        """Wait for the sha256 of every shard touched so far; raise the first mismatch."""
        if self._verifier is not None:
            self._verifier.wait()

    @property
    def shards_hashed(self) -> list[str]:
        """The shards (paths relative to the build) whose sha256 this stream computed so
        far: those touched that the record of verified shards did not vouch for."""
        hashed = self._verifier.hashed if self._verifier is not None else []
        return [self.table.paths[i] for i in hashed]

    @functools.cached_property
    def shard_of(self) -> dict[str, str]:
        """Block key -> its shard's path relative to the build (for ConsumedWriter)."""
        t = self.table
        return {key: t.paths[s] for key, s in zip(t.keys, t.shard.tolist())}

    def state_dict(self) -> dict:
        """The next step to train on; the plan itself is a pure function of the arguments."""
        return {"step": self.start_step, "fingerprint": self.fingerprint}

    def load_state_dict(self, state: Mapping) -> None:
        if state["fingerprint"] != self.fingerprint:
            raise ValueError(
                "the data state comes from another stream (build, split, shares, seed, seq_len or global batch "
                "differ); resuming would not continue its sample order"
            )
        self.start_step = int(state["step"])

    def steps(self, deal: int = 1) -> Iterator[int]:
        """The global steps this process makes the rank's batches of: from start_step on, in
        chunks of `deal` consecutive steps dealt round-robin to the DataLoader workers."""
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for first in itertools.count(self.start_step + worker * deal, workers * deal):
            for step in range(first, first + deal):
                if self.end_step is not None and step >= self.end_step:
                    return
                yield step

    def cuts(self, deal: int = 1, size: int = PLAN_STEPS) -> Iterator[Cut]:
        """Cuts of `size` of this process's steps at a time. Step s on rank r is the
        windows s*G + r*B + [0, B)."""
        steps = self.steps(deal)
        while chunk := list(itertools.islice(steps, size)):
            firsts = np.array(chunk, dtype=np.int64) * self.global_batch + self.rank * self.local_batch
            yield self.plan.cut(chunk, (firsts[:, None] + np.arange(self.local_batch)).reshape(-1))

    @property
    def token_dtype(self) -> np.dtype:
        """The dtype of the build's tokens (manifests/block_codec.py)."""
        return token_dtype(self.vocab_size)

    def gathered(
        self, deal: int = 1, size: int = PLAN_STEPS, out: Callable[[int], np.ndarray] | None = None
    ) -> Iterator[tuple[Cut, np.ndarray]]:
        """(cut, tokens [windows, L] as token_dtype) for each of `cuts(deal, size)`; the
        tokens of the i-th go into out(i)[:windows] if given. The blocks of the next
        `readahead` steps are being fetched meanwhile (from object stores)."""
        reader = BlockReader(self.build, self.table, self.vocab_size, self.cache_bytes, self.io_threads,
                             verify=self.verify)
        made = itertools.count()
        ahead: deque[Cut] = deque()
        planned = 0

        def gather(cut: Cut) -> tuple[Cut, np.ndarray]:
            shape = (len(cut.ids), self.plan.window)
            tokens = out(next(made))[: shape[0]] if out else np.empty(shape, self.token_dtype)
            flat = tokens.reshape(-1)
            blocks = {b: reader.get(b) for b in cut.blocks()}
            for offset, block, start, stop in cut.pieces():
                flat[offset : offset + stop - start] = blocks[block][start:stop]
            return cut, tokens

        try:
            for cut in self.cuts(deal, size):
                reader.prefetch(cut.blocks())
                ahead.append(cut)
                planned += len(cut.steps)
                while planned - len(ahead[0].steps) >= self.readahead:
                    planned -= len(ahead[0].steps)
                    yield gather(ahead.popleft())
            while ahead:
                yield gather(ahead.popleft())
        finally:
            reader.close()

    def split(self, cut: Cut, tokens: np.ndarray) -> list[dict]:
        """The batch of each step of a gathered cut."""
        size = self.local_batch
        return [self.batch(cut.part(j), tokens[j * size : (j + 1) * size]) for j in range(len(cut.steps))]

    def batch(self, cut: Cut, tokens: np.ndarray) -> dict:
        """The batch of a one-step cut and its tokens (fields as `collate`'s)."""
        keys = self.table.keys
        return {
            "tokens": torch.from_numpy(tokens.astype(np.int64)),
            "sample_id": torch.from_numpy(cut.ids),
            "epoch": torch.from_numpy(cut.epochs),
            "category": [self.plan.names[c] for c in cut.categories.tolist()],
            "step": cut.steps[0],
            "sources": Sources(len(cut.ids), cut.window, [keys[b] for b in cut.block.tolist()], cut.start, cut.stop),
        }

    def batches(self) -> Iterator[dict]:
        """This process's local batches, one a step."""
        for cut, tokens in self.gathered():
            self.check_shards(cut)
            yield from self.split(cut, tokens)

    def __iter__(self) -> Iterator[dict]:
        for batch in self.batches():
            columns = batch["tokens"], batch["sample_id"].tolist(), batch["epoch"].tolist(), batch["category"], batch["sources"]
            for tokens, sample_id, epoch, category, sources in zip(*columns):
                yield {"tokens": tokens, "sample_id": sample_id, "epoch": epoch, "category": category,
                       "step": batch["step"], "sources": sources}


@dataclass
class Sources:
    """Where a batch's windows were cut from, as columns: piece p is tokens [start[p],
    stop[p]) of block block_key[p], the next piece of window window[p] (pieces in window
    order). As a sequence: sources[i] = window i's [(block_key, token_start, token_end)]."""

    count: int  # windows
    window: np.ndarray
    block_key: list[str]
    start: np.ndarray
    stop: np.ndarray

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> list[tuple[str, int, int]]:
        if not 0 <= i < self.count:
            raise IndexError(i)
        low, high = self.window.searchsorted([i, i + 1]).tolist()
        return list(zip(self.block_key[low:high], self.start[low:high].tolist(), self.stop[low:high].tolist()))

    @classmethod
    def of_windows(cls, windows: list[list[tuple[str, int, int]]]) -> "Sources":
        pieces = [(i, *piece) for i, window in enumerate(windows) for piece in window]
        index, keys, start, stop = zip(*pieces)
        return cls(len(windows), np.array(index), list(keys), np.array(start), np.array(stop))


def collate(windows: list[dict]) -> dict:
    """Windows of one step's local batch -> tokens [B, L], sample_id [B], epoch [B],
    category (list), step (int) and sources (Sources)."""
    step = windows[0]["step"]
    if any(w["step"] != step for w in windows):
        raise ValueError("a batch mixes steps: use DataLoader(batch_size=dataset.local_batch)")
    return {
        "tokens": torch.stack([w["tokens"] for w in windows]),
        "sample_id": torch.tensor([w["sample_id"] for w in windows], dtype=torch.long),
        "epoch": torch.tensor([w["epoch"] for w in windows], dtype=torch.long),
        "category": [w["category"] for w in windows],
        "step": step,
        "sources": Sources.of_windows([w["sources"] for w in windows]),
    }
