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
STAGES = ("read", "validate", "normalize", "language", "filter", "quality", "decontaminate", "exact_dedup", "near_dedup",
          "paragraph_dedup")

FATE_KEPT = "kept"
FATE_QUARANTINED = "quarantined"
FATE_DROPPED = "dropped"
FATE_DUPLICATE = "duplicate"


def make_doc_id(source: str, relpath: str, record_index: int) -> str:
    """128-bit hex id, stable across reruns of the same input."""
    key = f"{source}\x1f{relpath}\x1f{record_index}".encode()
    return hashlib.blake2b(key, digest_size=16).hexdigest()


# Every column any output has, with its type; each output's schema is a selection.
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


def _schema(*names: str) -> pa.Schema:
    return pa.schema([(name, COLUMNS[name]) for name in names])


RECORD = ("doc_id", "source", "uri", "record_index")
SCORES = ("language", "language_score", "quality_score")
PII_COUNTS = ("pii_email", "pii_ip", "pii_phone")
CONTAMINATION = ("contaminated_set", "contaminated_ngrams", "contaminated_chars")

CURATED_SCHEMA = _schema("doc_id", "text", "category", "source", "uri", "record_index", "content_hash", *SCORES)
REJECTED_SCHEMA = _schema("doc_id", "text", "category", "source", "uri", "record_index", "stage", "reason")
QUARANTINE_SCHEMA = _schema(*RECORD, "reason", "detail", "raw", "raw_bytes")
LINEAGE_SCHEMA = _schema(
    *RECORD, "category", "raw_bytes", "text_bytes", "content_hash", "fate", "stage", "reason",
    "duplicate_of", "cluster_id", "similarity", "paragraphs_removed", *SCORES, *PII_COUNTS, *CONTAMINATION,
    "config_hash",
)
# A document after the per-document stages, as selection hands it to the dedup resolution;
# attributes.py adds the attribute columns annotation stores beside these.
SPOOL_SCHEMA = _schema(
    *RECORD, "category", "raw_bytes", "text", "text_bytes", "fate", "stage", "reason", "detail", "raw",
    "content_hash", *SCORES, *PII_COUNTS, *CONTAMINATION,
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
        "similarity": None,
        "paragraphs_removed": doc.get("paragraphs_removed"),
        "language": doc.get("language"),
        "language_score": doc.get("language_score"),
        "quality_score": doc.get("quality_score"),
        **{name: doc.get(name) for name in (*PII_COUNTS, *CONTAMINATION)},
        "config_hash": config_hash,
    }
    row.update(extra)
    return row
