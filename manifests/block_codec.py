"""A shard block, encoded and decoded: one WebDataset sample of three USTAR members, in this
order (their names' order):

    KEY.json         {"category", "split", "shard", "block", "doc_ids", "first_continues", "last_continues"}
    KEY.offsets.npy  int64 start of each document piece in tokens: 0 first, strictly rising,
                     each below the token count
    KEY.tokens.npy   token ids as `token_dtype(vocab_size)`: uint16 exactly when every id
                     fits (vocab_size <= 65,536: ids 0..65,535), else uint32

Each member is a 512-byte header with fixed metadata (mtime 0, uid/gid 0, empty owner
names, mode 0o644), its data, and zero padding to 512 bytes, so the same block always has
the same bytes. The writer (pipeline/shard.py), the loader (train/blocks.py) and
`strata verify` (manifests/verify.py) all go through this module.

Decoding parses the headers and npy arrays itself rather than with tarfile and np.load
(np.load's header parser compiles a Python literal, ~100 us a block, and copies): it
accepts exactly what `encode_block` writes, and the arrays it returns are read-only views
of the block's bytes.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from dataclasses import dataclass
from typing import Mapping

import numpy as np

MEMBERS = (".json", ".offsets.npy", ".tokens.npy")  # a block's members, in their order in the tar
UINT16_IDS = 1 << 16  # token ids a uint16 holds: 0 .. 65,535
BLOCKSIZE = tarfile.BLOCKSIZE
TAR_END = 2 * BLOCKSIZE  # the zero bytes after a tar's last member


class BlockFormatError(ValueError):
    """Bytes that are not a block as `encode_block` writes it; the message says where."""


def token_dtype(vocab_size: int) -> np.dtype:
    """The dtype of a block's tokens: the smallest unsigned one that holds every id below
    `vocab_size`."""
    return np.dtype(np.uint16 if vocab_size <= UINT16_IDS else np.uint32)


# --------------------------------------------------------------------------- encoding


def encode_block(key: str, meta: Mapping, tokens: np.ndarray, offsets: np.ndarray) -> list[bytes]:
    """The block's bytes, as consecutive parts (per member: header, data, padding)."""
    if tokens.dtype.kind != "u" or offsets.dtype != np.int64:
        raise BlockFormatError(f"block {key}: tokens must be unsigned and offsets int64, not {tokens.dtype}, {offsets.dtype}")
    _check_offsets(offsets, len(tokens))
    data = {
        ".json": json.dumps(dict(meta), sort_keys=True, separators=(",", ":")).encode(),
        ".offsets.npy": _npy(offsets),
        ".tokens.npy": _npy(tokens),
    }
    parts = []
    for suffix in MEMBERS:
        body = data[suffix]
        parts += [_header(key + suffix, len(body)), body, bytes(-len(body) % BLOCKSIZE)]
    return parts


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _header(name: str, size: int) -> bytes:
    """A USTAR header with fixed metadata, so identical inputs give byte-identical tars."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")


# --------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class DecodedBlock:
    meta: memoryview  # the KEY.json member's bytes (parse with json.loads(bytes(meta)) when needed)
    offsets: np.ndarray  # int64, read-only
    tokens: np.ndarray  # uint16 or uint32, read-only


def decode_block(data: bytes, key: str) -> DecodedBlock:
    """The members of one block's bytes, which must hold exactly its three members. Header
    checksums, member names and sizes, the arrays' npy headers and dtypes and the offsets
    are checked; BlockFormatError says what is off."""
    view = memoryview(data)
    bodies = []
    position = 0
    for suffix in MEMBERS:
        name = key + suffix
        header = data[position : position + BLOCKSIZE]
        if len(header) < BLOCKSIZE:
            raise BlockFormatError(f"ends inside the header of {name}")
        if _octal(header[148:156]) != sum(header) - sum(header[148:156]) + 8 * ord(" "):
            raise BlockFormatError(f"bad tar header checksum at member {name}")
        found = header[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
        if found != name:
            raise BlockFormatError(f"member {found!r} where {name!r} belongs")
        size = _octal(header[124:136])
        body = view[position + BLOCKSIZE : position + BLOCKSIZE + size]
        if len(body) != size:
            raise BlockFormatError(f"ends inside member {name}")
        bodies.append(body)
        position += BLOCKSIZE + size + (-size % BLOCKSIZE)
    if position != len(data):
        raise BlockFormatError(f"{len(data) - position} bytes after the block's last member")
    meta, offsets, tokens = bodies[0], _npy_vector(bodies[1], key + MEMBERS[1]), _npy_vector(bodies[2], key + MEMBERS[2])
    if tokens.dtype.kind != "u" or tokens.dtype.itemsize not in (2, 4) or offsets.dtype != np.int64:
        raise BlockFormatError(f"unexpected dtypes: tokens {tokens.dtype}, offsets {offsets.dtype}")
    _check_offsets(offsets, len(tokens))
    return DecodedBlock(meta, offsets, tokens)


def _check_offsets(offsets: np.ndarray, tokens: int) -> None:
    if len(offsets) and (offsets[0] != 0 or np.any(np.diff(offsets) <= 0) or offsets[-1] >= tokens):
        raise BlockFormatError("document offsets out of order or out of range")


# What np.save writes for a 1-D little-endian integer array.
NPY_HEADER = re.compile(rb"\{'descr': '(<[ui][248])', 'fortran_order': False, 'shape': \((\d+),\), \} *\n")


def _npy_vector(body: memoryview, name: str) -> np.ndarray:
    if bytes(body[:8]) != b"\x93NUMPY\x01\x00" or len(body) < 10:
        raise BlockFormatError(f"{name} is not an npy 1.0 array")
    end = 10 + int.from_bytes(body[8:10], "little")
    match = NPY_HEADER.fullmatch(bytes(body[10:end]))
    if match is None:
        raise BlockFormatError(f"{name}: unexpected npy header {bytes(body[10:end])[:80]!r}")
    dtype, count = np.dtype(match[1].decode()), int(match[2])
    if len(body) != end + count * dtype.itemsize:
        raise BlockFormatError(f"{name}: {len(body) - end} data bytes for {count} x {dtype}")
    return np.frombuffer(body, dtype=dtype, count=count, offset=end)


def _octal(field: bytes) -> int:
    digits = field.split(b"\0", 1)[0].strip()
    if not re.fullmatch(rb"[0-7]+", digits):
        raise BlockFormatError(f"bad tar header number {field!r}")
    return int(digits, 8)


# --------------------------------------------------------------------------- checks against the index


def index_mismatches(block: DecodedBlock, tokens: int, docs: int, vocab_size: int) -> list[str]:
    """What is wrong with a decoded block given its index entry's token and document counts
    and the build's vocabulary size; nothing is an empty list."""
    problems = []
    if len(block.tokens) != tokens:
        problems.append(f"{len(block.tokens)} tokens where the index has {tokens}")
    if len(block.offsets) != docs:
        problems.append(f"{len(block.offsets)} documents where the index has {docs}")
    if len(block.tokens) and int(block.tokens.max()) >= vocab_size:
        problems.append(f"token id {int(block.tokens.max())} is not below the vocabulary size {vocab_size}")
    return problems
