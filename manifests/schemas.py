"""The Arrow schemas of the Parquet files a build and a run write, and the values their
fate and stage columns take. Writers and readers use these same definitions.

    curated/<folder>/*.parquet   CURATED_SCHEMA     kept documents
    rejected/*.parquet           REJECTED_SCHEMA    dropped and duplicate documents
    quarantine/*.parquet         QUARANTINE_SCHEMA  malformed records, their bytes capped
    lineage/part-*.parquet       LINEAGE_SCHEMA     curate lineage: one row per input record
    lineage/shards-*.parquet     PLACEMENTS_SCHEMA  each piece of a kept document -> shard, block, tokens
    RUN/consumed/part-r*.parquet CONSUMED_SCHEMA    each piece of every window a step trained on
"""

from __future__ import annotations

import pyarrow as pa

# Stages in pipeline order; a dropped record's lineage row names one of them.
STAGES = ("read", "validate", "normalize", "language", "filter", "quality", "decontaminate", "exact_dedup", "near_dedup",
          "paragraph_dedup")

FATE_KEPT = "kept"
FATE_QUARANTINED = "quarantined"
FATE_DROPPED = "dropped"
FATE_DUPLICATE = "duplicate"

# Every column a curate output has, with its type; each output's schema is a selection.
COLUMNS = {
    "doc_id": pa.string(),
    "text": pa.string(),
    "category": pa.string(),
    "source": pa.string(),
    "uri": pa.string(),
    "record_index": pa.int64(),
    "raw_bytes": pa.int64(),  # the record's size as read
    "text_bytes": pa.int64(),  # UTF-8 bytes of the text when its fate was decided
    "content_hash": pa.string(),
    "fate": pa.string(),  # kept | quarantined | dropped | duplicate
    "stage": pa.string(),  # the stage that decided a non-kept fate
    "reason": pa.string(),
    "detail": pa.string(),  # what exactly was wrong with a quarantined record
    "raw": pa.binary(),  # a quarantined record's bytes, capped at validate.quarantine_raw_bytes
    "duplicate_of": pa.string(),  # the surviving doc_id of its duplicate group
    "cluster_id": pa.string(),  # near-dup cluster (its smallest doc_id), if any
    "similarity": pa.float32(),  # a duplicate's estimated Jaccard with duplicate_of (1 for an exact copy)
    "paragraphs_removed": pa.int32(),  # boilerplate paragraphs paragraph dedup took out of the text
    "language": pa.string(),
    "language_score": pa.float32(),
    "quality_score": pa.float32(),
    "config_hash": pa.string(),
    # evaluation-set text found in the document: the set with most matches, matched n-grams,
    # characters removed (all of them when the document was dropped)
    "contaminated_set": pa.string(),
    "contaminated_ngrams": pa.int32(),
    "contaminated_chars": pa.int64(),
    # PII redacted from a kept document's text: matches per kind (pipeline/pii.py)
    "pii_email": pa.int32(),
    "pii_ip": pa.int32(),
    "pii_phone": pa.int32(),
}


def curate_schema(*names: str) -> pa.Schema:
    """The schema of these curate columns, in this order."""
    return pa.schema([(name, COLUMNS[name]) for name in names])


RECORD = ("doc_id", "source", "uri", "record_index")
SCORES = ("language", "language_score", "quality_score")
PII_COUNTS = ("pii_email", "pii_ip", "pii_phone")
CONTAMINATION = ("contaminated_set", "contaminated_ngrams", "contaminated_chars")

CURATED_SCHEMA = curate_schema("doc_id", "text", "category", "source", "uri", "record_index", "content_hash", *SCORES)
REJECTED_SCHEMA = curate_schema("doc_id", "text", "category", "source", "uri", "record_index", "stage", "reason")
QUARANTINE_SCHEMA = curate_schema(*RECORD, "reason", "detail", "raw", "raw_bytes")
LINEAGE_SCHEMA = curate_schema(
    *RECORD, "category", "raw_bytes", "text_bytes", "content_hash", "fate", "stage", "reason",
    "duplicate_of", "cluster_id", "similarity", "paragraphs_removed", *SCORES, *PII_COUNTS, *CONTAMINATION,
    "config_hash",
)

PLACEMENTS_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("category", pa.string()),
        ("split", pa.string()),
        ("shard", pa.string()),  # the tar's path relative to OUT
        ("block_key", pa.string()),
        ("token_start", pa.int64()),  # within the block's tokens
        ("token_end", pa.int64()),  # exclusive; a document's last piece includes its EOS
    ]
)

CONSUMED_SCHEMA = pa.schema(
    [
        ("step", pa.int64()),
        ("rank", pa.int32()),
        ("sample_id", pa.int64()),
        ("block_key", pa.string()),
        ("shard", pa.string()),  # relative to the build
        ("token_start", pa.int64()),  # within the block's tokens
        ("token_end", pa.int64()),  # exclusive
    ]
)
