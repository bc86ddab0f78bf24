"""Curate: annotation, then selection, from raw sources to curated, deduplicated Parquet.

    annotate (annotate.py)  read -> validate -> normalize -> language ID -> Gopher statistics,
                            C4 lines -> quality score -> decontamination -> fingerprints -> PII
                            -> OUT/attributes/, annotate.json
    select (select.py)      attributes -> thresholds (attributes.py) -> exact + near dedup of
                            the survivors -> resolve (here) -> curated/<category>/, rejected/,
                            quarantine/, lineage/ -> curate.json (written last: the commit point)

Each step has its own settings fingerprint (curate_steps.py): changing only thresholds,
category rules or dedup resolution reruns selection on the stored attributes. Only the
small dedup fingerprints (ids, content hash, MinHash signature) are shuffled; the text
never goes through a shuffle. Once the duplicates are known, each batch's attributes are
read back once and written out. Memory per worker is one batch, whatever the corpus size.

The pipelines use only core Beam transforms (Create, ParDo, GroupByKey, Flatten), so they
run unchanged on the DirectRunner, Dask, Flink, Spark or Dataflow. This module holds what
selection resolves with (dedup verdicts, ResolveBatch) and curate.json's summary.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections import defaultdict

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from apache_beam.options.pipeline_options import PipelineOptions

from strata.config import BuildConfig
from strata.manifests.layout import CURATE_LINEAGE_GLOB, LINEAGE, QUARANTINE, REJECTED, attributes_part, batch_part, curated_folder
from strata.manifests.schemas import (
    CURATED_SCHEMA,
    FATE_DROPPED,
    FATE_DUPLICATE,
    FATE_KEPT,
    FATE_QUARANTINED,
    LINEAGE_SCHEMA,
    PII_COUNTS,
    QUARANTINE_SCHEMA,
    REJECTED_SCHEMA,
    STAGES,
)
from strata.pipeline.attributes import select_batch, selected_table
from strata.pipeline.dedup import ExactDuplicates, NearDuplicates
from strata.pipeline.paragraphs import remove_paragraphs
from strata.pipeline.read import InputFile
from strata.pipeline.schema import lineage_row
from strata.pipeline.write import read_table, write_parquet, write_table
from strata.storage import filesystem, join
from strata.version import __version__

log = logging.getLogger("strata.curate")

BATCH_DOCS = 4096
BATCH_BYTES = 32 * 2**20


def node_id(doc_id: str, batch: str) -> str:
    """Dedup works on `doc_id@batch`: the batch travels with the verdict, and since doc_ids
    have one length, the smallest node id is the smallest doc_id."""
    return f"{doc_id}@{batch}"


class Deduplicate(beam.PTransform):
    """Fingerprints of the selected documents -> (batch, (doc_id, kind, survivor, cluster,
    similarity)) verdicts: kind 'exact' names the survivor of the doc's identical-content
    group, 'near' its near-dup cluster (the cluster's smallest doc_id; representatives get one
    too) and, for a near duplicate, the representative it was verified against and their
    similarity. The fingerprints come as {"hashes": (node, content_hash), "bands": (band key,
    node) of the stored shared bands, "signatures": (node, MinHash bytes) of those nodes};
    `small_graph` as NearDuplicates has it."""

    def __init__(self, config: BuildConfig, small_graph: bool = False):
        super().__init__()
        self.config = config
        self.small_graph = small_graph

    def expand(self, fingerprints):
        verdicts = []
        if self.config.dedup.exact.enabled:
            verdicts.append(
                fingerprints["hashes"]
                | "ExactDuplicates" >> ExactDuplicates()
                | "AsExactVerdicts" >> beam.MapTuple(_exact_verdict)
            )
        if self.config.dedup.near.enabled:
            verdicts.append(
                fingerprints["signatures"]
                | "Signatures" >> beam.MapTuple(lambda node, sig: (node, np.frombuffer(sig, dtype=np.uint32)))
                | "NearDuplicates" >> NearDuplicates(self.config.dedup.near, fingerprints["bands"], self.small_graph)
                | "AsNearVerdicts" >> beam.MapTuple(_near_verdict)
            )
        if not verdicts:
            return fingerprints["hashes"] | "NoVerdicts" >> beam.FlatMap(lambda _: ())
        return verdicts | "AllVerdicts" >> beam.Flatten()


def _doc_id(node: str | None) -> str | None:
    return node and node.split("@")[0]


def _exact_verdict(node: str, survivor: str) -> tuple:
    doc_id, batch = node.split("@")
    return batch, (doc_id, "exact", _doc_id(survivor), None, 1.0)


def _near_verdict(node: str, verified: tuple) -> tuple:
    survivor, cluster, similarity = verified
    doc_id, batch = node.split("@")
    return batch, (doc_id, "near", _doc_id(survivor), _doc_id(cluster), similarity)


class ResolveBatch(beam.DoFn):
    """Reads a batch's attributes, selects its documents (attributes.py), applies their
    dedup verdicts and writes the batch's curated/<category>/, rejected/, quarantine/ and
    lineage/ files; emits (uri, rows).

    Fates are decided on the small columns; the text and raw columns stay in Arrow and
    are only sliced into the output files, never turned into Python strings."""

    def __init__(self, out: str, config: dict):
        self.out = out
        self._config_dict = config  # plain data: DoFns travel to workers on any runner

    def setup(self):
        config = BuildConfig.model_validate(self._config_dict)
        self.config_hash = config.config_hash
        self.write_rejected = config.output.write_rejected
        self.min_chars = config.dedup.paragraph.min_chars
        self.filters_for = functools.lru_cache(maxsize=None)(config.filters.for_category)

    def process(self, element):
        key, grouped = element
        verdicts: dict[str, dict] = defaultdict(dict)
        for doc_id, kind, *verdict in grouped["verdicts"]:
            verdicts[doc_id][kind] = verdict
        attributes = read_table(join(self.out, attributes_part(key)))
        docs, levels = select_batch(attributes, self.filters_for)
        table = selected_table(attributes, docs, levels)
        del attributes
        for doc in docs:
            if doc["fate"] is None:
                self.resolve(doc, verdicts.get(doc["doc_id"], {}))
        table = self.remove_boilerplate(table, docs, verdicts)
        for column in ("fate", "stage", "reason"):  # now decided for every document
            table = table.set_column(
                table.schema.get_field_index(column), column, pa.array([d[column] for d in docs], pa.string())
            )
        lineage = [
            lineage_row(d, d["fate"], d["stage"], d["reason"], self.config_hash, duplicate_of=d.get("duplicate_of"),
                        cluster_id=d.get("cluster_id"), similarity=d.get("similarity"))
            for d in docs
        ]
        yield (uri := join(self.out, batch_part(LINEAGE, key))), write_parquet(uri, lineage, LINEAGE_SCHEMA)
        fates = [d["fate"] for d in docs]
        targets = [(QUARANTINE, QUARANTINE_SCHEMA, [i for i, f in enumerate(fates) if f == FATE_QUARANTINED])]
        if self.write_rejected:
            rejected = [i for i, f in enumerate(fates) if f in (FATE_DROPPED, FATE_DUPLICATE)]
            targets.append((REJECTED, REJECTED_SCHEMA, rejected))
        for category in sorted({d["category"] for d in docs if d["fate"] == FATE_KEPT}):
            kept = [i for i, d in enumerate(docs) if d["fate"] == FATE_KEPT and d["category"] == category]
            targets.append((curated_folder(category), CURATED_SCHEMA, kept))
        for folder, schema, rows in targets:
            if rows:
                part = table.take(rows).select(schema.names).cast(schema)
                yield (uri := join(self.out, batch_part(folder, key))), write_table(uri, part)

    def remove_boilerplate(self, table: pa.Table, docs: list[dict], verdicts: dict) -> pa.Table:
        """Takes the boilerplate paragraphs out of the kept documents that hold them (only
        those texts become Python strings); a document left under min_chars is dropped."""
        changed = {}
        texts = table.column("text")
        for i, doc in enumerate(docs):
            verdict = verdicts.get(doc["doc_id"], {}).get("paragraphs")
            if doc["fate"] != FATE_KEPT or not verdict:
                continue
            boilerplate, _, _ = verdict
            text, removed = remove_paragraphs(texts[i].as_py(), boilerplate)
            doc["paragraphs_removed"] = removed
            if len(text.strip()) < self.min_chars:
                doc.update(fate=FATE_DROPPED, stage="paragraph_dedup", reason="paragraph_dedup:too_short")
            elif removed:
                changed[i] = text
                doc["text_bytes"] = len(text.encode("utf-8", "surrogatepass"))
        if not changed:
            return table
        mask = pa.array([i in changed for i in range(len(docs))])
        new_texts = pc.replace_with_mask(texts.combine_chunks(), mask, pa.array([changed[i] for i in sorted(changed)], pa.string()))
        return table.set_column(table.schema.get_field_index("text"), "text", new_texts)

    @staticmethod
    def resolve(doc: dict, verdict: dict) -> None:
        """Exact duplicates first; a near duplicate's survivor is never an exact duplicate
        (copies share their signature, so the smallest copy comes first in its cluster)."""
        near_survivor, cluster, near_similarity = verdict.get("near", (None, None, None))
        if "exact" in verdict:
            survivor, _, similarity = verdict["exact"]
            doc.update(fate=FATE_DUPLICATE, stage="exact_dedup", reason="exact_duplicate", duplicate_of=survivor,
                       similarity=similarity)
        elif near_survivor is not None:
            doc.update(fate=FATE_DUPLICATE, stage="near_dedup", reason="near_duplicate", duplicate_of=near_survivor,
                       similarity=near_similarity)
        else:
            doc.update(fate=FATE_KEPT)
        doc["cluster_id"] = cluster


def default_pipeline_options(beam_args: list[str], mode: str = "in_memory", workers: int = 1) -> PipelineOptions:
    """The DirectRunner in `mode` with `workers` (0: one per core) unless the user's args say
    otherwise. Curate's default is one process: each DirectRunner worker process costs
    ~250 MB before it holds any data (Beam's imports alone are 170 MB), and the runner's own
    process as much again, so the multi-process mode on 2 cores peaks near three times the
    memory of one process, for a bit under twice the speed. `-- --direct_running_mode=
    multi_processing --direct_num_workers=0` trades memory for that speed; its worker threads
    mode is not an option here (its shuffle coders race: "Unknown type tag" errors)."""
    args = list(beam_args)
    if not any(a.startswith("--runner") for a in args):
        args += ["--runner=DirectRunner"]
        chosen_mode = any(a.startswith("--direct_running_mode") for a in args)
        if not any(a.startswith("--direct_num_workers") for a in args):
            args += [f"--direct_num_workers={0 if chosen_mode else workers}"]  # a chosen mode: every core
        if not chosen_mode:
            args += [f"--direct_running_mode={mode}"]
    return PipelineOptions(args)


def input_records(files: list[InputFile]) -> list[dict]:
    """The inputs as curate.json and annotate.json record them (and compare them on a rerun)."""
    return [{"source": f.source, "uri": f.uri, "relpath": f.relpath, "size": f.size, "fingerprint": f.fingerprint}
            for f in files]


def read_lineage(out: str):
    """The curate lineage table (all of OUT/lineage/part-*.parquet), local or object store."""
    fs, pattern = filesystem(join(out, CURATE_LINEAGE_GLOB))
    return ds.dataset(fs.glob(pattern), format="parquet", filesystem=fs).to_table()


def stage_counters(lineage) -> dict:
    """Docs and bytes in/out of every stage, and drops per reason, from the lineage table."""
    fate = lineage.column("fate").to_numpy(zero_copy_only=False)
    stage = lineage.column("stage").to_numpy(zero_copy_only=False)
    reason = lineage.column("reason").to_numpy(zero_copy_only=False)
    raw_bytes = lineage.column("raw_bytes").fill_null(0).to_numpy()
    text_bytes = lineage.column("text_bytes").fill_null(0).to_numpy()
    alive = np.ones(len(fate), dtype=bool)
    counters = {}
    for name in STAGES:
        if name == "read":
            continue
        decided_here = alive & (stage == name)
        in_bytes = raw_bytes if name == "validate" else text_bytes
        reasons = defaultdict(int)
        for r in reason[decided_here]:
            reasons[str(r)] += 1
        counters[name] = {
            "docs_in": int(alive.sum()),
            "bytes_in": int(in_bytes[alive].sum()),
            "docs_out": int((alive & ~decided_here).sum()),
            "bytes_out": int(text_bytes[alive & ~decided_here].sum()),
            "dropped": dict(sorted(reasons.items())),
        }
        alive &= ~decided_here
    return counters


def contamination_counters(lineage) -> dict:
    """Per eval set and category: documents touched, removed (dropped) and characters removed."""
    rows = lineage.select(["contaminated_set", "category", "stage", "contaminated_chars"]).to_pylist()
    counters: dict = {}
    for row in rows:
        if row["contaminated_set"] is None:
            continue
        entry = counters.setdefault(row["contaminated_set"], {}).setdefault(
            row["category"], {"documents": 0, "removed": 0, "chars_removed": 0})
        entry["documents"] += 1
        entry["removed"] += row["stage"] == "decontaminate"
        entry["chars_removed"] += row["contaminated_chars"] or 0
    return {name: dict(sorted(by_category.items())) for name, by_category in sorted(counters.items())}


def pii_counters(lineage) -> dict:
    """PII redacted from kept documents, per kind: {documents, matches}."""
    kept = pc.equal(lineage.column("fate"), FATE_KEPT)
    counters = {}
    for column in PII_COUNTS:
        counts = pc.filter(lineage.column(column).fill_null(0), kept)
        counters[column.removeprefix("pii_")] = {
            "documents": int(pc.sum(pc.greater(counts, 0)).as_py() or 0),
            "matches": int(pc.sum(counts).as_py() or 0),
        }
    return counters


def summarize(config: BuildConfig, files: list[InputFile], out: str, seconds: float) -> dict:
    lineage = read_lineage(out)
    fate = lineage.column("fate").to_numpy(zero_copy_only=False)
    categories = lineage.column("category").to_numpy(zero_copy_only=False)
    text_bytes = lineage.column("text_bytes").fill_null(0).to_numpy()
    kept = fate == FATE_KEPT
    per_category = {}
    for category in sorted({c for c in categories[kept]}):
        mask = kept & (categories == category)
        per_category[category] = {
            "folder": curated_folder(category),
            "docs": int(mask.sum()),
            "bytes": int(text_bytes[mask].sum()),
        }
    return {
        "strata_version": __version__,
        "config_hash": config.config_hash,
        "config": config.to_dict(),
        "inputs": input_records(files),
        "records": int(len(fate)),
        "fates": {k: int((fate == k).sum()) for k in (FATE_KEPT, FATE_DROPPED, FATE_DUPLICATE, FATE_QUARANTINED)},
        "stages": stage_counters(lineage),
        "categories": per_category,
        "pii": pii_counters(lineage),
        "decontamination": contamination_counters(lineage),
        "paragraph_dedup": {
            "documents_shortened": int(pc.sum(pc.greater(lineage.column("paragraphs_removed").fill_null(0), 0)).as_py() or 0),
            "paragraphs_removed": int(pc.sum(lineage.column("paragraphs_removed")).as_py() or 0),
        },
        "seconds": round(seconds, 3),
    }
