"""Annotate: the expensive half of curate, from raw sources to per-document attributes.

    read -> validate -> normalize -> language ID -> Gopher statistics + C4 lines -> quality score
         -> decontamination -> fingerprints -> PII redaction
         -> OUT/attributes/part-<batch>.parquet, and the MinHash bands two or more documents
            share -> OUT/attributes/shared_bands.parquet; then OUT/annotate.json (the commit point)

Every document that validation and normalization let through is measured by every stage,
whatever the thresholds (attributes.py lists what is kept), so that selection
(pipeline/select.py) can decide with any thresholds without reading a source again.
Documents travel in batches from one input file; each batch is written as it comes, so
memory per worker is one batch, whatever the corpus size.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import nullcontext

import apache_beam as beam
import numpy as np
import pyarrow as pa

from strata.config import BuildConfig
from strata.manifests.layout import ANNOTATE_RECORD, ATTRIBUTES, SHARED_BANDS, attributes_part
from strata.pipeline.attributes import ATTRIBUTES_SCHEMA, attribute_row
from strata.pipeline.curate import BATCH_BYTES, BATCH_DOCS, default_pipeline_options, input_records, node_id
from strata.pipeline.decompress import ExpansionLimit
from strata.pipeline.decontaminate import load_eval_index
from strata.pipeline.dedup import SharedBands
from strata.pipeline.progress import CountDocuments, Progress, expected_bytes
from strata.pipeline.read import InputFile, ReadSources
from strata.pipeline.stages import (
    Decontaminate,
    Fingerprint,
    HeuristicStats,
    LanguageID,
    Normalize,
    QualityScore,
    RedactPII,
    Validate,
)
from strata.pipeline.write import write_parquet, write_table
from strata.storage import join, remove, write_bytes_atomic
from strata.version import __version__

log = logging.getLogger("strata.annotate")

BAND_PARTITION_BYTES = 256 << 20


def attributes_uri(out: str, batch: str) -> str:
    return join(out, attributes_part(batch))


class WriteAttributes(beam.DoFn):
    """Writes a batch's documents with their attributes; emits the batch key."""

    def __init__(self, out: str):
        self.out = out

    def process(self, batch):
        write_parquet(attributes_uri(self.out, batch["batch"]), [attribute_row(d) for d in batch["docs"]],
                      ATTRIBUTES_SCHEMA)
        yield batch["batch"]


def _signatures(batch) -> Iterator[list[tuple]]:
    """[(node, MinHash signature)] of the annotated documents of a batch (none if it has none)."""
    signed = [(node_id(doc["doc_id"], batch["batch"]), np.frombuffer(doc["minhash"], np.uint32))
              for doc in batch["docs"] if doc["fate"] is None and doc.get("minhash") is not None]
    if signed:
        yield signed


def band_partitions(files: list[InputFile]) -> int:
    """How many partitions SharedBands groups band keys in: one per BAND_PARTITION_BYTES of
    input (50 keys per document, some 2 million keys per partition)."""
    return max(1, -(-sum(f.size for f in files) // BAND_PARTITION_BYTES))


class WriteSharedBands(beam.DoFn):
    """Writes every (band key, node) of the bands two or more documents share, sorted, to
    OUT/attributes/shared_bands.parquet: selection regroups the survivors among them
    instead of all documents' bands."""

    def __init__(self, out: str):
        self.out = out

    def process(self, members: list):
        members = sorted(members)
        table = pa.table({"band_key": pa.array([key for key, _ in members], pa.uint64()),
                          "node": pa.array([node for _, node in members], pa.string())})
        yield write_table(join(self.out, SHARED_BANDS), table)


class _Decontaminate(beam.PTransform):
    """The Decontaminate stage with the eval n-grams, read here once, as a side input; no
    stage at all without a `decontaminate` config."""

    def __init__(self, config: BuildConfig):
        super().__init__()
        self.config = config

    def expand(self, batches):
        if self.config.decontaminate is None:
            return batches
        table = load_eval_index(self.config.decontaminate)
        log.info("decontaminate: %d eval n-grams of lengths %s", len(table), list(table.lengths))
        eval_ngrams = batches.pipeline | "EvalNgrams" >> beam.Create([table.to_dict()])
        return batches | "Match" >> beam.ParDo(Decontaminate(self.config.to_dict()), beam.pvalue.AsSingleton(eval_ngrams))


class Annotate(beam.PTransform):
    """The whole annotate step: attributes per batch and, with near dedup, the shared bands;
    outputs the keys of the batches it wrote (and the shared bands' row count)."""

    def __init__(self, config: BuildConfig, files: list[InputFile], out: str, report_folder: str | None = None):
        super().__init__()
        self.config = config
        self.files = files
        self.out = out
        self.report_folder = report_folder  # see progress.py

    def expand(self, pbegin):
        config, cfg = self.config, self.config.to_dict()
        expansion = ExpansionLimit(config.validate_.max_expansion_ratio, config.validate_.max_decompressed_bytes)
        annotated = (
            pbegin
            | "Read" >> ReadSources(self.files, config.validate_.max_text_bytes * 2 + 1024, BATCH_DOCS, BATCH_BYTES,
                                    expansion)
            | "Validate" >> beam.ParDo(Validate(cfg))
            | "Normalize" >> beam.ParDo(Normalize(cfg))
            | "LanguageID" >> beam.ParDo(LanguageID(cfg))
            | "HeuristicStats" >> beam.ParDo(HeuristicStats(cfg))
            | "QualityScore" >> beam.ParDo(QualityScore(cfg))
            | "Decontaminate" >> _Decontaminate(config)
            | "Fingerprint" >> beam.ParDo(Fingerprint(cfg))
            | "RedactPII" >> beam.ParDo(RedactPII(cfg))
            | "Progress" >> beam.ParDo(CountDocuments(self.report_folder))
        )
        written = annotated | "WriteAttributes" >> beam.ParDo(WriteAttributes(self.out))
        if not config.dedup.near.enabled:
            return written
        bands_written = (
            annotated
            | "Signatures" >> beam.FlatMap(_signatures)
            | "SharedBands" >> SharedBands(config.dedup.near, band_partitions(self.files))
            | "AllSharedBands" >> beam.combiners.ToList()
            | "WriteSharedBands" >> beam.ParDo(WriteSharedBands(self.out))
        )
        # The final transform depends on every write, so that runners which compute only
        # the pipeline's last node (Dask) still run all of it.
        return (written, bands_written) | "AllWrites" >> beam.Flatten()


def run_annotate(config: BuildConfig, out: str, beam_args: list[str], settings_hash: str, files: list[InputFile],
                 progress: Progress | None = None) -> dict:
    """Run the annotate pipeline into OUT/attributes/ and write OUT/annotate.json; returns that record."""
    remove(join(out, ANNOTATE_RECORD))
    remove(join(out, ATTRIBUTES))
    log.info("annotate: %d input files, %.1f MB", len(files), sum(f.size for f in files) / 1e6)
    started = time.time()
    watching = progress.stage("curate", expected_bytes(files)) if progress else nullcontext()
    with watching as report_folder, beam.Pipeline(options=default_pipeline_options(beam_args)) as pipeline:
        _ = pipeline | "Annotate" >> Annotate(config, files, out, report_folder)
    record = {
        "strata_version": __version__,
        "settings_hash": settings_hash,
        "inputs": input_records(files),
        "seconds": round(time.time() - started, 3),
    }
    write_bytes_atomic(join(out, ANNOTATE_RECORD), json.dumps(record, indent=2).encode())
    return record
