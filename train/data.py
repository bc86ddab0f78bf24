"""The training stream: a global, deterministic sequence of token windows read straight
from a build's shards through their block index.

The plan (a pure function of the manifest, the shares, seed, seq_len and the window's index):

    category streams   each category's train (or val) blocks, from all its shards, read in
                       pass after pass; pass e reads them in block_order(seed, e, category);
                       documents stay in order inside a block
    windows            the unit of mixing: window i comes whole from one category, chosen by
                       the Interleave of the shares (every prefix of the stream is within one
                       window of each share), and is that category's u-th window, u = the
                       number of earlier windows of the category: tokens [u*S, u*S + L) of its
                       stream, S = seq_len, L = seq_len + 1 for CLM (the extra token is the
                       last label, and the next window's first input, as in Megatron's GPT
                       datasets) or seq_len for MLM. All windows have L tokens, so shares of
                       windows are shares of tokens.
    steps              global step s trains on windows [s*G, (s+1)*G), G the global batch;
                       rank r of W takes [s*G + r*G/W, s*G + (r+1)*G/W); DataLoader workers
                       take the rank's steps in turn, one (or a chunk of consecutive steps)
                       each: the DataLoader takes their outputs in the same turn, so batches
                       come out in step order.

Nothing depends on the world size or worker count except who makes which window, so a run
resumed at step N on any number of ranks and workers (same G) continues the same global
sequence, and every rank gets the same number of windows at every step. The pieces of a few
steps' windows are found at once, vectorised: the interleave gives each window's category
and rank in it, a binary search of the pass's cumulative block sizes its blocks. Blocks
come through fsspec by byte range (local read, or HTTP range request to an object store),
are checked and decoded once, kept in a bounded LRU cache and, from object stores, fetched
ahead by a small thread pool. Nothing runs a shell.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import re
import tarfile
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from strata.manifests.checksums import BLOCK_CHECKSUM, block_checksum_value, sha256_hex
from strata.manifests.manifest import ShardError, read_manifest
from strata.manifests.paths import shard_files
from strata.pipeline.write import read_parquet, write_table
from strata.storage import filesystem, glob, is_local, join, remove, remove_leftovers
from strata.train.integrity import ShardVerifier
from strata.train.mixing import Interleave, block_order

log = logging.getLogger("strata.data")

PLAN_STEPS = 8  # steps planned at once: the plan's numpy calls cost per call, not per window


# --------------------------------------------------------------------------- block table


@dataclass
class BlockTable:
    """Every block of one split, all categories, as flat arrays indexed by block id.
    A category's blocks are the ids [start, stop) of `categories[name]`, in shard order."""

    uris: list[str]  # shard URIs
    paths: list[str]  # shard paths relative to the build, as the manifest has them
    sizes: list[int]  # shard bytes, as the manifest has them
    sha256s: list[str]  # shard sha256, as the manifest has them
    shard: np.ndarray  # block id -> index into uris/paths
    offset: np.ndarray  # byte offset of the block's first tar header
    length: np.ndarray  # bytes
    tokens: np.ndarray
    docs: np.ndarray
    keys: list[str]
    checksums: np.ndarray  # block id -> its xxh3_64 as uint64
    categories: dict[str, range]

    @classmethod
    def load(cls, build: str, manifest: dict, split: str, categories: list[str], verify: bool = True) -> "BlockTable":
        """Reads the block-index sidecar of every shard of `categories` in `split`, checked
        against the manifest's record of the shard (and its sha256, if `verify`)."""
        shards = [s for c in categories for s in manifest["categories"][c]["shards"] if s["split"] == split]
        uris = [shard_files(build, s)[0] for s in shards]  # every recorded path confined to the build first
        fs, root = filesystem(build)
        index_paths = [join(root, s["index"]) for s in shards]
        try:
            sidecars = fs.cat(index_paths, on_error="raise") if index_paths else {}
        except FileNotFoundError as err:
            raise ShardError(f"a block index is missing ({err}); the build is incomplete or damaged") from None
        columns: dict[str, list] = {"shard": [], "offset": [], "length": [], "tokens": [], "docs": [], "key": [],
                                    BLOCK_CHECKSUM: []}
        ranges = {}
        for i, (shard, index_path, uri) in enumerate(zip(shards, index_paths, uris)):
            raw = sidecars[index_path]
            if verify and sha256_hex(raw) != shard.get("index_sha256"):
                raise ShardError(f"{uri}: its block index {shard['index']} is not the one the manifest records (sha256); refused")
            try:
                index = json.loads(raw)
                blocks = index["blocks"]
                if (index["path"], index["bytes"], len(blocks), sum(b["tokens"] for b in blocks)) != (
                    shard["path"], shard["bytes"], shard["blocks"], shard["tokens"]
                ):
                    raise ShardError(f"{uri}: its block index {shard['index']} does not match the manifest")
                columns["shard"] += [i] * len(blocks)
                for name in columns.keys() - {"shard"}:
                    columns[name] += [b[name] for b in blocks]
            except (ValueError, KeyError, TypeError) as err:
                raise ShardError(f"{uri}: its block index {shard['index']} is damaged ({err!r})") from None
        start = 0
        for category in categories:
            n = sum(s["blocks"] for s in shards if s["category"] == category)
            ranges[category] = range(start, start + n)
            start += n
        return cls(
            uris=uris,
            paths=[s["path"] for s in shards],
            sizes=[s["bytes"] for s in shards],
            sha256s=[s["sha256"] for s in shards],
            shard=np.array(columns["shard"], dtype=np.int32),
            **{name: np.array(columns[name], dtype=np.int64) for name in ("offset", "length", "tokens", "docs")},
            keys=columns["key"],
            checksums=np.array([int(h, 16) for h in columns[BLOCK_CHECKSUM]], dtype=np.uint64),
            categories=ranges,
        )


# --------------------------------------------------------------------------- the plan


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


# --------------------------------------------------------------------------- reading blocks


TRANSIENT = (OSError, TimeoutError)
PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


class BlockReader:
    """Reads blocks by id through fsspec byte ranges, checks (against the index's checksum,
    if `verify`) and decodes them, keeps decoded blocks in an LRU cache of at most
    `cache_bytes` and fetches ahead on `threads` threads. Holds threads and open
    filesystems: make one per process (each DataLoader worker)."""

    def __init__(
        self,
        build: str,
        table: BlockTable,
        vocab_size: int,
        cache_bytes: int = 64 << 20,
        threads: int = 8,
        attempts: int = 4,
        backoff: float = 0.2,
        verify: bool = True,
    ):
        self.fs, root = filesystem(build)
        self.paths = [join(root, path) for path in table.paths]
        self.table = table
        self.vocab_size = vocab_size
        self.cache_bytes = cache_bytes
        self.attempts = attempts
        self.backoff = backoff
        self.verify = verify
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cached = 0
        self._pending: dict[int, Future] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="strata-blocks") if threads else None

    def close(self) -> None:
        if self._pool:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def prefetch(self, blocks: list[int]) -> None:
        if self._pool is None:
            return
        with self._lock:
            for b in blocks:
                if b not in self._cache and b not in self._pending:
                    self._pending[b] = self._pool.submit(self.load, b)

    def get(self, b: int) -> np.ndarray:
        """The block's tokens."""
        with self._lock:
            tokens = self._cache.get(b)
            if tokens is not None:
                self._cache.move_to_end(b)
                return tokens
            pending = self._pending.pop(b, None)
        tokens = pending.result() if pending else self.load(b)
        with self._lock:
            self._cache[b] = tokens
            self._cached += tokens.nbytes
            while self._cached > self.cache_bytes and len(self._cache) > 1:
                self._cached -= self._cache.popitem(last=False)[1].nbytes
        return tokens

    def load(self, b: int) -> np.ndarray:
        t = self.table
        start, length = int(t.offset[b]), int(t.length[b])
        uri, key = t.uris[t.shard[b]], t.keys[b]
        data = self._read(t.shard[b], start, start + length, key)
        where = f"{uri}: block {key} (bytes {start}-{start + length})"
        if len(data) != length:
            raise ShardError(f"{where}: read {len(data)} bytes; the shard is truncated or not the manifest's")
        if self.verify and block_checksum_value(data) != int(t.checksums[b]):
            raise ShardError(f"{where} is corrupt: its bytes do not match the block index's {BLOCK_CHECKSUM}; refused")
        try:
            tokens, offsets = decode_block(data, key)
        except ValueError as err:
            raise ShardError(f"{where} is corrupt: {err}") from None
        if len(tokens) != t.tokens[b] or len(offsets) != t.docs[b]:
            found, indexed = f"{len(tokens)} tokens, {len(offsets)} docs", f"{t.tokens[b]}, {t.docs[b]}"
            raise ShardError(f"{where} is corrupt: {found}; the index says {indexed}")
        if len(tokens) and int(tokens.max()) >= self.vocab_size:
            raise ShardError(f"{where} is corrupt: token id {int(tokens.max())} >= vocab size {self.vocab_size}")
        return tokens

    def _read(self, shard: int, start: int, end: int, key: str) -> bytes:
        """The bytes, retrying transient errors (connection resets, timeouts, 5xx) with backoff."""
        uri = self.table.uris[shard]
        for attempt in itertools.count(1):
            try:
                return self.fs.cat_file(self.paths[shard], start=start, end=end)
            except FileNotFoundError:
                raise ShardError(f"{uri}: shard is missing") from None
            except PERMANENT as err:
                raise ShardError(f"{uri}: cannot read: {err}") from err
            except TRANSIENT as err:
                if attempt == self.attempts:
                    raise ShardError(f"{uri}: reading block {key} failed {attempt} times: {err!r}") from err
                log.warning("%s: reading block %s failed (%r); retrying", uri, key, err)
                time.sleep(self.backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")


def decode_block(data: bytes, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, document offsets) from the bytes of one block's three tar members, as
    read-only views of `data`. Header checksums, member names and sizes, and the arrays'
    npy headers are checked; ValueError if anything is off."""
    view = memoryview(data)
    arrays = []
    position = 0
    for name in (f"{key}.json", f"{key}.offsets.npy", f"{key}.tokens.npy"):
        header = data[position : position + tarfile.BLOCKSIZE]
        if len(header) < tarfile.BLOCKSIZE:
            raise ValueError(f"ends inside the header of {name}")
        if _octal(header[148:156]) != sum(header) - sum(header[148:156]) + 8 * ord(" "):
            raise ValueError(f"bad tar header checksum at member {name}")
        found = header[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
        if found != name:
            raise ValueError(f"member {found!r} where {name!r} belongs")
        size = _octal(header[124:136])
        body = view[position + tarfile.BLOCKSIZE : position + tarfile.BLOCKSIZE + size]
        if len(body) != size:
            raise ValueError(f"ends inside member {name}")
        if name.endswith(".npy"):
            arrays.append(_npy_vector(body, name))
        position += tarfile.BLOCKSIZE + size + (-size % tarfile.BLOCKSIZE)
    if position != len(data):
        raise ValueError(f"{len(data) - position} bytes after the block's last member")
    offsets, tokens = arrays
    if tokens.dtype.kind != "u" or offsets.dtype != np.int64:
        raise ValueError(f"unexpected dtypes: tokens {tokens.dtype}, offsets {offsets.dtype}")
    if len(offsets) and (offsets[0] != 0 or np.any(np.diff(offsets) <= 0) or offsets[-1] >= len(tokens)):
        raise ValueError("document offsets out of order or out of range")
    return tokens, offsets


# What np.save writes for a 1-D little-endian integer array. Parsed here rather than by
# np.load, whose header parser compiles a Python literal (~100 us a block) and which copies.
NPY_HEADER = re.compile(rb"\{'descr': '(<[ui][248])', 'fortran_order': False, 'shape': \((\d+),\), \} *\n")


def _npy_vector(body: memoryview, name: str) -> np.ndarray:
    if bytes(body[:8]) != b"\x93NUMPY\x01\x00" or len(body) < 10:
        raise ValueError(f"{name} is not an npy 1.0 array")
    end = 10 + int.from_bytes(body[8:10], "little")
    match = NPY_HEADER.fullmatch(bytes(body[10:end]))
    if match is None:
        raise ValueError(f"{name}: unexpected npy header {bytes(body[10:end])[:80]!r}")
    dtype, count = np.dtype(match[1].decode()), int(match[2])
    if len(body) != end + count * dtype.itemsize:
        raise ValueError(f"{name}: {len(body) - end} data bytes for {count} x {dtype}")
    return np.frombuffer(body, dtype=dtype, count=count, offset=end)


def _octal(field: bytes) -> int:
    digits = field.split(b"\0", 1)[0].strip()
    if not re.fullmatch(rb"[0-7]+", digits):
        raise ValueError(f"bad tar header number {field!r}")
    return int(digits, 8)


# --------------------------------------------------------------------------- the dataset


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
    manifest's size; finish_checks() waits for the sha256 of every shard touched.
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
        manifest = read_manifest(self.build)
        self.vocab_size = manifest["tokenizer"]["vocab_size"]
        shares = self._shares(manifest, split, weights)
        self.verify = verify
        self.table = BlockTable.load(self.build, manifest, split, sorted(shares), verify)
        self._verifier: ShardVerifier | None = None
        self.plan = Plan(self.table, shares, seed, seq_len, extra_token)
        shards = [s["sha256"] for c in sorted(shares) for s in manifest["categories"][c]["shards"] if s["split"] == split]
        stream = [split, self.plan.mix.shares, seed, seq_len, extra_token, global_batch, shards]
        self.fingerprint = hashlib.sha256(json.dumps(stream).encode()).hexdigest()

    @staticmethod
    def _shares(manifest: dict, split: str, weights: Mapping[str, float] | None) -> dict[str, float]:
        """Categories that take part, with their share: the manifest's, or `weights`."""
        categories = manifest["categories"]
        has_data = {c for c, entry in categories.items() if any(s["split"] == split for s in entry["shards"])}
        if weights is None:
            return {c: entry["share"] for c, entry in categories.items() if entry["share"] > 0 and c in has_data}
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
            self._verifier = ShardVerifier(self.build, t.uris, t.paths, t.sizes, t.sha256s)
        self._verifier.touch(np.unique(self.table.shard[cut.block]).tolist())

    def finish_checks(self) -> None:
        """Wait for the sha256 of every shard touched so far; raise the first mismatch."""
        if self._verifier is not None:
            self._verifier.wait()

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
        """The smallest unsigned dtype that holds every token id."""
        return np.dtype(np.uint16 if self.vocab_size <= 2**16 else np.uint32)

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


# --------------------------------------------------------------------------- lineage


CONSUMED_SCHEMA = pa.schema(
    [
        ("step", pa.int64()),
        ("rank", pa.int32()),
        ("sample_id", pa.int64()),
        ("block_key", pa.string()),
        ("shard", pa.string()),  # relative to the build
        ("token_start", pa.int64()),  # within the block's tokens
        ("token_end", pa.int64()),  # exclusive
    ]
)
PART = re.compile(r"part-r(\d+)-(\d+)-(\d+)\.parquet$")
LEFTOVER = re.compile(r"^\.part-r(\d+)-")  # a part's temporary file, left by a killed run


class ConsumedWriter:
    """RUN/consumed/part-r<rank>-<first step>-<last step>.parquet: one row per piece of every
    window a rank trained on. Parts are written every `flush_every` steps on a background
    thread, off the training loop; call flush() before saving a checkpoint, so that the
    lineage of every step the checkpoint includes is on disk.

    A resumed run (start_step > 0) trains on steps >= start_step again, so the writer first
    drops their rows: rank r of world_size W clears the parts of the old ranks r, r + W,
    r + 2W, ... (the old run may have had more ranks), and no two ranks touch one file."""

    def __init__(
        self,
        run_dir: str,
        shard_of: Mapping[str, str],
        rank: int = 0,
        world_size: int = 1,
        start_step: int = 0,
        flush_every: int = 100,
    ):
        self.folder = join(run_dir, "consumed")
        self.shard_of = shard_of
        self.rank = rank
        self.flush_every = flush_every
        self.pending: list[tuple[int, np.ndarray, Sources]] = []  # (step, sample ids, sources)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="strata-consumed")
        self._writing: Future | None = None
        self._forget_from(start_step, world_size)

    def _forget_from(self, step: int, world_size: int) -> None:
        remove_leftovers(self.folder, lambda name: (m := LEFTOVER.search(name)) and int(m[1]) % world_size == self.rank)
        for uri in glob(join(self.folder, "part-r*.parquet")):
            rank, first, last = map(int, PART.search(uri).groups())
            if rank % world_size != self.rank or last < step:
                continue
            kept = read_parquet(uri).filter(pc.field("step") < step) if first < step else None
            remove(uri)
            if kept is not None:
                self._write(kept, rank, first, step - 1)

    def write(self, step: int, batch: Mapping) -> None:
        """Record the batch a rank trained on at `step`."""
        self.pending.append((step, batch["sample_id"].numpy(), batch["sources"]))
        if len(self.pending) >= self.flush_every:
            self._flush(background=True)

    def flush(self) -> None:
        """Write every step recorded so far; returns once it is written."""
        self._flush(background=False)

    def _flush(self, background: bool) -> None:
        if self._writing is not None:  # one part at a time, in step order; raises its error
            writing, self._writing = self._writing, None
            writing.result()
        if not self.pending:
            return
        keys = [key for _, _, sources in self.pending for key in sources.block_key]
        columns = {
            "step": np.concatenate([np.full(len(s.window), step) for step, _, s in self.pending]),
            "rank": np.full(len(keys), self.rank, dtype=np.int32),
            "sample_id": np.concatenate([ids[s.window] for _, ids, s in self.pending]),
            "block_key": keys,
            "shard": [self.shard_of[key] for key in keys],
            "token_start": np.concatenate([s.start for _, _, s in self.pending]),
            "token_end": np.concatenate([s.stop for _, _, s in self.pending]),
        }
        table = pa.Table.from_pydict(columns, schema=CONSUMED_SCHEMA)
        part = (table, self.rank, self.pending[0][0], self.pending[-1][0])
        self.pending = []
        if background:
            self._writing = self._pool.submit(self._write, *part)
        else:
            self._write(*part)

    def _write(self, table: pa.Table, rank: int, first: int, last: int) -> None:
        write_table(join(self.folder, f"part-r{rank:05d}-{first:09d}-{last:09d}.parquet"), table)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._pool.shutdown()

    def __enter__(self) -> "ConsumedWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
