"""Parquet files written atomically and read back, through fsspec (local or object storage)."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from strata.storage import filesystem, write_atomic


def write_parquet(uri: str, rows: list[dict], schema: pa.Schema) -> int:
    """Write rows as one zstd-compressed Parquet file; returns the row count."""
    table = pa.Table.from_pylist(rows, schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", row_group_size=8192)
    write_atomic(uri, lambda f: f.write(buffer.getvalue()))
    return len(rows)


def read_parquet(uri: str) -> pa.Table:
    fs, path = filesystem(uri)
    return pq.read_table(path, filesystem=fs)
