"""Attributes: what annotation found out about each document, and selection from them.

Annotation (pipeline/annotate.py) computes every per-document score once, whatever the
thresholds: language and its score, Gopher statistics, C4's verdict and cleaned lines,
quality score, evaluation-set matches, PII counts, content hash and MinHash signature.
They are kept beside the text in OUT/attributes/part-<batch>.parquet. Selection replays
the curate stages on those columns with the thresholds of the config (`select_document`)
and decides exactly what a run that computed and filtered stage by stage decides: the same
reason wins, a dropped document keeps the text it had at that stage, and the scores of
stages it never reached stay empty in its lineage.

A document's text at three levels, each stored only where it differs from the one before:

    text        as read (after normalization): what language ID, Gopher and dedup see
    text_lines  after C4's line rules: what the quality model and decontamination see
    text_final  after decontamination and PII redaction: what a kept document holds
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from strata.config import FilterSet
from strata.pipeline import langid, quality
from strata.pipeline.gopher_stats import QualityStats, quality_decision, repetition_decision
from strata.manifests.schemas import CONTAMINATION, FATE_DROPPED, PII_COUNTS
from strata.pipeline.schema import DOCUMENT_SCHEMA

READ, LINES, FINAL = "read", "lines", "final"

_EXTRA = [
    ("text_lines", pa.string()),
    ("text_final", pa.string()),
    ("bytes_lines", pa.int64()),
    ("bytes_final", pa.int64()),
    *[(f"gq_{name}", pa.int64()) for name in QualityStats.__dataclass_fields__],
    ("gopher_repetition", pa.map_(pa.string(), pa.float64())),
    ("c4_reason", pa.string()),
    ("decontaminate_drop", pa.bool_()),
    ("minhash", pa.binary()),
]
# Scores are decided on as computed (float64); outputs store them as float32.
_EXACT = {"language_score": pa.float64(), "quality_score": pa.float64()}
ATTRIBUTES_SCHEMA = pa.schema(
    [pa.field(f.name, _EXACT.get(f.name, f.type)) for f in DOCUMENT_SCHEMA] + [pa.field(n, t) for n, t in _EXTRA]
)
TEXT_COLUMNS = ("text", "text_lines", "text_final", "raw")
SMALL_COLUMNS = tuple(n for n in ATTRIBUTES_SCHEMA.names if n not in (*TEXT_COLUMNS, "minhash"))

# The attributes a stage computed, emptied for a document dropped before that stage.
_LATER = {
    "language": ("quality_score", *CONTAMINATION, "content_hash", *PII_COUNTS),
    "filter": ("quality_score", *CONTAMINATION, "content_hash", *PII_COUNTS),
    "quality": (*CONTAMINATION, "content_hash", *PII_COUNTS),
    "decontaminate": ("content_hash", *PII_COUNTS),
}
_LEVEL_BYTES = {READ: "text_bytes", LINES: "bytes_lines", FINAL: "bytes_final"}


def attribute_row(doc: dict) -> dict:
    return {name: doc.get(name) for name in ATTRIBUTES_SCHEMA.names}


def heuristic_reason(doc: dict, filters: FilterSet) -> str | None:
    """Gopher quality, Gopher repetition, then C4's verdict: the first reason wins."""
    language = doc["language"]
    repetition = dict(doc["gopher_repetition"] or ())
    return (
        quality_decision(QualityStats.from_row(doc), filters.gopher_quality, language)
        or repetition_decision(repetition, filters.gopher_repetition, language)
        or doc["c4_reason"]
    )


def select_document(doc: dict, filters: FilterSet) -> str:
    """Decides a live document from its attributes, in curate's stage order: language,
    filter, quality, decontaminate. Sets fate, stage, reason and text_bytes of a dropped
    one; returns the level of text (READ, LINES or FINAL) the document holds."""
    stage, reason, level = None, None, FINAL
    if reason := langid.language_decision(doc["language"], doc["language_score"], filters.language):
        stage, level = "language", READ
    elif reason := heuristic_reason(doc, filters):
        stage, level = "filter", READ
    elif filters.quality.enabled and (reason := quality.quality_decision(doc["quality_score"], filters.quality)):
        stage, level = "quality", LINES
    elif doc["decontaminate_drop"]:
        stage, reason, level = "decontaminate", f"contaminated:{doc['contaminated_set']}", LINES
    if stage:
        doc.update(fate=FATE_DROPPED, stage=stage, reason=reason)
        doc.update(dict.fromkeys(_LATER[stage]))
    doc["text_bytes"] = doc[_LEVEL_BYTES[level]]
    return level


def select_batch(table: pa.Table, filters_for) -> tuple[list[dict], list[str]]:
    """Every document of an attributes table (its small columns) with its fate decided up
    to dedup, and its text level; `filters_for(category)` gives a category's FilterSet."""
    docs = table.select(SMALL_COLUMNS).to_pylist()
    levels = [select_document(d, filters_for(d["category"])) if d["fate"] is None else READ for d in docs]
    return docs, levels


def texts_at(table: pa.Table, levels: list[str]) -> pa.ChunkedArray:
    """Each row's text at its level."""
    read = table.column("text")
    lines = pc.coalesce(table.column("text_lines"), read)
    final = pc.coalesce(table.column("text_final"), lines)
    levels = pa.array(levels, pa.string())
    return pc.if_else(pc.equal(levels, FINAL), final, pc.if_else(pc.equal(levels, LINES), lines, read))


def selected_table(table: pa.Table, docs: list[dict], levels: list[str]) -> pa.Table:
    """The batch as the dedup resolution reads it: the selected documents (`docs`), each with
    its text at its level, and the quarantined records' raw bytes."""
    small = pa.Table.from_pylist(docs, schema=pa.schema([ATTRIBUTES_SCHEMA.field(n) for n in SMALL_COLUMNS]))
    return small.append_column("text", texts_at(table, levels)).append_column("raw", table.column("raw"))
