"""The layout of a build (OUT) and of a training run (RUN): every file name, path and glob
that a writer and a reader must agree on, relative to the root (a local folder or an
object-store prefix; `strata.storage.join(root, path)` places one). Nothing else in strata
spells these names out.

    OUT/attributes/part-FFFFF-BBBBB.parquet          annotate: every per-document score
    OUT/attributes/shared_bands.parquet              annotate: MinHash bands shared by 2+ documents
    OUT/annotate.json                                annotate's record (its commit point)
    OUT/curate.json                                  select's record (curate's commit point)
    OUT/curated/<folder>/part-FFFFF-BBBBB.parquet    kept documents, one folder per category
    OUT/rejected/part-FFFFF-BBBBB.parquet            dropped and duplicate documents
    OUT/quarantine/part-FFFFF-BBBBB.parquet          malformed records
    OUT/lineage/part-FFFFF-BBBBB.parquet             curate lineage, one row per input record
    OUT/tokenizer/tokenizer.model, tokenizer.json    sentencepiece model and the stage's record
    OUT/tokenizer/hf/tokenizer.json (+ _config)      a given Hugging Face tokenizer
    OUT/shards/<folder>/{train,val}-NNNNNN.tar       WebDataset shards (+ .idx.json block index)
    OUT/lineage/shards-<folder>-NNNNNN.parquet       placements: where each kept document went
    OUT/tokens/<folder>/part-FFFFF-BBBBB.parquet     the token store: kept documents' tokens, for rebuilds
    OUT/tokens/tokens.json                           the tokenizer the store's tokens are of
    OUT/shards.json                                  the shard stage's record (its commit point)
    OUT/manifest.json                                the build's commit point, written last
    OUT/build.lock                                   held while a build runs

    RUN/run.json, RUN/metrics.jsonl, RUN/summary.json
    RUN/consumed/part-r<rank>-<first step>-<last step>.parquet
    RUN/checkpoints/step-NNNNNNNN/, RUN/checkpoints/latest
    RUN/train.lock

A file being written is hidden beside its target as `.NAME.tmp-XXXXXXXX`: no reader's glob
matches it, and `is_temporary` tells the leftovers of a killed writer.

This module imports nothing of strata, so that every layer (storage included) can use it.
"""

from __future__ import annotations

import hashlib
import re

# --------------------------------------------------------------------------- temporary names

TMP_MARK = ".tmp-"


def temporary_name(name: str, tag: str) -> str:
    """The hidden name under which `name` is written before it is renamed into place."""
    return f".{name}{TMP_MARK}{tag}"


def is_temporary(name: str) -> bool:
    """Whether a file or folder name is a temporary one (`temporary_name`)."""
    return name.startswith(".") and TMP_MARK in name


# --------------------------------------------------------------------------- the build: curate

MANIFEST = "manifest.json"
BUILD_LOCK = "build.lock"
CURATE_RECORD = "curate.json"
CURATED = "curated"
REJECTED = "rejected"
QUARANTINE = "quarantine"
LINEAGE = "lineage"  # the folder, as the manifest names it
ANNOTATE_RECORD = "annotate.json"
ATTRIBUTES = "attributes"  # annotation's per-document scores, part-<batch>.parquet
ATTRIBUTES_GLOB = f"{ATTRIBUTES}/part-*.parquet"
SHARED_BANDS = f"{ATTRIBUTES}/shared_bands.parquet"  # (band key, node) of bands two or more documents share
SELECT_OUTPUTS = (CURATED, REJECTED, QUARANTINE, LINEAGE)
CURATE_LINEAGE_GLOB = f"{LINEAGE}/part-*.parquet"
PARQUET_GLOB = "*.parquet"


def category_folder(category: str) -> str:
    """A category name as a path segment. A name that needs changing gets a short hash of
    itself, so two names never share a folder: 'Gutenberg (PG-19)' -> 'Gutenberg_PG-19-4c1a5e'."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", category).strip("_")
    if slug == category and slug.strip("."):
        return slug
    return f"{slug}-{hashlib.blake2b(category.encode(), digest_size=3).hexdigest()}"


def curated_folder(category: str) -> str:
    """A category's folder of kept documents, relative to OUT (curate.json records it)."""
    return f"{CURATED}/{category_folder(category)}"


CATEGORY_PARTS_GLOB = f"*/{PARQUET_GLOB}"  # every category's files, relative to OUT/curated


def batch_part(output: str, batch: str) -> str:
    """The file of one curate batch in `output` (curated/<folder>, rejected, quarantine,
    lineage), relative to OUT."""
    return f"{output}/part-{batch}.parquet"


def attributes_part(batch: str) -> str:
    return batch_part(ATTRIBUTES, batch)


# --------------------------------------------------------------------------- the build: tokenizer

TOKENIZER_DIR = "tokenizer"
MODEL_FILE = "tokenizer.model"  # in the tokenizer's folder, as the tokenizer stage writes them
RECORD_FILE = "tokenizer.json"
TOKENIZER_MODEL = f"{TOKENIZER_DIR}/{MODEL_FILE}"
TOKENIZER_RECORD = f"{TOKENIZER_DIR}/{RECORD_FILE}"
HF_TOKENIZER = f"{TOKENIZER_DIR}/hf/tokenizer.json"  # a given HF tokenizer, with its config beside it
HF_TOKENIZER_CONFIG = f"{TOKENIZER_DIR}/hf/tokenizer_config.json"


# --------------------------------------------------------------------------- the build: shards

SHARDS = "shards"
TOKENS = "tokens"  # the token store (pipeline/token_store.py)
TOKENS_RECORD = f"{TOKENS}/tokens.json"
SHARDS_RECORD = "shards.json"
PLACEMENTS_GLOB = f"{LINEAGE}/shards-*.parquet"
KEY_STEM_CHARS = 48


def shard_path(folder: str, split: str, shard: int) -> str:
    """A tar's path relative to OUT."""
    return f"{SHARDS}/{folder}/{split}-{shard:06d}.tar"


def index_path(tar_path: str) -> str:
    """The block-index sidecar of a tar."""
    return tar_path.removesuffix(".tar") + ".idx.json"


def key_prefix(folder: str, split: str, shard: int) -> str:
    """Block keys are this + _<block:06d>: no dots, and short enough for USTAR names."""
    return f"{folder.replace('.', '-')[:KEY_STEM_CHARS]}_{split}_{shard:06d}"


def block_key(prefix: str, block: int) -> str:
    return f"{prefix}_{block:06d}"


def placements_path(folder: str, shard: int) -> str:
    """The placements of one shard plan's documents, relative to OUT."""
    return f"{LINEAGE}/shards-{folder}-{shard:06d}.parquet"


# --------------------------------------------------------------------------- a training run

RUN_RECORD = "run.json"
METRICS = "metrics.jsonl"
RUN_SUMMARY = "summary.json"
RUN_LOCK = "train.lock"
CONSUMED = "consumed"
CONSUMED_GLOB = f"{CONSUMED}/part-r*.parquet"
CHECKPOINTS = "checkpoints"
LATEST_CHECKPOINT = "latest"  # a file in CHECKPOINTS naming the last complete checkpoint
CHECKPOINT_GLOB = "step-*"
CHECKPOINT_META = "meta.json"
_CONSUMED_PART = re.compile(r"part-r(\d+)-(\d+)-(\d+)\.parquet$")
_CONSUMED_LEFTOVER = re.compile(r"^\.part-r(\d+)-")


def consumed_part(rank: int, first: int, last: int) -> str:
    """A consumed-lineage part: rank `rank`'s steps first..last, relative to RUN."""
    return f"{CONSUMED}/part-r{rank:05d}-{first:09d}-{last:09d}.parquet"


def consumed_part_steps(uri: str) -> tuple[int, int, int]:
    """(rank, first step, last step) of a consumed part's name."""
    found = _CONSUMED_PART.search(uri)
    if found is None:
        raise ValueError(f"{uri}: not a consumed-lineage part")
    rank, first, last = map(int, found.groups())
    return rank, first, last


def consumed_leftover_rank(name: str) -> int | None:
    """The rank whose killed write left the temporary file `name`, or None if it is not one."""
    found = _CONSUMED_LEFTOVER.search(name)
    return int(found[1]) if found and is_temporary(name) else None


def checkpoint_name(step: int) -> str:
    """A checkpoint's folder in RUN/checkpoints."""
    return f"step-{step:08d}"
