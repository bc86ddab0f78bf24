"""Curate: the Beam pipeline from raw sources to curated, deduplicated Parquet.

    read -> validate -> normalize -> language ID -> heuristic filters -> quality
         -> fingerprint -> PII redaction -> spool -> exact + near dedup -> resolve
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

import json
import logging
import time
from collections import defaultdict
from contextlib import nullcontext

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from apache_beam.options.pipeline_options import PipelineOptions

from strata.config import BuildConfig
from strata.manifests.layout import (
    CURATE_LINEAGE_GLOB,
    CURATE_OUTPUTS,
    CURATE_RECORD,
    LINEAGE,
    QUARANTINE,
    REJECTED,
    SPOOL,
    batch_part,
    curated_folder,
    spool_file,
)
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
from strata.pipeline.progress import CountDocuments, Progress, expected_bytes
from strata.pipeline.decompress import ExpansionLimit
from strata.pipeline.decontaminate import load_eval_ngrams
from strata.pipeline.dedup import ExactDuplicates, NearDuplicates
from strata.pipeline.paragraphs import BoilerplateParagraphs, paragraph_hashes, remove_paragraphs
from strata.pipeline.read import InputFile, ReadSources, discover_inputs
from strata.pipeline.schema import SPOOL_SCHEMA, lineage_row
from strata.pipeline.stages import (
    Decontaminate,
    Fingerprint,
    HeuristicFilters,
    LanguageFilter,
    Normalize,
    QualityFilter,
    RedactPII,
    Validate,
)
from strata.pipeline.write import read_table, write_parquet, write_table
from strata.storage import filesystem, join, remove, write_bytes_atomic
from strata.version import __version__

log = logging.getLogger("strata.curate")

BATCH_DOCS = 4096
BATCH_BYTES = 32 * 2**20


def node_id(doc_id: str, batch: str) -> str:
    """Dedup works on `doc_id@batch`: the batch travels with the verdict, and since doc_ids
    have one length, the smallest node id is the smallest doc_id."""
    return f"{doc_id}@{batch}"


class SpoolBatch(beam.DoFn):
    """Writes a batch to OUT/_spool/<batch>.parquet and emits ('batch', key) plus, per live
    document, ('fingerprint', (node_id, content_hash, signature)) and, with paragraph dedup,
    ('paragraphs', (node_id, hashes of its paragraphs as spooled))."""

    def __init__(self, out: str, min_paragraph_chars: int | None):
        self.out = out
        self.min_paragraph_chars = min_paragraph_chars  # None: no paragraph dedup

    def process(self, batch):
        key = batch["batch"]
        write_parquet(join(self.out, spool_file(key)), [_spool_row(d) for d in batch["docs"]], SPOOL_SCHEMA)
        yield "batch", key
        for doc in batch["docs"]:
            if doc["fate"] is None:
                node = node_id(doc["doc_id"], key)
                yield "fingerprint", (node, doc["content_hash"], doc.get("minhash"))
                if self.min_paragraph_chars is not None:
                    yield "paragraphs", (node, paragraph_hashes(doc["text"], self.min_paragraph_chars))


def _spool_row(doc: dict) -> dict:
    return {name: doc.get(name) for name in SPOOL_SCHEMA.names}


class Deduplicate(beam.PTransform):
    """Fingerprints of live documents -> (batch, (doc_id, kind, survivor, cluster, similarity))
    verdicts: kind 'exact' names the survivor of the doc's identical-content group, 'near'
    its near-dup cluster (the cluster's smallest doc_id; representatives get one too) and,
    for a near duplicate, the representative it was verified against and their similarity."""

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
                | "AsExactVerdicts" >> beam.MapTuple(_exact_verdict)
            )
        if self.config.dedup.near.enabled:
            verdicts.append(
                fingerprints
                | "Signatures" >> beam.MapTuple(lambda node, _, sig: (node, np.frombuffer(sig, dtype=np.uint32)))
                | "NearDuplicates" >> NearDuplicates(self.config.dedup.near)
                | "AsNearVerdicts" >> beam.MapTuple(_near_verdict)
            )
        if not verdicts:
            return fingerprints | "NoVerdicts" >> beam.FlatMap(lambda _: ())
        return verdicts | "AllVerdicts" >> beam.Flatten()


def _doc_id(node: str | None) -> str | None:
    return node and node.split("@")[0]


def _exact_verdict(node: str, survivor: str) -> tuple:
    doc_id, batch = node.split("@")
    return batch, (doc_id, "exact", _doc_id(survivor), None, 1.0)


def _paragraph_verdict(node: str, hashes: list) -> tuple:
    doc_id, batch = node.split("@")
    return batch, (doc_id, "paragraphs", hashes, None, None)


def _near_verdict(node: str, verified: tuple) -> tuple:
    survivor, cluster, similarity = verified
    doc_id, batch = node.split("@")
    return batch, (doc_id, "near", _doc_id(survivor), _doc_id(cluster), similarity)


class ResolveBatch(beam.DoFn):
    """Reads a spooled batch back, applies its dedup verdicts and writes the batch's
    curated/<category>/, rejected/, quarantine/ and lineage/ files; emits (uri, rows).

    Fates are decided on the small columns; the text and raw columns stay in Arrow and
    are only sliced into the output files, never turned into Python strings."""

    def __init__(self, out: str, config_hash: str, write_rejected: bool, min_chars_after_paragraphs: int):
        self.out = out
        self.config_hash = config_hash
        self.write_rejected = write_rejected
        self.min_chars = min_chars_after_paragraphs

    def process(self, element):
        key, grouped = element
        verdicts: dict[str, dict] = defaultdict(dict)
        for doc_id, kind, *verdict in grouped["verdicts"]:
            verdicts[doc_id][kind] = verdict
        spool = join(self.out, spool_file(key))
        table = read_table(spool)
        docs = table.drop_columns(["text", "raw"]).to_pylist()
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
        remove(spool)

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


def _only(kind: str):
    return beam.FlatMap(lambda item: [item[1]] if item[0] == kind else [])


class _Decontaminate(beam.PTransform):
    """The Decontaminate stage with the eval n-grams, read here once, as a side input; no
    stage at all without a `decontaminate` config."""

    def __init__(self, config: BuildConfig):
        super().__init__()
        self.config = config

    def expand(self, batches):
        if self.config.decontaminate is None:
            return batches
        table = load_eval_ngrams(self.config.decontaminate)
        log.info("decontaminate: %d eval n-grams of lengths %s", len(table), list(table.lengths))
        eval_ngrams = batches.pipeline | "EvalNgrams" >> beam.Create([table.to_dict()])
        return batches | "Match" >> beam.ParDo(Decontaminate(self.config.to_dict()), beam.pvalue.AsSingleton(eval_ngrams))


class Curate(beam.PTransform):
    """The whole curate stage; outputs (uri, rows) of every file it wrote."""

    def __init__(self, config: BuildConfig, files: list[InputFile], out: str, report_folder: str | None = None):
        super().__init__()
        self.config = config
        self.files = files
        self.out = out
        self.report_folder = report_folder  # see progress.py

    def expand(self, pbegin):
        config, out = self.config, self.out
        cfg = config.to_dict()
        paragraph = config.dedup.paragraph
        expansion = ExpansionLimit(config.validate_.max_expansion_ratio, config.validate_.max_decompressed_bytes)
        spooled = (
            pbegin
            | "Read" >> ReadSources(self.files, config.validate_.max_text_bytes * 2 + 1024, BATCH_DOCS, BATCH_BYTES,
                                    expansion)
            | "Validate" >> beam.ParDo(Validate(cfg))
            | "Normalize" >> beam.ParDo(Normalize(cfg))
            | "LanguageID" >> beam.ParDo(LanguageFilter(cfg))
            | "HeuristicFilters" >> beam.ParDo(HeuristicFilters(cfg))
            | "QualityClassifier" >> beam.ParDo(QualityFilter(cfg))
            | "Decontaminate" >> _Decontaminate(config)
            | "Fingerprint" >> beam.ParDo(Fingerprint(cfg))
            | "RedactPII" >> beam.ParDo(RedactPII(cfg))
            | "Progress" >> beam.ParDo(CountDocuments(self.report_folder))
            | "Spool" >> beam.ParDo(SpoolBatch(out, paragraph.min_paragraph_chars if paragraph.enabled else None))
        )
        batches = spooled | "Batches" >> _only("batch") | "KeyBatches" >> beam.Map(lambda key: (key, None))
        verdicts = spooled | "Fingerprints" >> _only("fingerprint") | "Deduplicate" >> Deduplicate(config)
        if paragraph.enabled:
            verdicts = (
                verdicts,
                spooled
                | "ParagraphHashes" >> _only("paragraphs")
                | "BoilerplateParagraphs" >> BoilerplateParagraphs(paragraph)
                | "AsParagraphVerdicts" >> beam.MapTuple(_paragraph_verdict),
            ) | "WithParagraphVerdicts" >> beam.Flatten()
        # The final transform depends on every write, so that runners which compute only
        # the pipeline's last node (Dask) still run all of it.
        return (
            {"batch": batches, "verdicts": verdicts}
            | "JoinVerdicts" >> beam.CoGroupByKey()
            | "ResolveBatches" >> beam.ParDo(
                ResolveBatch(out, config.config_hash, config.output.write_rejected, paragraph.min_chars)
            )
        )


# --------------------------------------------------------------------------- running


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


def run_curate(
    config: BuildConfig,
    out: str,
    beam_args: list[str] | None = None,
    settings_hash: str = "",
    files: list[InputFile] | None = None,
    progress: Progress | None = None,
) -> dict:
    """Run the curate pipeline into `out` and write OUT/curate.json; returns the summary.
    `settings_hash` identifies the config sections curation depends on (see build.py);
    `files`: the inputs, if already discovered."""
    files = discover_inputs(config.sources) if files is None else files
    # A previous, possibly killed, run may have left files of another input layout.
    remove(join(out, CURATE_RECORD))
    for folder in CURATE_OUTPUTS:
        remove(join(out, folder))
    log.info("curate: %d input files, %.1f MB", len(files), sum(f.size for f in files) / 1e6)
    started = time.time()
    options = default_pipeline_options(beam_args or [])
    watching = progress.stage("curate", expected_bytes(files)) if progress else nullcontext()
    with watching as report_folder, beam.Pipeline(options=options) as pipeline:
        _ = pipeline | "Curate" >> Curate(config, files, out, report_folder)
    seconds = time.time() - started
    remove(join(out, SPOOL))
    summary = summarize(config, files, out, seconds)
    summary["settings_hash"] = settings_hash
    write_bytes_atomic(join(out, CURATE_RECORD), json.dumps(summary, indent=2).encode())
    return summary


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
        "inputs": [
            {"source": f.source, "uri": f.uri, "relpath": f.relpath, "size": f.size, "fingerprint": f.fingerprint}
            for f in files
        ],
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
