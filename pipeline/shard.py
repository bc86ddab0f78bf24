"""Shard: curated Parquet -> tokenized, packed WebDataset tars, one Beam element per shard.

    curate.json + curated/<folder>/*.parquet
      -> plan_shards (at pipeline construction: files grouped into shards of ~target_bytes)
      -> Create | Reshuffle | ParDo(ShardWriter), per shard:
           read the plan's files in order -> split by doc_id hash -> encode (+EOS), or take
           the tokens from the token store (token_store.py) -> pack into blocks
           -> shards/<folder>/{train,val}-NNNNNN.tar (+ .idx.json) (shard_tar.py)
           -> lineage/shards-<folder>-NNNNNN.parquet
      -> shards.json (every shard's record; written last, the stage's commit point)

Text is never shuffled: each shard is written by one worker straight from its files, so
the output is a pure function of the curated files, the model and the shards config.

Tar format (read by `tar tf` and stock `webdataset.WebDataset`): plain USTAR, one sample per
block, encoded by manifests/block_codec.py; every document ends with EOS. KEY =
<folder, dots as '-', cut to 48 chars>_<split>_<shard:06d>_<block:06d> (manifests/layout.py:
no dots, so WebDataset groups the three members; short enough for USTAR's 100-byte names).

Block index (TAR.idx.json, manifests/block_index.py): each block's key, byte range, tokens,
docs and xxh3_64 checksum; the shard's record (a ShardRecord) holds the sidecar's own
sha256 (`index_sha256`).
"""

from __future__ import annotations

import itertools
import json
import logging
import sys
from contextlib import nullcontext
from typing import Iterator, NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import PipelineOptions

from strata.config import BuildConfig, ShardsConfig
from strata.manifests.block_codec import token_dtype
from strata.manifests.checksums import sha256_hex
from strata.manifests.layout import (
    CURATE_RECORD,
    PARQUET_GLOB,
    PLACEMENTS_GLOB,
    SHARDS,
    SHARDS_RECORD,
    TOKENS,
    category_folder,
    index_path,
    key_prefix,
    placements_path,
    shard_path,
)
from strata.manifests.manifest import ShardRecord
from strata.manifests.paths import resolve_inside
from strata.manifests.schemas import PLACEMENTS_SCHEMA
from strata.pipeline.curate import default_pipeline_options
from strata.pipeline.progress import Progress, ProgressReport
from strata.pipeline.shard_tar import Block, BlockPacker, ShardTar
from strata.pipeline.token_store import StoredTokens, prepare_store, store_uri, store_writer, text_checksum
from strata.pipeline.write import write_parquet
from strata.storage import filesystem, glob, join, remove, write_atomic, write_bytes_atomic
from strata.tokenize.encoders import SentencePieceEncoder, load_encoder
from strata.tokenize.trainer import file_sha256
from strata.pipeline.windows import newline_windows, utf8_newline_windows

log = logging.getLogger("strata.shard")

SPLITS = ("train", "val")
ENCODE_BATCH_DOCS = 256  # documents per sentencepiece call
# Each tokenizer call gets about this many characters: short documents are grouped up to
# it, and with sentencepiece a longer one is encoded in windows of it, cut after a newline
# ("\n" is a user-defined symbol of strata's tokenizers, a piece of its own that no other
# piece spans, so the windows' tokens are the whole document's). A call returns Python lists
# (~36 bytes a token) that become a uint16/uint32 array at once; at 1 MiB windows their int
# objects left the allocator's arenas fragmented, and a 50 MB document's encoding grew the
# process by ~360 MB; at 64 Ki the lists stay small enough to be reused.
ENCODE_WINDOW_CHARS = 1 << 16
KEY_STEM_CHARS = 48
# Planning estimate of tar bytes per byte of curated text: about 4 UTF-8 bytes per token
# (English prose and code at a 32k vocabulary) and 2 bytes per uint16 token. Only the
# number of shards depends on it.
TAR_BYTES_PER_TEXT_BYTE = 0.5


def split_of(doc_id: str, val_fraction: float) -> str:
    """'val' or 'train', a pure function of the doc_id (a uniform hex hash)."""
    return "val" if int(doc_id[:8], 16) / 2**32 < val_fraction else "train"


# --------------------------------------------------------------------------- planning


class ShardPlan(NamedTuple):
    category: str
    shard: int
    files: list[str]  # curated Parquet URIs, in name order

    @property
    def folder(self) -> str:
        return category_folder(self.category)


def shard_inputs(out: str) -> dict[str, list[tuple[str, int]]]:
    """Category -> [(curated file uri, text bytes)], files sorted by name, for the
    categories OUT/curate.json lists (curate's commit point). Text bytes are the text
    column's uncompressed size from the Parquet footer."""
    fs, path = filesystem(join(out, CURATE_RECORD))
    if not fs.exists(path):
        raise FileNotFoundError(f"{join(out, CURATE_RECORD)} is missing: run the curate stage first")
    with fs.open(path, "rb") as f:
        categories = json.load(f)["categories"]
    return {
        category: [
            (uri, _text_bytes(uri))
            for uri in glob(join(resolve_inside(out, entry["folder"], f"{CURATE_RECORD} {category}: folder"), PARQUET_GLOB))
        ]
        for category, entry in sorted(categories.items())
    }


def _text_bytes(uri: str) -> int:
    fs, path = filesystem(uri)
    with fs.open(path, "rb") as f:
        meta = pq.ParquetFile(f).metadata
    column = meta.schema.names.index("text")
    return sum(meta.row_group(i).column(column).total_uncompressed_size for i in range(meta.num_row_groups))


def plan_shards(curated: dict[str, list[tuple[str, int]]], target_bytes: int) -> list[ShardPlan]:
    """Groups each category's files, in name order, into shards of about `target_bytes` of
    tar (estimated from text bytes): a shard is closed before the file that would take it
    past the target, so only a single file larger than the target makes a larger shard."""
    plans = []
    for category in sorted(curated):
        groups: list[list[str]] = [[]]
        estimate = 0.0
        for uri, text_bytes in sorted(curated[category]):
            size = text_bytes * TAR_BYTES_PER_TEXT_BYTE
            if groups[-1] and estimate + size > target_bytes:
                groups.append([])
                estimate = 0.0
            groups[-1].append(uri)
            estimate += size
        plans += [ShardPlan(category, shard, files) for shard, files in enumerate(groups) if files]
    return plans


# --------------------------------------------------------------------------- the Beam stage


def read_curated_batches(files: list[str], long_bytes: int, checksums: bool) -> Iterator[
        tuple[str, list[str], list[str | memoryview], list[int] | None]]:
    """(file, doc_ids, texts, text checksums) of the files' documents, in file and record
    order, in batches. A text over `long_bytes` comes as a view of its UTF-8 bytes in
    Arrow's buffer, so that it is decoded a window at a time (a 50 MB document can be a
    200 MB Python str). The checksums (if asked for) are the token store's, of each text's UTF-8."""
    for uri in files:
        fs, path = filesystem(uri)
        with fs.open(path, "rb") as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=ENCODE_BATCH_DOCS, columns=["doc_id", "text"]):
                texts = batch.column("text")
                buffers = [texts[i].as_buffer() for i in range(len(texts))]
                yield uri, batch.column("doc_id").to_pylist(), [
                    memoryview(buffer) if buffer.size > long_bytes else texts[i].as_py() for i, buffer in enumerate(buffers)
                ], [text_checksum(buffer) for buffer in buffers] if checksums else None


class ShardWriter(beam.DoFn):
    """ShardPlan -> its train and val tars (a split without documents writes none), their
    block-index sidecars and its lineage file; outputs one record per tar written."""

    def __init__(self, out: str, model_path: str, shards: ShardsConfig, report_folder: str | None = None):
        self.out = out
        self.model_path = model_path
        self.block_tokens = shards.block_tokens
        self.val_fraction = shards.val_fraction
        self.keep_tokens = shards.keep_tokens
        self.report_folder = report_folder  # see progress.py

    def setup(self):
        self.report = ProgressReport(self.report_folder)
        self.encoder = load_encoder(self.model_path)
        self.eos = self.encoder.special_ids["eos"]
        if self.eos is None:
            raise ValueError(f"{self.model_path}: the tokenizer has no EOS token")
        self.dtype = token_dtype(self.encoder.vocab_size)

    def process(self, plan: ShardPlan):
        records, placements = [], []
        val_docs: list[tuple[str, np.ndarray]] = []
        documents = {"train": self.encoded(plan, val_docs), "val": iter(val_docs)}
        for split in SPLITS:
            blocks = self.blocks(documents[split], plan, split)
            first = next(blocks, None)
            if first is None:
                continue
            path = shard_path(plan.folder, split, plan.shard)
            tar = ShardTar(plan.category, split, plan.shard, itertools.chain([first], blocks))
            write_atomic(join(self.out, path), tar.write)
            index = tar.index_bytes(path)
            write_bytes_atomic(join(self.out, index_path(path)), index)
            placements += [
                {"doc_id": doc_id, "category": plan.category, "split": split, "shard": path,
                 "block_key": key, "token_start": start, "token_end": end}
                for key, doc_id, start, end in tar.placements
            ]
            records.append(
                ShardRecord(category=plan.category, split=split, shard=plan.shard, path=path, index=index_path(path),
                            index_sha256=sha256_hex(index), sha256=tar.sha256, bytes=tar.bytes, blocks=len(tar.index),
                            tokens=tar.tokens, docs=tar.docs).to_dict()
            )
            log.debug("shard %s: %d blocks, %d tokens, %d docs", path, len(tar.index), tar.tokens, tar.docs)
        write_parquet(join(self.out, placements_path(plan.folder, plan.shard)), placements, PLACEMENTS_SCHEMA)
        self.report.flush()
        return records

    def encoded(self, plan: ShardPlan, val_docs: list) -> Iterator[tuple[str, np.ndarray]]:
        """The plan's train documents as token arrays, in order. Val documents (a small
        share) are set aside in `val_docs` for the val tar, so every file is read and
        encoded once. With the token store, each file's documents are taken from it where
        stored, and the file's tokens are stored for the next build."""
        long_bytes = ENCODE_WINDOW_CHARS if isinstance(self.encoder, SentencePieceEncoder) else sys.maxsize
        batches_by_file = itertools.groupby(read_curated_batches(plan.files, long_bytes, self.keep_tokens), key=lambda batch: batch[0])
        for uri, batches in batches_by_file:
            store = store_uri(self.out, uri) if self.keep_tokens else None
            stored = StoredTokens(store, self.dtype) if store else None
            with store_writer(store) if store else nullcontext() as storing:
                for _, doc_ids, texts, checksums in batches:
                    encoded = self.encode_or_reuse(doc_ids, texts, checksums, stored)
                    if storing:
                        storing.add(doc_ids, checksums, encoded)
                    self.report.add(docs=len(texts), bytes=sum(map(len, texts)), tokens=sum(map(len, encoded)))
                    for doc_id, tokens in zip(doc_ids, encoded):
                        if split_of(doc_id, self.val_fraction) == "val":
                            val_docs.append((doc_id, tokens))
                        else:
                            yield doc_id, tokens

    def encode_or_reuse(self, doc_ids: list[str], texts: list, checksums: list[int],
                        stored: StoredTokens | None) -> list[np.ndarray]:
        """Each text's tokens: from the token store if it has them, else encoded."""
        tokens = [stored.get(d, c) for d, c in zip(doc_ids, checksums)] if stored else [None] * len(texts)
        missing = [i for i, t in enumerate(tokens) if t is None]
        for i, encoded in zip(missing, self.encode([texts[i] for i in missing]) if missing else []):
            tokens[i] = encoded
        return tokens

    def encode(self, texts: list[str | memoryview]) -> list[np.ndarray]:
        """Token arrays of the texts, each ended by EOS, through tokenizer calls of about
        ENCODE_WINDOW_CHARS characters (see there); a HF tokenizer encodes a long text whole."""
        windowed = isinstance(self.encoder, SentencePieceEncoder)
        eos = np.array([self.eos], dtype=self.dtype)
        encoded: list[np.ndarray] = []
        group: list[str] = []
        grouped_chars = 0

        def encode_group() -> None:
            encoded.extend(np.concatenate([np.array(ids, dtype=self.dtype), eos]) for ids in self.encoder.encode(group))
            group.clear()

        for text in texts:
            if windowed and len(text) > ENCODE_WINDOW_CHARS:
                encode_group()
                windows = (utf8_newline_windows if isinstance(text, memoryview) else newline_windows)(text, ENCODE_WINDOW_CHARS)
                encoded.append(np.concatenate([*(np.array(self.encoder.encode([w])[0], dtype=self.dtype) for w in windows), eos]))
                continue
            if grouped_chars + len(text) > ENCODE_WINDOW_CHARS:
                encode_group()
                grouped_chars = 0
            group.append(text)
            grouped_chars += len(text)
        encode_group()
        return encoded

    def blocks(self, documents: Iterator[tuple[str, np.ndarray]], plan: ShardPlan, split: str) -> Iterator[Block]:
        packer = BlockPacker(self.block_tokens, key_prefix(plan.folder, split, plan.shard))
        for doc_id, tokens in documents:
            yield from packer.add(doc_id, tokens)
        yield from packer.finish()


class WriteShardsSummary(beam.DoFn):
    """All shard records, grouped under one key -> OUT/shards.json, sorted."""

    def __init__(self, out: str):
        self.out = out

    def process(self, element):
        _, records = element
        ordered = sorted(records, key=lambda r: (r["category"], r["split"], r["shard"]))
        write_bytes_atomic(join(self.out, SHARDS_RECORD), json.dumps({"shards": ordered}, indent=1).encode())
        yield len(ordered)


class WriteShards(beam.PTransform):
    """The shard stage. Its last transform writes shards.json from every shard's record, so
    it depends on every write (runners that compute only the last node still run it all)."""

    def __init__(
        self, plans: list[ShardPlan], out: str, model_path: str, shards: ShardsConfig, report_folder: str | None = None
    ):
        super().__init__()
        self.plans = plans
        self.out = out
        self.model_path = model_path
        self.shards = shards
        self.report_folder = report_folder

    def expand(self, pbegin):
        return (
            pbegin
            | "Plans" >> beam.Create(self.plans)
            | "Spread" >> beam.Reshuffle()
            | "WriteShard" >> beam.ParDo(ShardWriter(self.out, self.model_path, self.shards, self.report_folder))
            | "OneKey" >> beam.Map(lambda record: (None, record))
            | "AllRecords" >> beam.GroupByKey()
            | "WriteSummary" >> beam.ParDo(WriteShardsSummary(self.out))
        )


def shard_pipeline_options(beam_args: list[str]) -> PipelineOptions:
    """The DirectRunner runs this stage's workers as threads, one per core: sentencepiece
    releases the GIL while it encodes (about 90% of this stage's work), so threads use every
    core without the seconds and the memory that worker processes cost."""
    return default_pipeline_options(beam_args, mode="multi_threading", workers=0)


def run_shards(
    config: BuildConfig,
    out: str,
    model_path: str,
    beam_args: list[str] | None = None,
    progress: Progress | None = None,
) -> list[ShardRecord]:
    """Shard OUT's curated documents with the tokenizer at `model_path` (a sentencepiece
    model or a HF tokenizer.json, see tokenize/encoders.py); returns
    the shard records sorted by (category, split, shard)."""
    curated = shard_inputs(out)
    plans = plan_shards(curated, config.shards.target_bytes)
    if config.shards.keep_tokens:
        prepare_store(out, file_sha256(model_path))
    else:
        remove(join(out, TOKENS))
    # A previous, possibly killed, run may have left shards of another plan.
    for uri in [join(out, SHARDS_RECORD), join(out, SHARDS), *glob(join(out, PLACEMENTS_GLOB))]:
        remove(uri)
    if not plans:
        return []
    log.info("shard: %d shards from %d curated files", len(plans), sum(len(p.files) for p in plans))
    text_chars = sum(size for files in curated.values() for _, size in files)  # about: bytes, not characters
    watching = progress.stage("shards", text_chars) if progress else nullcontext()
    with watching as report_folder, beam.Pipeline(options=shard_pipeline_options(beam_args or [])) as pipeline:
        _ = pipeline | "WriteShards" >> WriteShards(plans, out, model_path, config.shards, report_folder)
    fs, path = filesystem(join(out, SHARDS_RECORD))
    with fs.open(path, "rb") as f:
        return [ShardRecord.model_validate(record) for record in json.load(f)["shards"]]
