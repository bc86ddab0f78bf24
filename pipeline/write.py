"""Parquet files written atomically and read back, through fsspec (local or object storage)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from strata.storage import filesystem, write_atomic


# Long, mostly distinct values: neither a dictionary nor min/max statistics help a
# reader, and each would copy a value once more while writing (a 50 MB document's
# statistics alone cost two copies of it).
DOCUMENT_COLUMNS = {"text", "raw", "text_lines", "text_final", "minhash"}


def write_table(uri: str, table: pa.Table) -> int:
    """Write a table as one zstd-compressed Parquet file; returns its row count."""
    small = [name for name in table.column_names if name not in DOCUMENT_COLUMNS]
    write_atomic(
        uri,
        lambda f: pq.write_table(
            table, f, compression="zstd", row_group_size=8192, use_dictionary=small, write_statistics=small
        ),
    )
    return table.num_rows


def write_parquet(uri: str, rows: list[dict], schema: pa.Schema) -> int:
    return write_table(uri, pa.Table.from_pylist(rows, schema=schema))


def read_table(uri: str) -> pa.Table:
    """One Parquet file as a table (the reverse of write_table)."""
    fs, path = filesystem(uri)
    return pq.read_table(path, filesystem=fs)
