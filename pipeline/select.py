"""Select: the cheap half of curate, from stored attributes to curated Parquet.

    OUT/attributes/part-<batch>.parquet -> thresholds and category rules (attributes.py)
        -> exact + near dedup of the survivors (their stored hashes, signatures and shared
           MinHash bands: only bands another annotated document shares are regrouped)
        -> optional paragraph dedup -> resolve (curate.ResolveBatch)
        -> curated/<category>/, rejected/, quarantine/, lineage/, then curate.json

No source is read and no model runs: a rebuild that changes only thresholds, category
rules, dedup resolution or output options costs this step and what follows it, and gives
byte for byte what a from-scratch build with those settings gives (a from-scratch build
runs this same step after annotating).
"""

from __future__ import annotations

import functools
import json
import logging
import time

import apache_beam as beam
import pyarrow.parquet as pq

from strata.config import BuildConfig
from strata.manifests.layout import ATTRIBUTES_GLOB, CURATE_RECORD, SELECT_OUTPUTS, SHARED_BANDS, attributes_part
from strata.pipeline.attributes import SMALL_COLUMNS, select_batch, texts_at
from strata.pipeline.curate import (
    Deduplicate,
    ResolveBatch,
    default_pipeline_options,
    node_id,
    summarize,
)
from strata.pipeline.paragraphs import BoilerplateParagraphs, paragraph_hashes
from strata.pipeline.read import InputFile
from strata.pipeline.write import read_table
from strata.storage import filesystem, glob, join, remove, write_bytes_atomic

log = logging.getLogger("strata.select")

# Up to this many candidate edges the near-dup clusters are found in one worker (a
# union-find holding ~200 bytes an edge), beyond it by large-star/small-star rounds in Beam.
SMALL_GRAPH_EDGES = 2_000_000


def annotated_batches(out: str) -> list[str]:
    """The batch keys of OUT/attributes/part-<batch>.parquet."""
    names = (uri.rsplit("/", 1)[-1] for uri in glob(join(out, ATTRIBUTES_GLOB)))
    return sorted(name.removeprefix("part-").removesuffix(".parquet") for name in names)


def shared_bands(out: str) -> dict[str, list[int]]:
    """node -> the band keys it shares with another document (annotate's shared_bands.parquet)."""
    table = read_table(join(out, SHARED_BANDS))
    bands: dict[str, list[bytes]] = {}
    for key, node in zip(table.column("band_key").to_pylist(), table.column("node").to_pylist()):
        bands.setdefault(node, []).append(key)
    return bands


def small_near_dup_graph(config: BuildConfig, out: str) -> bool:
    """Whether the near-dup graph fits one worker: it has at most as many edges as the shared
    bands have rows (one edge per member of a band but its smallest), known before selection."""
    if not config.dedup.near.enabled:
        return False
    fs, path = filesystem(join(out, SHARED_BANDS))
    with fs.open(path, "rb") as f:
        return pq.ParquetFile(f).metadata.num_rows <= SMALL_GRAPH_EDGES


class SelectBatch(beam.DoFn):
    """A batch key -> ('batch', key) and, per document selection keeps, its fingerprints:
    ('hash', (node_id, content_hash)), ('band', (band key, node_id)) for each band it shares
    with another annotated document and then ('signature', (node_id, MinHash bytes)), and,
    with paragraph dedup, ('paragraphs', (node_id, hashes of the paragraphs of its text))."""

    def __init__(self, out: str, config: dict):
        self.out = out
        self._config_dict = config

    def setup(self):
        config = BuildConfig.model_validate(self._config_dict)
        self.filters_for = functools.lru_cache(maxsize=None)(config.filters.for_category)
        paragraph = config.dedup.paragraph
        self.min_paragraph_chars = paragraph.min_paragraph_chars if paragraph.enabled else None
        self.bands_of = shared_bands(self.out) if config.dedup.near.enabled else {}

    def process(self, key):
        columns = [*SMALL_COLUMNS, "minhash"]
        if self.min_paragraph_chars is not None:
            columns += ["text", "text_lines", "text_final"]
        table = read_table(join(self.out, attributes_part(key))).select(columns)
        docs, levels = select_batch(table, self.filters_for)
        signatures = table.column("minhash")
        texts = texts_at(table, levels) if self.min_paragraph_chars is not None else None
        yield "batch", key
        for i, doc in enumerate(docs):
            if doc["fate"] is None:
                node = node_id(doc["doc_id"], key)
                yield "hash", (node, doc["content_hash"])
                if node in self.bands_of:
                    yield from (("band", (band, node)) for band in self.bands_of[node])
                    yield "signature", (node, signatures[i].as_py())
                if texts is not None:
                    yield "paragraphs", (node, paragraph_hashes(texts[i].as_py(), self.min_paragraph_chars))


def _only(kind: str):
    return beam.FlatMap(lambda item: [item[1]] if item[0] == kind else [])


def _paragraph_verdict(node: str, hashes: list) -> tuple:
    doc_id, batch = node.split("@")
    return batch, (doc_id, "paragraphs", hashes, None, None)


class Select(beam.PTransform):
    """The whole select step over the given batches; outputs (uri, rows) of every file it wrote."""

    def __init__(self, config: BuildConfig, out: str, batches: list[str], small_graph: bool = False):
        super().__init__()
        self.config = config
        self.out = out
        self.batches = batches
        self.small_graph = small_graph  # see Deduplicate

    def expand(self, pbegin):
        config, out = self.config, self.out
        paragraph = config.dedup.paragraph
        selected = (
            pbegin
            | "BatchKeys" >> beam.Create(self.batches)
            | "SelectBatch" >> beam.ParDo(SelectBatch(out, config.to_dict()))
        )
        batches = selected | "Batches" >> _only("batch") | "KeyBatches" >> beam.Map(lambda key: (key, None))
        fingerprints = {name: selected | f"Only{name.title()}" >> _only(kind)
                        for name, kind in (("hashes", "hash"), ("bands", "band"), ("signatures", "signature"))}
        verdicts = fingerprints | "Deduplicate" >> Deduplicate(config, self.small_graph)
        if paragraph.enabled:
            verdicts = (
                verdicts,
                selected
                | "ParagraphHashes" >> _only("paragraphs")
                | "BoilerplateParagraphs" >> BoilerplateParagraphs(paragraph)
                | "AsParagraphVerdicts" >> beam.MapTuple(_paragraph_verdict),
            ) | "WithParagraphVerdicts" >> beam.Flatten()
        # The final transform depends on every write, so that runners which compute only
        # the pipeline's last node (Dask) still run all of it.
        return (
            {"batch": batches, "verdicts": verdicts}
            | "JoinVerdicts" >> beam.CoGroupByKey()
            | "ResolveBatches" >> beam.ParDo(ResolveBatch(out, config.to_dict()))
        )


def run_select(config: BuildConfig, out: str, beam_args: list[str], settings_hash: str, files: list[InputFile],
               annotate_seconds: float = 0.0) -> dict:
    """Run the select pipeline on OUT/attributes/ and write OUT/curate.json; returns the
    summary, whose `seconds` add `annotate_seconds` (the annotation this build ran, if any)."""
    remove(join(out, CURATE_RECORD))
    for folder in SELECT_OUTPUTS:
        remove(join(out, folder))
    started = time.time()
    with beam.Pipeline(options=default_pipeline_options(beam_args)) as pipeline:
        _ = pipeline | "Select" >> Select(config, out, annotated_batches(out), small_near_dup_graph(config, out))
    summary = summarize(config, files, out, time.time() - started + annotate_seconds)
    summary["settings_hash"] = settings_hash
    write_bytes_atomic(join(out, CURATE_RECORD), json.dumps(summary, indent=2).encode())
    return summary
