"""Blocks of a build, by id: the block table (every block of a split, from the shards'
block-index sidecars, checked against the manifest) and the BlockReader, which fetches
blocks by byte range through fsspec (a local read or an HTTP range request), checks them
against the index's checksum, decodes them (manifests/block_codec.py) and caches them.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from strata.manifests.block_codec import BlockFormatError, decode_block, index_mismatches
from strata.manifests.block_index import decode_index, index_disagreements
from strata.manifests.checksums import BLOCK_CHECKSUM, block_checksum_value, sha256_hex
from strata.manifests.manifest import Manifest, ShardError
from strata.manifests.paths import shard_files
from strata.storage import filesystem, join

log = logging.getLogger("strata.data")


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
    def load(cls, build: str, manifest: Manifest, split: str, categories: list[str], verify: bool = True) -> "BlockTable":
        """Reads the block-index sidecar of every shard of `categories` in `split`, checked
        against the manifest's record of the shard (and its sha256, if `verify`)."""
        shards = [s for c in categories for s in manifest.categories[c].shards if s.split == split]
        uris = [shard_files(build, s)[0] for s in shards]  # every recorded path confined to the build first
        fs, root = filesystem(build)
        index_paths = [join(root, s.index) for s in shards]
        try:
            sidecars = fs.cat(index_paths, on_error="raise") if index_paths else {}
        except FileNotFoundError as err:
            raise ShardError(f"a block index is missing ({err}); the build is incomplete or damaged") from None
        columns: dict[str, list] = {"shard": [], "offset": [], "length": [], "tokens": [], "docs": [], "key": [],
                                    BLOCK_CHECKSUM: []}
        ranges = {}
        for i, (shard, index_path, uri) in enumerate(zip(shards, index_paths, uris)):
            raw = sidecars[index_path]
            if verify and sha256_hex(raw) != shard.index_sha256:
                raise ShardError(f"{uri}: its block index {shard.index} is not the one the manifest records (sha256); refused")
            try:
                index = decode_index(raw)
            except ValueError as err:
                raise ShardError(f"{uri}: its block index {shard.index} is {err}") from None
            differ = index_disagreements(index, shard)
            if differ:
                raise ShardError(f"{uri}: its block index {shard.index} does not match the manifest: {differ}")
            blocks = index["blocks"]
            columns["shard"] += [i] * len(blocks)
            for name in columns.keys() - {"shard"}:
                columns[name] += [b[name] for b in blocks]
        start = 0
        for category in categories:
            n = sum(s.blocks for s in shards if s.category == category)
            ranges[category] = range(start, start + n)
            start += n
        return cls(
            uris=uris,
            paths=[s.path for s in shards],
            sizes=[s.bytes for s in shards],
            sha256s=[s.sha256 for s in shards],
            shard=np.array(columns["shard"], dtype=np.int32),
            **{name: np.array(columns[name], dtype=np.int64) for name in ("offset", "length", "tokens", "docs")},
            keys=columns["key"],
            checksums=np.array([int(h, 16) for h in columns[BLOCK_CHECKSUM]], dtype=np.uint64),
            categories=ranges,
        )


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
            block = decode_block(data, key)
        except BlockFormatError as err:
            raise ShardError(f"{where} is corrupt: {err}") from None
        problems = index_mismatches(block, int(t.tokens[b]), int(t.docs[b]), self.vocab_size)
        if problems:
            raise ShardError(f"{where} is corrupt: {'; '.join(problems)}")
        return block.tokens

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
