"""`strata trace`: lineage look-ups in both directions.

`trace_document(OUT, DOC_ID, RUN=None)` returns the document's lineage row (doc_id, source,
uri, record_index, category, fate, stage, reason, duplicate_of, cluster_id, language,
language_score, quality_score, raw_bytes, text_bytes, content_hash) and:

    placements   [{split, shard, block_key, token_start, token_end}]: its pieces in the shards
    tokens       tokens placed (EOS included)
    run          RUN or null
    trained      [{step, rank, sample_id, block_key, token_start, token_end}]: every piece of
                 a window that trained on part of it (the range is the overlap)
    steps        the distinct steps of `trained`

`trace_step(RUN, STEP, OUT=None)` returns {run, build, step, windows, tokens, documents}:
documents are [{doc_id, category, source, uri, record_index, tokens, sample_ids}] in the
order the step's windows meet them; `tokens` counts this step's tokens of the document.

Consumed pieces and placements meet on the block key, where their token ranges overlap.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from strata.manifests.layout import CONSUMED_GLOB, CURATE_LINEAGE_GLOB, PLACEMENTS_GLOB
from strata.manifests.lineage import look_up, read_run
from strata.manifests.manifest import ManifestError
from strata.manifests.tables import count, format_table
from strata.manifests.schemas import CONSUMED_SCHEMA, LINEAGE_SCHEMA, PLACEMENTS_SCHEMA

PLACEMENT_COLUMNS = PLACEMENTS_SCHEMA.names
CONSUMED_COLUMNS = [name for name in CONSUMED_SCHEMA.names if name != "shard"]  # the placements name the shard
SHOWN_PIECES = 20


def trace_document(out: str, doc_id: str, run: str | None = None) -> dict:
    rows = look_up(out, CURATE_LINEAGE_GLOB, "doc_id", [doc_id], [n for n in LINEAGE_SCHEMA.names if n != "config_hash"])
    if not rows.num_rows:
        raise ManifestError(f"{doc_id}: no such document in {out}")
    record = rows.slice(0, 1).to_pylist()[0]
    placements = look_up(out, PLACEMENTS_GLOB, "doc_id", [doc_id], PLACEMENT_COLUMNS)
    placements = placements.sort_by([("split", "ascending"), ("shard", "ascending"), ("block_key", "ascending")])
    trained = _trained(run, placements) if run is not None and placements.num_rows else []
    return {
        **record,
        "placements": placements.select(PLACEMENT_COLUMNS[2:]).to_pylist(),
        "tokens": pc.sum(pc.subtract(placements.column("token_end"), placements.column("token_start"))).as_py() or 0,
        "run": run,
        "trained": trained,
        "steps": sorted({piece["step"] for piece in trained}),
    }


def _trained(run: str, placements: pa.Table) -> list[dict]:
    """The pieces of RUN's windows that overlap the placements, by step, rank and sample,
    then block (a document's blocks sort in its order)."""
    consumed = look_up(run, CONSUMED_GLOB, "block_key", _values(placements, "block_key"), CONSUMED_COLUMNS)
    order = [(column, "ascending") for column in ("step", "rank", "sample_id", "block_key", "token_start")]
    return overlaps(consumed, placements).sort_by(order).select(CONSUMED_COLUMNS).to_pylist()


def trace_step(run: str, step: int, out: str | None = None) -> dict:
    build = out or read_run(run)["data"]
    consumed = look_up(run, CONSUMED_GLOB, "step", [step], CONSUMED_COLUMNS)
    if not consumed.num_rows:
        raise ManifestError(f"{run}: step {step} is not in its consumed lineage")
    # A rank's rows are its windows' pieces in order: number them to keep that order.
    consumed = consumed.append_column("piece", pa.array(np.arange(consumed.num_rows)))
    placements = look_up(build, PLACEMENTS_GLOB, "block_key", _values(consumed, "block_key"), PLACEMENT_COLUMNS)
    pieces = overlaps(consumed, placements).sort_by([("piece", "ascending"), ("token_start", "ascending")])
    documents = _documents(pieces)
    doc_ids = [d["doc_id"] for d in documents]
    sources = look_up(build, CURATE_LINEAGE_GLOB, "doc_id", doc_ids, ["doc_id", "source", "uri", "record_index"])
    source_of = {row["doc_id"]: row for row in sources.to_pylist()}
    return {
        "run": run,
        "build": build,
        "step": step,
        "windows": pc.count_distinct(consumed.column("sample_id")).as_py(),
        "tokens": pc.sum(pc.subtract(consumed.column("token_end"), consumed.column("token_start"))).as_py(),
        "documents": [{**d, **source_of.get(d["doc_id"], {})} for d in documents],
    }


def overlaps(consumed: pa.Table, placements: pa.Table) -> pa.Table:
    """Consumed pieces joined with the document pieces of the same block whose token ranges
    overlap theirs: the consumed columns (token range narrowed to the overlap) and the
    placement's doc_id and category."""
    documents = placements.select(["block_key", "doc_id", "category", "token_start", "token_end"]).rename_columns(
        ["block_key", "doc_id", "category", "doc_start", "doc_end"]
    )
    joined = consumed.join(documents, "block_key")
    joined = joined.filter(
        pc.and_(pc.less(joined.column("token_start"), joined.column("doc_end")),
                pc.greater(joined.column("token_end"), joined.column("doc_start")))
    )
    start = pc.max_element_wise(joined.column("token_start"), joined.column("doc_start"))
    end = pc.min_element_wise(joined.column("token_end"), joined.column("doc_end"))
    joined = joined.set_column(joined.schema.get_field_index("token_start"), "token_start", start)
    return joined.set_column(joined.schema.get_field_index("token_end"), "token_end", end).drop_columns(
        ["doc_start", "doc_end"]
    )


def _documents(pieces: pa.Table) -> list[dict]:
    """Per document of the pieces (in order of first appearance): its tokens and windows."""
    found: dict[str, dict] = {}
    columns = [pieces.column(n).to_pylist() for n in ("doc_id", "category", "sample_id", "token_start", "token_end")]
    for doc_id, category, sample_id, start, end in zip(*columns):
        entry = found.setdefault(doc_id, {"doc_id": doc_id, "category": category, "tokens": 0, "sample_ids": []})
        entry["tokens"] += end - start
        if sample_id not in entry["sample_ids"]:
            entry["sample_ids"].append(sample_id)
    return list(found.values())


def _values(table: pa.Table, column: str) -> list:
    return pc.unique(table.column(column)).to_pylist()


def format_document_trace(trace: dict) -> str:
    lines = [
        f"document {trace['doc_id']}",
        f"  source     {trace['source']}: {trace['uri']} record {trace['record_index']}",
        f"  category   {trace['category']}  language {trace['language']}"
        + (f" ({trace['language_score']:.2f})" if trace["language_score"] is not None else "")
        + f"  text {trace['text_bytes']} bytes",
        f"  fate       {trace['fate']}" + (f" at {trace['stage']}: {trace['reason']}" if trace["stage"] else ""),
    ]
    if trace["duplicate_of"]:
        lines.append(f"  survivor   {trace['duplicate_of']}  (strata trace OUT {trace['duplicate_of']})")
    for i, p in enumerate(trace["placements"]):
        lines.append(
            f"  {'placed' if i == 0 else '':<10} {p['split']} {p['shard']} block {p['block_key']} "
            f"tokens {p['token_start']}-{p['token_end']}"
        )
    if trace["run"] is not None:
        trained = trace["trained"]
        lines.append(
            f"  trained    in run {trace['run']}: {len(trace['steps'])} steps, {len(trained)} pieces"
            + (f" (steps {', '.join(map(str, trace['steps'][:SHOWN_PIECES]))}"
               + (", ..." if len(trace["steps"]) > SHOWN_PIECES else "") + ")" if trained else "")
        )
        if trained:
            rows = [[p["step"], p["rank"], p["sample_id"], p["block_key"], f"{p['token_start']}-{p['token_end']}"]
                    for p in trained[:SHOWN_PIECES]]
            table = format_table(["step", "rank", "sample", "block", "tokens"], rows)
            lines += ["    " + line for line in table.splitlines()]
            if len(trained) > SHOWN_PIECES:
                lines.append(f"    ... {len(trained) - SHOWN_PIECES} more (--json lists them all)")
    return "\n".join(lines)


def format_step_trace(trace: dict) -> str:
    documents = trace["documents"]
    header = (
        f"step {trace['step']} of run {trace['run']} (build {trace['build']}): {count(trace['windows'])} windows, "
        f"{count(trace['tokens'])} tokens from {count(len(documents))} documents"
    )
    rows = [
        [d["doc_id"], d["category"], d.get("source"), d.get("uri"), d.get("record_index"), count(d["tokens"]),
         len(d["sample_ids"])]
        for d in documents
    ]
    headers = ["doc_id", "category", "source", "uri", "record", "tokens", "windows"]
    return header + "\n" + format_table(headers, rows, left=4)
