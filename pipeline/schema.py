"""The document record that flows through the curate stage's Beam pipelines, its schema
and its lineage row (the schemas of what curate writes: manifests/schemas.py).

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

from strata.manifests.schemas import CONTAMINATION, PII_COUNTS, RECORD, SCORES, curate_schema


def make_doc_id(source: str, relpath: str, record_index: int) -> str:
    """128-bit hex id, stable across reruns of the same input."""
    key = f"{source}\x1f{relpath}\x1f{record_index}".encode()
    return hashlib.blake2b(key, digest_size=16).hexdigest()


# A document after the per-document stages, as selection hands it to the dedup resolution;
# attributes.py adds the attribute columns annotation stores beside these.
DOCUMENT_SCHEMA = curate_schema(
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
