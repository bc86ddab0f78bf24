"""Checksums of the shard format.

    shard     sha256 of the whole tar, in the manifest (with its size)
    index     sha256 of the block-index sidecar's bytes, in the manifest (`index_sha256`)
    block     xxh3_64 of each block's bytes (its three members, headers and padding
              included), in the block index (`xxh3_64`, 16 hex digits)

The block checksum lets a reader check a block fetched by byte range (a local seek or an
HTTP range request to an object store) without reading the rest of the shard. It is there
to catch damage (a flipped bit on disk or in transit, a short or shifted read), at memory
speed: xxh3 hashes ~20 GB/s on one core where sha256 manages under 1, so checking every
block the loader reads costs next to nothing; its 64 bits miss a random corruption with
probability 2^-64 (crc32c's 32 bits: 2^-32). It is not a defence against someone who rewrites
shards on purpose: that is what the shard's sha256 is for, which the loader also checks, on a
background thread, the first time a machine reads the shard and again whenever the file
changed (train/verified_record.py: a local file's inode, size, mtime and ctime, an object's
ETag or version); `verify_every_run` checks it every run.

Who catches what: bytes appended or cut off, the size check when the stream first touches a
shard; a shard replaced or rewritten (even with its size and mtime put back: ctime moves), its
sha256; damage on the medium or in transit that changes no stat field (a flipped bit on disk,
a short read), the block's xxh3 on every read, whatever the record says.
"""

from __future__ import annotations

import hashlib

import xxhash

BLOCK_CHECKSUM = "xxh3_64"  # the block index's field
# Read size of a whole-file sha256: 1 MiB stays in the CPU cache between the read's copy and
# the hash (16 MiB buffers fell out of it and cost ~20% more CPU per byte), and is still few
# enough reads (eight a shard of 8 MB) that taking the GIL back for each costs nothing.
CHUNK = 1 << 20


def block_checksum(data: bytes) -> str:
    return xxhash.xxh3_64_hexdigest(data)


def block_checksum_value(data: bytes) -> int:
    """The block checksum as an unsigned 64-bit integer (what `int(block_checksum(d), 16)` is)."""
    return xxhash.xxh3_64_intdigest(data)


def block_hasher() -> "xxhash.xxh3_64":
    """An incremental block checksum: update() it with the block's bytes, then hexdigest()."""
    return xxhash.xxh3_64()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stream_sha256(f, chunk: int = CHUNK) -> tuple[int, str]:
    """(bytes, sha256 hex) of what is left to read of the binary file `f`, read in chunks
    into one reused buffer."""
    digest, size = hashlib.sha256(), 0
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    while n := f.readinto(buffer):
        digest.update(view[:n])
        size += n
    return size, digest.hexdigest()
