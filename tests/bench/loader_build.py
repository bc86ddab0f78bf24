"""The synthetic build of bench_loader.py (made once in out/bench/loader-build, ~100 MB for
52M tokens): three categories of random-token documents (log-normal lengths, EOS-terminated),
weighted 0.5/0.3/0.2, packed by the real shard writer (pipeline/shard.py's BlockPacker and
ShardTar) into 65,536-token blocks and ~8 MB tars with block-index sidecars, plus a manifest;
beside it the same train tokens as flat uint16 files, one per category and one in all (for
the peers). Imports nothing of strata at the top: bench_loader.py also runs in the peers' venvs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "out" / "bench" / "loader-build"
LITDATA = REPO / "out" / "bench" / "loader-litdata"  # made from the build's tokens
SHARES = {"books": 0.2, "code": 0.3, "web": 0.5}
VOCAB = 32000
EOS = 3
BLOCK_TOKENS = 65536
SHARD_BLOCKS = 64  # ~8 MB of uint16 tokens per tar


def write_synthetic_build(out: Path, tokens: dict[str, int], seed: int = 0) -> None:
    """Random-token documents per category through the real shard writer, and a manifest."""
    from strata.manifests.layout import index_path, key_prefix, shard_path
    from strata.manifests.manifest import SCHEMA_VERSION, CategoryEntry, Manifest, ShardRecord, TokenizerEntry
    from strata.pipeline.shard_tar import BlockPacker, ShardTar
    from strata.storage import write_atomic

    rng = np.random.default_rng(seed)
    categories, flat = {}, []
    for category, total in sorted(tokens.items()):
        ids = rng.integers(5, VOCAB, size=total, dtype=np.uint16)
        ends = np.cumsum(np.maximum(8, rng.lognormal(6.5, 1.0, size=total // 200).astype(np.int64)))
        ends = np.append(ends[ends < total], total)
        ids[ends - 1] = EOS
        ids.tofile(out / f"{category}.bin")
        flat.append(ids)
        docs = np.split(ids, ends[:-1])
        shards, doc, shard = [], 0, 0
        while doc < len(docs):
            packer = BlockPacker(BLOCK_TOKENS, key_prefix(category, "train", shard))
            blocks = []
            while doc < len(docs) and len(blocks) < SHARD_BLOCKS:
                blocks += packer.add(f"{category}-{doc:08d}", docs[doc])
                doc += 1
            blocks += packer.finish()
            path = shard_path(category, "train", shard)
            tar = ShardTar(category, "train", shard, blocks)
            write_atomic(str(out / path), tar.write)
            index = tar.index_bytes(path)
            (out / index_path(path)).write_bytes(index)
            shards.append(
                ShardRecord(category=category, split="train", shard=shard, path=path, index=index_path(path),
                            index_sha256=hashlib.sha256(index).hexdigest(), sha256=tar.sha256, bytes=tar.bytes,
                            blocks=len(tar.index), tokens=tar.tokens, docs=tar.docs)
            )
            shard += 1
        categories[category] = CategoryEntry(
            config={"weight": SHARES[category]}, share=SHARES[category], planned_epochs=None, docs=len(docs),
            bytes=2 * total, curated="", tokens=total, val_tokens=0, shards=shards,
        )
    np.concatenate(flat).tofile(out / "train.bin")
    tokenizer = TokenizerEntry(path="", record="", sha256="", type="synthetic", vocab_size=VOCAB,
                               special_ids={"eos": EOS}, trained=False)
    Manifest(schema_version=SCHEMA_VERSION, strata_version="bench", strata_commit=None, config_hash="", config={},
             inputs=[], records=0, fates={}, stages={}, budget_tokens=None, tokenizer=tokenizer, categories=categories,
             lineage="lineage").write(str(out))


def ensure_build(total_tokens: int) -> None:
    marker = BUILD / "bench.json"
    if marker.exists() and json.loads(marker.read_text()).get("tokens") == total_tokens:
        if all((BUILD / f"{category}.bin").exists() for category in SHARES):
            return
    print(f"writing a synthetic build of {total_tokens / 1e6:.0f}M tokens to {BUILD} ...", flush=True)
    t0 = time.perf_counter()
    shutil.rmtree(BUILD, ignore_errors=True)
    shutil.rmtree(LITDATA, ignore_errors=True)  # made from the build's tokens
    BUILD.mkdir(parents=True)
    write_synthetic_build(BUILD, {c: int(total_tokens * s) for c, s in SHARES.items()})
    marker.write_text(json.dumps({"tokens": total_tokens}))
    print(f"  done in {time.perf_counter() - t0:.1f}s", flush=True)


