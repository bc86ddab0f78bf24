"""Data contracts of the curate stage: the document record that flows through Beam and
the Parquet schemas of what it writes (curated, rejected, quarantine, lineage).

A document in flight is a plain dict (Beam encodes dicts of primitives without pickling):

    doc_id        str   stable id: hash of (source name, path relative to the source root, record index)
    source        str   source name from the config
    uri           str   the file it came from
    record_index  int   index of the record in that file
    category      str
    text          str
    language, language_score, quality_score   filled in by the stages that compute them
    content_hash  str   hash of the normalized content (exact dedup)
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

# Stages in pipeline order; a dropped record's lineage row names one of them.
STAGES = ("read", "validate", "normalize", "filter", "language", "quality", "exact_dedup", "near_dedup")

FATE_KEPT = "kept"
FATE_QUARANTINED = "quarantined"
FATE_DROPPED = "dropped"
FATE_DUPLICATE = "duplicate"


# A batch of documents in every stage, spooled to disk between the per-document stages
# and the dedup verdicts.
SPOOL_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("uri", pa.string()),
        ("record_index", pa.int64()),
        ("category", pa.string()),
        ("raw_bytes", pa.int64()),
        ("text", pa.string()),
        ("text_bytes", pa.int64()),
        ("fate", pa.string()),
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw", pa.binary()),
        ("content_hash", pa.string()),
        ("language", pa.string()),
        ("language_score", pa.float32()),
        ("quality_score", pa.float32()),
    ]
)


def make_doc_id(source: str, relpath: str, record_index: int) -> str:
    """128-bit hex id, stable across reruns of the same input."""
    key = f"{source}\x1f{relpath}\x1f{record_index}".encode()
    return hashlib.blake2b(key, digest_size=16).hexdigest()


CURATED_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("text", pa.string()),
        ("category", pa.string()),
        ("source", pa.string()),
        ("uri", pa.string()),
        ("record_index", pa.int64()),
        ("content_hash", pa.string()),
        ("language", pa.string()),
        ("language_score", pa.float32()),
        ("quality_score", pa.float32()),
    ]
)

REJECTED_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("text", pa.string()),
        ("category", pa.string()),
        ("source", pa.string()),
        ("uri", pa.string()),
        ("record_index", pa.int64()),
        ("stage", pa.string()),
        ("reason", pa.string()),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("uri", pa.string()),
        ("record_index", pa.int64()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw", pa.binary()),  # the record's bytes, capped at validate.quarantine_raw_bytes
        ("raw_bytes", pa.int64()),  # the record's full size
    ]
)

LINEAGE_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("uri", pa.string()),
        ("record_index", pa.int64()),
        ("category", pa.string()),
        ("raw_bytes", pa.int64()),  # bytes as read
        ("text_bytes", pa.int64()),  # UTF-8 bytes of the text when its fate was decided
        ("content_hash", pa.string()),
        ("fate", pa.string()),  # kept | quarantined | dropped | duplicate
        ("stage", pa.string()),  # the stage that decided a non-kept fate
        ("reason", pa.string()),
        ("duplicate_of", pa.string()),  # the surviving doc_id of its duplicate group
        ("cluster_id", pa.string()),  # near-dup cluster (its smallest doc_id), if any
        ("language", pa.string()),
        ("language_score", pa.float32()),
        ("quality_score", pa.float32()),
        ("config_hash", pa.string()),
    ]
)


def lineage_row(doc: dict, fate: str, stage: str | None, reason: str | None, config_hash: str, **extra) -> dict:
    """One lineage row for a document (or a quarantined record) at the point its fate is decided."""
    row = {
        "doc_id": doc["doc_id"],
        "source": doc["source"],
        "uri": doc["uri"],
        "record_index": doc["record_index"],
        "category": doc.get("category"),
        "raw_bytes": doc.get("raw_bytes"),
        "text_bytes": doc.get("text_bytes"),
        "content_hash": doc.get("content_hash"),
        "fate": fate,
        "stage": stage,
        "reason": reason,
        "duplicate_of": None,
        "cluster_id": None,
        "language": doc.get("language"),
        "language_score": doc.get("language_score"),
        "quality_score": doc.get("quality_score"),
        "config_hash": config_hash,
    }
    row.update(extra)
    return row
