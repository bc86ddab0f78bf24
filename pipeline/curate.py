"""Curate: the Beam pipeline from raw sources to curated, deduplicated Parquet.

    read -> validate -> normalize -> heuristic filters -> language ID -> quality
         -> fingerprint -> spool -> exact + near dedup -> resolve
         -> curated/<category>/, rejected/, quarantine/, lineage/
         -> curate.json (written last: the stage's commit point)

Documents travel in batches from one input file. After the per-document stages each
batch is spooled to OUT/_spool/ and only its small dedup fingerprints (ids, content
hash, MinHash signature) are shuffled; the text never goes through a shuffle. Once the
duplicates are known, each batch is read back once and written out. Memory per worker is
one batch, whatever the corpus size, and the runner's shuffles carry a few hundred bytes
per document.

The pipeline uses only core Beam transforms (Create, ParDo, GroupByKey, Flatten), so it
runs unchanged on the DirectRunner, Dask, Flink, Spark or Dataflow.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections import defaultdict

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
from apache_beam.options.pipeline_options import PipelineOptions

from strata.config import BuildConfig
from strata.pipeline.dedup import ExactDuplicates, NearDuplicates
from strata.pipeline.decompress import ExpansionLimit
from strata.pipeline.read import InputFile, ReadSources, discover_inputs
from strata.pipeline.schema import (
    CURATED_SCHEMA,
    FATE_DROPPED,
    FATE_DUPLICATE,
    FATE_KEPT,
    FATE_QUARANTINED,
    LINEAGE_SCHEMA,
    QUARANTINE_SCHEMA,
    REJECTED_SCHEMA,
    SPOOL_SCHEMA,
    STAGES,
    lineage_row,
)
from strata.pipeline.stages import (
    Fingerprint,
    HeuristicFilters,
    LanguageFilter,
    Normalize,
    Progress,
    QualityFilter,
    Validate,
)
from strata.pipeline.write import read_parquet, write_parquet, write_table
from strata.storage import filesystem, join, remove, write_bytes_atomic
from strata.version import __version__

log = logging.getLogger("strata.curate")

CURATE_SUMMARY = "curate.json"
CURATE_OUTPUTS = ("curated", "rejected", "quarantine", "lineage", "_spool")
BATCH_DOCS = 4096
BATCH_BYTES = 32 * 2**20


def category_folder(category: str) -> str:
    """A category name as a path segment. A name that needs changing gets a short hash of
    itself, so two names never share a folder: 'Gutenberg (PG-19)' -> 'Gutenberg_PG-19-4c1a5e'."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", category).strip("_")
    if slug == category and slug.strip("."):
        return slug
    return f"{slug}-{hashlib.blake2b(category.encode(), digest_size=3).hexdigest()}"


def node_id(doc_id: str, batch: str) -> str:
    """Dedup works on `doc_id@batch`: the batch travels with the verdict, and since doc_ids
    have one length, the smallest node id is the smallest doc_id."""
    return f"{doc_id}@{batch}"


class SpoolBatch(beam.DoFn):
    """Writes a batch to OUT/_spool/<batch>.parquet and emits ('batch', key) plus one
    ('fingerprint', (node_id, content_hash, signature)) per live document."""

    def __init__(self, out: str):
        self.out = out

    def process(self, batch):
        key = batch["batch"]
        write_parquet(join(self.out, "_spool", f"{key}.parquet"), [_spool_row(d) for d in batch["docs"]], SPOOL_SCHEMA)
        yield "batch", key
        for doc in batch["docs"]:
            if doc["fate"] is None:
                yield "fingerprint", (node_id(doc["doc_id"], key), doc["content_hash"], doc.get("minhash"))


def _spool_row(doc: dict) -> dict:
    return {name: doc.get(name) for name in SPOOL_SCHEMA.names}


class Deduplicate(beam.PTransform):
    """Fingerprints of live documents -> (batch, (doc_id, kind, other_doc_id)) verdicts:
    kind 'exact' names the survivor of the doc's identical-content group, 'near' its
    near-dup cluster (the cluster's smallest doc_id; the survivor gets one too)."""

    def __init__(self, config: BuildConfig):
        super().__init__()
        self.config = config

    def expand(self, fingerprints):
        verdicts = []
        if self.config.dedup.exact.enabled:
            verdicts.append(
                fingerprints
                | "ContentHashes" >> beam.MapTuple(lambda node, content_hash, _: (node, content_hash))
                | "ExactDuplicates" >> ExactDuplicates()
                | "AsExactVerdicts" >> beam.MapTuple(_verdict, "exact")
            )
        if self.config.dedup.near.enabled:
            verdicts.append(
                fingerprints
                | "Signatures" >> beam.MapTuple(lambda node, _, sig: (node, np.frombuffer(sig, dtype=np.uint32)))
                | "NearDuplicates" >> NearDuplicates(self.config.dedup.near)
                | "AsNearVerdicts" >> beam.MapTuple(_verdict, "near")
            )
        if not verdicts:
            return fingerprints | "NoVerdicts" >> beam.FlatMap(lambda _: ())
        return verdicts | "AllVerdicts" >> beam.Flatten()


def _verdict(node: str, other: str, kind: str = "") -> tuple:
    doc_id, batch = node.split("@")
    return batch, (doc_id, kind, other.split("@")[0])


class ResolveBatch(beam.DoFn):
    """Reads a spooled batch back, applies its dedup verdicts and writes the batch's
    curated/<category>/, rejected/, quarantine/ and lineage/ files; emits (uri, rows).

    Fates are decided on the small columns; the text and raw columns stay in Arrow and
    are only sliced into the output files, never turned into Python strings."""

    def __init__(self, out: str, config_hash: str, write_rejected: bool):
        self.out = out
        self.config_hash = config_hash
        self.write_rejected = write_rejected

    def process(self, element):
        key, grouped = element
        verdicts: dict[str, dict] = defaultdict(dict)
        for doc_id, kind, other in grouped["verdicts"]:
            verdicts[doc_id][kind] = other
        spool = join(self.out, "_spool", f"{key}.parquet")
        table = read_parquet(spool)
        docs = table.drop_columns(["text", "raw"]).to_pylist()
        for doc in docs:
            if doc["fate"] is None:
                self.resolve(doc, verdicts.get(doc["doc_id"], {}))
        for column in ("fate", "stage", "reason"):  # now decided for every document
            table = table.set_column(
                table.schema.get_field_index(column), column, pa.array([d[column] for d in docs], pa.string())
            )
        name = f"part-{key}.parquet"
        lineage = [
            lineage_row(d, d["fate"], d["stage"], d["reason"], self.config_hash,
                        duplicate_of=d.get("duplicate_of"), cluster_id=d.get("cluster_id"))
            for d in docs
        ]
        yield (uri := join(self.out, "lineage", name)), write_parquet(uri, lineage, LINEAGE_SCHEMA)
        fates = [d["fate"] for d in docs]
        targets = [("quarantine", QUARANTINE_SCHEMA, [i for i, f in enumerate(fates) if f == FATE_QUARANTINED])]
        if self.write_rejected:
            rejected = [i for i, f in enumerate(fates) if f in (FATE_DROPPED, FATE_DUPLICATE)]
            targets.append(("rejected", REJECTED_SCHEMA, rejected))
        for category in sorted({d["category"] for d in docs if d["fate"] == FATE_KEPT}):
            kept = [i for i, d in enumerate(docs) if d["fate"] == FATE_KEPT and d["category"] == category]
            targets.append((f"curated/{category_folder(category)}", CURATED_SCHEMA, kept))
        for folder, schema, rows in targets:
            if rows:
                part = table.take(rows).select(schema.names).cast(schema)
                yield (uri := join(self.out, folder, name)), write_table(uri, part)
        remove(spool)

    @staticmethod
    def resolve(doc: dict, verdict: dict) -> None:
        cluster = verdict.get("near")
        if "exact" in verdict:
            doc.update(fate=FATE_DUPLICATE, stage="exact_dedup", reason="exact_duplicate", duplicate_of=verdict["exact"])
        elif cluster is not None and cluster != doc["doc_id"]:
            doc.update(fate=FATE_DUPLICATE, stage="near_dedup", reason="near_duplicate", duplicate_of=cluster)
        else:
            doc.update(fate=FATE_KEPT)
        doc["cluster_id"] = cluster


def _only(kind: str):
    return beam.FlatMap(lambda item: [item[1]] if item[0] == kind else [])


class Curate(beam.PTransform):
    """The whole curate stage; outputs (uri, rows) of every file it wrote."""

    def __init__(self, config: BuildConfig, files: list[InputFile], out: str):
        super().__init__()
        self.config = config
        self.files = files
        self.out = out

    def expand(self, pbegin):
        config, out = self.config, self.out
        cfg = config.to_dict()
        expansion = ExpansionLimit(config.validate_.max_expansion_ratio, config.validate_.max_decompressed_bytes)
        spooled = (
            pbegin
            | "Read" >> ReadSources(self.files, config.validate_.max_text_bytes * 2 + 1024, BATCH_DOCS, BATCH_BYTES,
                                    expansion)
            | "Validate" >> beam.ParDo(Validate(cfg))
            | "Normalize" >> beam.ParDo(Normalize(cfg))
            | "HeuristicFilters" >> beam.ParDo(HeuristicFilters(cfg))
            | "LanguageID" >> beam.ParDo(LanguageFilter(cfg))
            | "QualityClassifier" >> beam.ParDo(QualityFilter(cfg))
            | "Fingerprint" >> beam.ParDo(Fingerprint(cfg))
            | "Progress" >> beam.ParDo(Progress("curate"))
            | "Spool" >> beam.ParDo(SpoolBatch(out))
        )
        batches = spooled | "Batches" >> _only("batch") | "KeyBatches" >> beam.Map(lambda key: (key, None))
        verdicts = spooled | "Fingerprints" >> _only("fingerprint") | "Deduplicate" >> Deduplicate(config)
        # The final transform depends on every write, so that runners which compute only
        # the pipeline's last node (Dask) still run all of it.
        return (
            {"batch": batches, "verdicts": verdicts}
            | "JoinVerdicts" >> beam.CoGroupByKey()
            | "ResolveBatches" >> beam.ParDo(ResolveBatch(out, config.config_hash, config.output.write_rejected))
        )


# --------------------------------------------------------------------------- running


def default_pipeline_options(beam_args: list[str]) -> PipelineOptions:
    """DirectRunner in multi-process mode on all cores unless the user's args say otherwise."""
    args = list(beam_args)
    if not any(a.startswith("--runner") for a in args):
        args += ["--runner=DirectRunner"]
        if not any(a.startswith("--direct_num_workers") for a in args):
            args += ["--direct_num_workers=0"]
        if not any(a.startswith("--direct_running_mode") for a in args):
            args += ["--direct_running_mode=multi_processing"]
    return PipelineOptions(args)


def run_curate(
    config: BuildConfig,
    out: str,
    beam_args: list[str] | None = None,
    settings_hash: str = "",
    files: list[InputFile] | None = None,
) -> dict:
    """Run the curate pipeline into `out` and write OUT/curate.json; returns the summary.
    `settings_hash` identifies the config sections curation depends on (see build.py);
    `files`: the inputs, if already discovered."""
    files = discover_inputs(config.sources) if files is None else files
    # A previous, possibly killed, run may have left files of another input layout.
    remove(join(out, CURATE_SUMMARY))
    for folder in CURATE_OUTPUTS:
        remove(join(out, folder))
    log.info("curate: %d input files, %.1f MB", len(files), sum(f.size for f in files) / 1e6)
    started = time.time()
    options = default_pipeline_options(beam_args or [])
    with beam.Pipeline(options=options) as pipeline:
        _ = pipeline | "Curate" >> Curate(config, files, out)
    seconds = time.time() - started
    remove(join(out, "_spool"))
    summary = summarize(config, files, out, seconds)
    summary["settings_hash"] = settings_hash
    write_bytes_atomic(join(out, CURATE_SUMMARY), json.dumps(summary, indent=2).encode())
    return summary


def read_lineage(out: str):
    """The curate lineage table (all of OUT/lineage/part-*.parquet), local or object store."""
    fs, path = filesystem(join(out, "lineage"))
    return ds.dataset(fs.glob(f"{path}/part-*.parquet"), format="parquet", filesystem=fs).to_table()


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
            "folder": f"curated/{category_folder(category)}",
            "docs": int(mask.sum()),
            "bytes": int(text_bytes[mask].sum()),
        }
    return {
        "strata_version": __version__,
        "config_hash": config.config_hash,
        "config": config.to_dict(),
        "inputs": [
            {"source": f.source, "uri": f.uri, "relpath": f.relpath, "size": f.size, "fingerprint": f.fingerprint}
            for f in files
        ],
        "records": int(len(fate)),
        "fates": {k: int((fate == k).sum()) for k in (FATE_KEPT, FATE_DROPPED, FATE_DUPLICATE, FATE_QUARANTINED)},
        "stages": stage_counters(lineage),
        "categories": per_category,
        "seconds": round(seconds, 3),
    }
