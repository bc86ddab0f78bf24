"""Packing and tar writing of the shard stage (pipeline/shard.py): documents' token arrays
packed, in order, into blocks of whole documents, and blocks written as one plain USTAR
archive whose block index and placements are recorded as it goes (see shard.py for the
format and manifests/block_codec.py for a block's members)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import IO, Iterable, Iterator

import numpy as np

from strata.manifests.block_codec import TAR_END, encode_block
from strata.manifests.block_index import encode_index
from strata.manifests.checksums import BLOCK_CHECKSUM, block_hasher
from strata.manifests.layout import block_key


# --------------------------------------------------------------------------- packing


@dataclass
class Block:
    key: str
    index: int
    first_continues: bool  # starts in the middle of a document
    pieces: list[np.ndarray] = field(default_factory=list)
    doc_ids: list[str] = field(default_factory=list)
    size: int = 0  # tokens
    last_continues: bool = False  # its last document goes on in the next block

    def append(self, doc_id: str, piece: np.ndarray) -> None:
        self.pieces.append(piece)
        self.doc_ids.append(doc_id)
        self.size += len(piece)

    def offsets(self) -> np.ndarray:
        return np.cumsum([0] + [len(p) for p in self.pieces[:-1]], dtype=np.int64)

    def placements(self) -> Iterator[tuple[str, int, int]]:
        """(doc_id, token_start, token_end) of every piece."""
        for doc_id, start, piece in zip(self.doc_ids, self.offsets(), self.pieces):
            yield doc_id, int(start), int(start) + len(piece)


class BlockPacker:
    """Packs documents (token arrays ending with EOS), in order, into blocks of at most
    `block_tokens`. A document that does not fit closes the current block, unless that is
    empty; a document longer than a block fills blocks and continues in the next one."""

    def __init__(self, block_tokens: int, key_prefix: str):
        self.block_tokens = block_tokens
        self.key_prefix = key_prefix
        self.block = self._new_block(0, first_continues=False)

    def _new_block(self, index: int, first_continues: bool) -> Block:
        return Block(block_key(self.key_prefix, index), index, first_continues)

    def _close(self, continues: bool) -> Block:
        closed = self.block
        closed.last_continues = continues
        self.block = self._new_block(closed.index + 1, first_continues=continues)
        return closed

    def add(self, doc_id: str, tokens: np.ndarray) -> Iterator[Block]:
        """The blocks that adding this document closes."""
        if self.block.size and self.block.size + len(tokens) > self.block_tokens:
            yield self._close(continues=False)
        start = 0
        while len(tokens) - start > self.block_tokens:
            self.block.append(doc_id, tokens[start : start + self.block_tokens])
            start += self.block_tokens
            yield self._close(continues=True)
        self.block.append(doc_id, tokens[start:])

    def finish(self) -> Iterator[Block]:
        if self.block.size:
            yield self._close(continues=False)


# --------------------------------------------------------------------------- tar writing


class HashingWriter:
    """A write-only file that passes bytes on while counting and hashing them."""

    def __init__(self, file: IO[bytes]):
        self.file = file
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.bytes += len(data)
        return self.file.write(data)

    def tell(self) -> int:
        return self.bytes


class ShardTar:
    """Writes one tar of blocks (`write` is the callback for storage.write_atomic) and
    records, as it goes, the block index (byte range of each block's members, from its
    first header to the end of its last member's padding) and where each piece went."""

    def __init__(self, category: str, split: str, shard: int, blocks: Iterable[Block]):
        self.category, self.split, self.shard = category, split, shard
        self.blocks = blocks
        self.index: list[dict] = []
        self.placements: list[tuple[str, str, int, int]] = []  # (block_key, doc_id, start, end)
        self.docs = 0  # whole documents: pieces that do not continue an earlier block
        self.sha256 = ""
        self.bytes = 0

    def write(self, file: IO[bytes]) -> None:
        """A plain USTAR archive: the blocks' members, then the two zero blocks POSIX asks
        for, without tarfile's padding of the whole archive to 10 KiB (which costs more than
        the headers on a small shard)."""
        out = HashingWriter(file)
        for block in self.blocks:
            start = out.tell()
            checksum = block_hasher()
            for part in encode_block(block.key, self.meta(block), np.concatenate(block.pieces), block.offsets()):
                out.write(part)
                checksum.update(part)
            self.index.append(
                {"key": block.key, "offset": start, "length": out.tell() - start,
                 "tokens": block.size, "docs": len(block.doc_ids), BLOCK_CHECKSUM: checksum.hexdigest()}
            )
            self.placements += [(block.key, *placement) for placement in block.placements()]
            self.docs += len(block.doc_ids) - block.first_continues
        out.write(bytes(TAR_END))
        self.sha256 = out.sha256.hexdigest()
        self.bytes = out.bytes

    def index_bytes(self, path: str) -> bytes:
        """The block-index sidecar of this tar (once written), stored at `path`."""
        return encode_index(path, self.sha256, self.bytes, self.index)

    def meta(self, block: Block) -> dict:
        """The block's KEY.json."""
        return {
            "category": self.category,
            "split": self.split,
            "shard": self.shard,
            "block": block.index,
            "doc_ids": block.doc_ids,
            "first_continues": block.first_continues,
            "last_continues": block.last_continues,
        }

    @property
    def tokens(self) -> int:
        return sum(entry["tokens"] for entry in self.index)
