"""The token store: each kept document's token ids, kept beside the build for the next one.

    OUT/tokens/tokens.json                        the tokenizer they were encoded with (sha256)
    OUT/tokens/<folder>/part-FFFFF-BBBBB.parquet  doc_id, xxh3_64 of its text's UTF-8, its
                                                  tokens (EOS included), xxh3_64 of those

One file per curated file, written by the shard stage as it encodes. A rebuild that changes
only thresholds or weights keeps most documents and their texts: the shard stage then takes
a document's tokens from the store when the tokenizer is the same and the text hashes the
same, and encodes only the rest. Encoding is most of the shard stage's work, so this is
what makes re-selection cheap once the tokenizer is settled; the shards are the same bytes
either way (tokens are a pure function of tokenizer and text).

Written by strata, but read as data: a row whose tokens do not hash to their checksum is
encoded again, a file of another schema is ignored, and a store of another tokenizer is
removed whole before anything is written. Documents over STORE_MAX_TOKENS are not stored
(a rebuild encodes them again), so that storing never holds a long document's tokens twice.
It costs about the shards' size on disk; `shards.keep_tokens: false` turns it off.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from strata.manifests.layout import CURATED, TOKENS, TOKENS_RECORD
from strata.pipeline.write import read_table
from strata.storage import atomic_output, exists, filesystem, is_local, join, open_file, remove, write_bytes_atomic

SCHEMA = pa.schema(
    [("doc_id", pa.string()), ("text_xxh3", pa.uint64()), ("tokens", pa.binary()), ("tokens_xxh3", pa.uint64())]
)
STORE_MAX_TOKENS = 1 << 20


def text_checksum(text_utf8) -> int:
    """The checksum a stored row keeps of its document's text (its UTF-8 bytes)."""
    return xxhash.xxh3_64_intdigest(text_utf8)


def prepare_store(out: str, tokenizer_sha256: str) -> None:
    """Keep OUT/tokens/ if it holds this tokenizer's tokens, else empty it and record the tokenizer."""
    record = join(out, TOKENS_RECORD)
    if exists(record):
        with open_file(record, "rb") as f:
            try:
                if json.loads(f.read()).get("tokenizer_sha256") == tokenizer_sha256:
                    return
            except (ValueError, AttributeError):
                pass
    remove(join(out, TOKENS))
    write_bytes_atomic(record, json.dumps({"tokenizer_sha256": tokenizer_sha256}).encode())


def store_uri(out: str, curated_uri: str) -> str:
    """The store file of a curated file: the same folder and name under OUT/tokens/. The
    two are compared as their file systems' paths, normalized locally: a glob lists a
    relative OUT's files by absolute paths."""
    (_, root), (_, path) = filesystem(join(out, CURATED)), filesystem(curated_uri)
    if is_local(out):
        root, path = os.path.normpath(root), os.path.normpath(path)
    if not path.startswith(root + "/"):
        raise ValueError(f"{curated_uri} is not under {join(out, CURATED)}")
    return join(out, TOKENS, path[len(root) + 1:])


class StoredTokens:
    """The stored tokens of one curated file (none if it has no store file), by doc_id."""

    def __init__(self, uri: str, dtype: np.dtype):
        self.dtype = dtype
        self.table = SCHEMA.empty_table()
        if exists(uri):
            try:
                table = read_table(uri)
            except (pa.ArrowInvalid, OSError):  # damaged: encode again
                table = None
            if table is not None and table.schema.equals(SCHEMA):
                self.table = table
        self.row_of = {doc_id: i for i, doc_id in enumerate(self.table.column("doc_id").to_pylist())}
        self.text_checksums = self.table.column("text_xxh3").to_numpy()
        self.token_checksums = self.table.column("tokens_xxh3").to_numpy()

    def get(self, doc_id: str, text_xxh3: int) -> np.ndarray | None:
        """The document's tokens if stored for this text and intact, else None."""
        i = self.row_of.get(doc_id)
        if i is None or self.text_checksums[i] != text_xxh3:
            return None
        data = self.table.column("tokens")[i].as_buffer()
        if xxhash.xxh3_64_intdigest(data) != self.token_checksums[i]:
            return None
        return np.frombuffer(data, self.dtype)


class StoreWriter:
    """Appends a curated file's documents to its store file, batch by batch."""

    def __init__(self, writer: pq.ParquetWriter):
        self.writer = writer

    def add(self, doc_ids: list[str], text_checksums: list[int], tokens: list[np.ndarray]) -> None:
        kept = [i for i, t in enumerate(tokens) if len(t) <= STORE_MAX_TOKENS]
        data = [tokens[i].tobytes() for i in kept]
        self.writer.write_table(pa.table([
            pa.array([doc_ids[i] for i in kept], pa.string()),
            pa.array([text_checksums[i] for i in kept], pa.uint64()),
            pa.array(data, pa.binary()),
            pa.array([xxhash.xxh3_64_intdigest(d) for d in data], pa.uint64()),
        ], schema=SCHEMA))


@contextlib.contextmanager
def store_writer(uri: str) -> Iterator[StoreWriter]:
    """A StoreWriter whose file appears at `uri` once the block exits without error."""
    with atomic_output(uri, durable=False) as f, pq.ParquetWriter(f, SCHEMA, compression="zstd", use_dictionary=False,
                                                   write_statistics=["doc_id"]) as writer:
        yield StoreWriter(writer)
