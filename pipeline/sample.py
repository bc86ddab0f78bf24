"""`strata sample OUT --reason R | --category C | --kept`: a few documents that met a given
fate, shown by their first lines, so that an auditor can judge a filter by example.

Which documents: the build's lineage rows that match, sorted by doc_id, then a seeded
sample of `n` of them (the same seed gives the same documents). Their text is read from
the input itself, at the file and record index the lineage names, as it was before any
stage changed it (so a document C4 cut is shown whole); the input files and source
settings come from OUT/curate.json.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict

from strata.config import BuildConfig
from strata.manifests.layout import CURATE_RECORD
from strata.pipeline.curate import read_lineage
from strata.pipeline.decompress import ExpansionLimit
from strata.pipeline.read import InputFile, read_records
from strata.manifests.schemas import FATE_KEPT
from strata.pipeline.validate import validate_record
from strata.storage import join, open_file

SHOWN = ("doc_id", "source", "uri", "record_index", "category", "fate", "stage", "reason", "duplicate_of",
         "similarity", "language", "language_score")


def sample_documents(out: str, *, reason: str | None = None, category: str | None = None, kept: bool = False,
                     n: int = 5, seed: int = 0, lines: int = 5, line_chars: int = 200) -> dict:
    """{"matching": how many lineage rows match, "documents": [the sampled rows with the
    first `lines` lines of their text as read]}. Filters combine (reason and category)."""
    rows = [r for r in read_lineage(out).to_pylist() if _matches(r, reason, category, kept)]
    rows.sort(key=lambda r: r["doc_id"])
    chosen = sorted(random.Random(seed).sample(rows, min(n, len(rows))), key=lambda r: r["doc_id"])
    texts = _texts_as_read(out, chosen)
    documents = []
    for row in chosen:
        text = texts.get(row["doc_id"])
        head = None if text is None else [line[:line_chars] for line in text.split("\n")[:lines]]
        documents.append({**{k: row.get(k) for k in SHOWN}, "first_lines": head})
    return {"matching": len(rows), "documents": documents}


def _matches(row: dict, reason: str | None, category: str | None, kept: bool) -> bool:
    return ((not reason or row["reason"] == reason) and (not category or row["category"] == category)
            and (not kept or row["fate"] == FATE_KEPT))


def _texts_as_read(out: str, rows: list[dict]) -> dict[str, str]:
    """doc_id -> text as read from the input, for the rows whose record is still there."""
    with open_file(join(out, CURATE_RECORD)) as f:
        summary = json.loads(f.read())
    config = BuildConfig.model_validate(summary["config"])
    sources = {s.name: s for s in config.sources}
    inputs = {i["uri"]: i for i in summary["inputs"]}
    wanted: dict[str, dict[int, str]] = defaultdict(dict)
    for row in rows:
        wanted[row["uri"]][row["record_index"]] = row["doc_id"]
    texts = {}
    for uri, indices in wanted.items():
        if uri not in inputs:
            continue
        source = sources[inputs[uri]["source"]]
        f = InputFile(0, source.name, source.format, uri, inputs[uri]["relpath"], inputs[uri]["size"],
                      inputs[uri]["fingerprint"], source.text_field, source.category,
                      tuple(source.category_path) if source.category_path else None)
        last = max(indices)
        expansion = ExpansionLimit(config.validate_.max_expansion_ratio, config.validate_.max_decompressed_bytes)
        for record in read_records(f, config.validate_.max_text_bytes * 2 + 1024, expansion):
            if record["record_index"] in indices:
                doc = validate_record(record, source.format, source.text_field, f.category_path,
                                      config.validate_.max_text_bytes, config.validate_.quarantine_raw_bytes)
                texts[indices[record["record_index"]]] = doc["text"] if doc["text"] is not None else doc.get("detail")
            if record["record_index"] >= last:
                break
    return texts


def format_sample(result: dict) -> str:
    lines = [f"{len(result['documents'])} of {result['matching']} matching documents"]
    for doc in result["documents"]:
        fate = doc["fate"] if doc["fate"] == FATE_KEPT else f"{doc['fate']} at {doc['stage']}: {doc['reason']}"
        if doc["duplicate_of"]:
            fate += f" (of {doc['duplicate_of']}, similarity {doc['similarity']:.2f})"
        lines += ["", f"{doc['doc_id']}  {doc['category']}  {doc['language'] or '-'}  {fate}",
                  f"  {doc['uri']} record {doc['record_index']}"]
        lines += [f"  | {line}" for line in (doc["first_lines"] or ["(the input no longer holds this record)"])]
    return "\n".join(lines)
