"""Curate: the Beam pipeline from raw sources to curated, deduplicated Parquet.

    read -> validate -> normalize -> heuristic filters -> language ID -> quality
         -> fingerprint -> exact + near dedup -> curated/<category>/, rejected/,
            quarantine/, lineage/ -> curate.json (written last: the stage's commit point)

The pipeline uses only core Beam transforms (Create, ParDo, GroupByKey, Flatten), so it
runs unchanged on the DirectRunner, Dask, Flink, Spark or Dataflow.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import defaultdict
from typing import Iterable

import apache_beam as beam
import numpy as np
import pyarrow.dataset as ds
from apache_beam.options.pipeline_options import PipelineOptions

from strata.config import BuildConfig
from strata.pipeline.dedup import ExactDuplicates, NearDuplicates
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
from strata.pipeline.write import WriteBuckets, bucket_count, bucket_of, part_name, write_parquet
from strata.storage import join, remove, write_bytes_atomic
from strata.version import __version__

log = logging.getLogger("strata.curate")

CURATE_SUMMARY = "curate.json"
CURATE_OUTPUTS = ("curated", "rejected", "quarantine", "lineage")
LINEAGE_ROWS_PER_BUCKET = 2_000_000


def category_folder(category: str) -> str:
    """A category name as a path segment: 'Gutenberg (PG-19)' -> 'Gutenberg_PG-19'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", category).strip("_") or "_"


def _rows_of(docs: Iterable[dict], schema) -> list[dict]:
    names = schema.names
    return [{k: d.get(k) for k in names} for d in docs]


class Deduplicate(beam.PTransform):
    """Live documents -> (doc_id, (kind, other_id)) verdicts: kind 'exact' names the
    survivor of the doc's identical-content group, 'near' its near-dup cluster id."""

    def __init__(self, config: BuildConfig):
        super().__init__()
        self.config = config

    def expand(self, live):
        verdicts = []
        if self.config.dedup.exact.enabled:
            verdicts.append(
                live
                | "ContentHashes" >> beam.Map(lambda d: (d["doc_id"], d["content_hash"]))
                | "ExactDuplicates" >> ExactDuplicates()
                | "AsExactVerdicts" >> beam.MapTuple(lambda doc_id, survivor: (doc_id, ("exact", survivor)))
            )
        if self.config.dedup.near.enabled:
            verdicts.append(
                live
                | "Signatures" >> beam.Map(lambda d: (d["doc_id"], np.frombuffer(d["minhash"], dtype=np.uint32)))
                | "NearDuplicates" >> NearDuplicates(self.config.dedup.near)
                | "AsNearVerdicts" >> beam.MapTuple(lambda doc_id, cluster: (doc_id, ("near", cluster)))
            )
        if not verdicts:
            return live | "NoVerdicts" >> beam.FlatMap(lambda d: ())
        return verdicts | "AllVerdicts" >> beam.Flatten()


class ResolveBucket(beam.DoFn):
    """Joins one bucket's live documents with their dedup verdicts, writes the kept ones to
    curated/<category>/part-NNNNN.parquet, and emits ('lineage'|'rejected'|'file', row)."""

    def __init__(self, out: str, config_hash: str):
        self.out = out
        self.config_hash = config_hash

    def process(self, element):
        bucket, grouped = element
        verdicts: dict[str, dict] = defaultdict(dict)
        for doc_id, (kind, other) in grouped["verdicts"]:
            verdicts[doc_id][kind] = other
        kept = defaultdict(list)
        for doc in grouped["docs"]:
            verdict = verdicts.get(doc["doc_id"], {})
            cluster = verdict.get("near")
            if "exact" in verdict:
                fate, stage, reason, survivor = FATE_DUPLICATE, "exact_dedup", "exact_duplicate", verdict["exact"]
            elif cluster is not None and cluster != doc["doc_id"]:
                fate, stage, reason, survivor = FATE_DUPLICATE, "near_dedup", "near_duplicate", cluster
            else:
                fate, stage, reason, survivor = FATE_KEPT, None, None, None
            yield "lineage", lineage_row(
                doc, fate, stage, reason, self.config_hash, duplicate_of=survivor, cluster_id=cluster
            )
            if fate == FATE_KEPT:
                kept[doc["category"]].append(doc)
            else:
                yield "rejected", dict(doc, stage=stage, reason=reason)
        for category in sorted(kept):
            uri = join(self.out, "curated", category_folder(category), part_name(bucket))
            yield "file", (uri, write_parquet(uri, _rows_of(kept[category], CURATED_SCHEMA), CURATED_SCHEMA))


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
        config_hash = config.config_hash
        total_bytes = sum(f.size for f in self.files) or 1
        buckets = bucket_count(total_bytes, config.output.curated_file_bytes)
        record_estimate = max(1, total_bytes // 1000)
        lineage_buckets = max(1, -(-record_estimate // LINEAGE_ROWS_PER_BUCKET))

        docs = (
            pbegin
            | "Read" >> ReadSources(self.files, max_record_bytes=config.validate_.max_text_bytes * 2 + 1024)
            | "Validate" >> beam.ParDo(Validate(cfg))
            | "Normalize" >> beam.ParDo(Normalize(cfg))
            | "HeuristicFilters" >> beam.ParDo(HeuristicFilters(cfg))
            | "LanguageID" >> beam.ParDo(LanguageFilter(cfg))
            | "QualityClassifier" >> beam.ParDo(QualityFilter(cfg))
            | "Fingerprint" >> beam.ParDo(Fingerprint(cfg))
            | "Progress" >> beam.ParDo(Progress("curate"))
        )
        live = docs | "Live" >> beam.Filter(lambda d: d["fate"] is None)
        decided = docs | "Decided" >> beam.Filter(lambda d: d["fate"] is not None)

        verdicts = live | "Deduplicate" >> Deduplicate(config)
        resolved = (
            {
                "docs": live | "DocsByBucket" >> beam.Map(lambda d: (bucket_of(d["doc_id"], buckets), _without_minhash(d))),
                "verdicts": verdicts | "VerdictsByBucket" >> beam.Map(lambda v: (bucket_of(v[0], buckets), v)),
            }
            | "JoinVerdicts" >> beam.CoGroupByKey()
            | "ResolveAndWriteCurated" >> beam.ParDo(ResolveBucket(out, config_hash))
        )

        lineage = (
            decided | "DecidedLineage" >> beam.Map(lambda d: lineage_row(d, d["fate"], d["stage"], d["reason"], config_hash)),
            resolved | "ResolvedLineage" >> _only("lineage"),
        ) | "AllLineage" >> beam.Flatten()
        rejected = (
            decided | "Dropped" >> beam.Filter(lambda d: d["fate"] == FATE_DROPPED),
            resolved | "Duplicates" >> _only("rejected"),
        ) | "AllRejected" >> beam.Flatten()
        quarantined = decided | "Quarantined" >> beam.Filter(lambda d: d["fate"] == FATE_QUARANTINED)

        written = [
            resolved | "CuratedFiles" >> _only("file"),
            lineage | "WriteLineage" >> WriteBuckets(join(out, "lineage"), LINEAGE_SCHEMA, lineage_buckets),
            quarantined
            | "QuarantineRows" >> beam.Map(lambda d: {k: d.get(k) for k in QUARANTINE_SCHEMA.names})
            | "WriteQuarantine" >> WriteBuckets(join(out, "quarantine"), QUARANTINE_SCHEMA, lineage_buckets),
        ]
        if config.output.write_rejected:
            written.append(
                rejected
                | "RejectedRows" >> beam.Map(lambda d: {k: d.get(k) for k in REJECTED_SCHEMA.names})
                | "WriteRejected" >> WriteBuckets(join(out, "rejected"), REJECTED_SCHEMA, buckets)
            )
        # One final transform downstream of every write, so that runners which compute
        # only the pipeline's last node (Dask) still run all of it.
        return written | "AllWrittenFiles" >> beam.Flatten()


def _without_minhash(doc: dict) -> dict:
    doc = dict(doc)
    doc.pop("minhash", None)
    return doc


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


def run_curate(config: BuildConfig, out: str, beam_args: list[str] | None = None) -> dict:
    """Run the curate pipeline into `out` and write OUT/curate.json; returns the summary."""
    files = discover_inputs(config.sources)
    # A previous, possibly killed, run may have left files of another bucket layout.
    remove(join(out, CURATE_SUMMARY))
    for folder in CURATE_OUTPUTS:
        remove(join(out, folder))
    log.info("curate: %d input files, %.1f MB", len(files), sum(f.size for f in files) / 1e6)
    started = time.time()
    options = default_pipeline_options(beam_args or [])
    with beam.Pipeline(options=options) as pipeline:
        _ = pipeline | "Curate" >> Curate(config, files, out)
    seconds = time.time() - started
    summary = summarize(config, files, out, seconds)
    write_bytes_atomic(join(out, CURATE_SUMMARY), json.dumps(summary, indent=2).encode())
    return summary


def read_lineage(out: str):
    return ds.dataset(join(out, "lineage"), format="parquet").to_table()


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
