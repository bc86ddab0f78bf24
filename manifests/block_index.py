"""The block index of a shard, the sidecar TAR.idx.json beside each tar:

    {"path": the tar relative to OUT, "sha256", "bytes",
     "blocks": [{"key", "offset", "length", "tokens", "docs", "xxh3_64"}]}

A block's offset and length span its three members (first header to last padding), so a
reader can fetch it alone by byte range; xxh3_64 is the checksum of those bytes
(manifests/checksums.py). The manifest records the sidecar's own sha256 (`index_sha256`).
The shard writer encodes it; the loader and `strata verify` decode it and compare it with
the manifest here.
"""

from __future__ import annotations

import json
from strata.manifests.checksums import BLOCK_CHECKSUM
from strata.manifests.manifest import ShardRecord

BLOCK_FIELDS = ("key", "offset", "length", "tokens", "docs", BLOCK_CHECKSUM)
_COMPARED = ("path", "bytes", "sha256", "blocks", "tokens")  # with the manifest's shard record


def encode_index(path: str, sha256: str, size: int, blocks: list[dict]) -> bytes:
    return json.dumps({"path": path, "sha256": sha256, "bytes": size, "blocks": blocks}, indent=1).encode()


def decode_index(raw: bytes) -> dict:
    """The sidecar's content; ValueError if it is not a block index."""
    try:
        index = json.loads(raw)
        blocks = index["blocks"]
        if not all(isinstance(index[name], (str, int)) for name in ("path", "sha256", "bytes")):
            raise TypeError("path, sha256 or bytes is not a string or a number")
        for block in blocks:
            missing = [name for name in BLOCK_FIELDS if name not in block]
            if missing:
                raise KeyError(f"a block without {', '.join(missing)}")
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"damaged: {err!r}") from None
    return index


def index_disagreements(index: dict, shard: ShardRecord) -> str | None:
    """How a decoded index disagrees with the manifest's record of its shard (path, size,
    sha256, block and token counts), or None."""
    blocks = index["blocks"]
    found = (index["path"], index["bytes"], index["sha256"], len(blocks), sum(b["tokens"] for b in blocks))
    expected = tuple(getattr(shard, name) for name in _COMPARED)
    differ = [f"{n} {a!r} (manifest {b!r})" for n, a, b in zip(_COMPARED, found, expected) if a != b]
    return ", ".join(differ) or None
