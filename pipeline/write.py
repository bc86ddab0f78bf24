"""Write: deterministic, bucketed Parquet output.

Rows are grouped by a bucket of their doc_id (a hash, so buckets are even) and each
bucket is written as one file sorted by doc_id. The same input gives the same files on
any runner and any number of workers, and no writer holds more than one bucket.
"""

from __future__ import annotations

import io
import math

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq

from strata.storage import join, write_atomic


def bucket_of(doc_id: str, buckets: int) -> int:
    return int(doc_id[:8], 16) % buckets


def bucket_count(total_bytes: int, bytes_per_bucket: int) -> int:
    return max(1, math.ceil(total_bytes / bytes_per_bucket))


def part_name(bucket: int) -> str:
    return f"part-{bucket:05d}.parquet"


def write_parquet(uri: str, rows: list[dict], schema: pa.Schema) -> int:
    """Write rows (sorted by doc_id, record_index) as one Parquet file; returns the row count."""
    rows.sort(key=lambda r: (r["doc_id"], r.get("record_index") or 0))
    table = pa.Table.from_pylist(rows, schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", row_group_size=8192)
    write_atomic(uri, lambda f: f.write(buffer.getvalue()))
    return len(rows)


class WriteBuckets(beam.PTransform):
    """Rows -> OUT/<folder>/part-NNNNN.parquet; outputs (uri, rows written) per file."""

    def __init__(self, folder_uri: str, schema: pa.Schema, buckets: int):
        super().__init__()
        self.folder_uri = folder_uri
        self.schema = schema
        self.buckets = buckets

    def expand(self, rows):
        buckets, folder, schema = self.buckets, self.folder_uri, self.schema
        return (
            rows
            | "KeyByBucket" >> beam.Map(lambda r: (bucket_of(r["doc_id"], buckets), r))
            | "GroupBuckets" >> beam.GroupByKey()
            | "WriteFiles"
            >> beam.MapTuple(
                lambda bucket, group: (
                    join(folder, part_name(bucket)),
                    write_parquet(join(folder, part_name(bucket)), list(group), schema),
                )
            )
        )
