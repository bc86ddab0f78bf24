"""`strata verify OUT`: every shard against the manifest, each read once from start to end.

Per shard: it exists; its size and sha256 are the manifest's; its block-index sidecar agrees
with the manifest (path, size, sha256, blocks, tokens, and the sidecar's own sha256); the
indexed blocks lie end to end from byte 0 and are followed by the two zero blocks that end a
tar; each block's bytes match the index's checksum (xxh3_64) and decode (manifests/block_codec.py:
exactly its three members with valid tar headers and npy arrays, document offsets in
order) to parseable JSON, token and document counts as indexed and token ids below the
vocabulary size. The tokenizer model's sha256 is
checked too. Local folders and object stores alike (fsspec); nothing is loaded whole.

`verify_build(OUT)` returns {build, ok, shards: [{path, category, split, blocks, ok,
problems}], tokenizer: {path, ok, problems}}; a problem is a sentence, naming the block
where there is one.
"""

from __future__ import annotations

import hashlib
import json

from strata.manifests.block_codec import TAR_END, decode_block, index_mismatches
from strata.manifests.block_index import decode_index, index_disagreements
from strata.manifests.checksums import BLOCK_CHECKSUM, block_checksum, sha256_hex, stream_sha256
from strata.manifests.manifest import Manifest, ShardRecord
from strata.manifests.paths import resolve_inside, shard_files
from strata.storage import filesystem

CHUNK = 1 << 20


def verify_build(out: str) -> dict:
    manifest = Manifest.read(out)
    vocab_size = manifest.tokenizer.vocab_size
    shards = []
    for name, category in sorted(manifest.categories.items()):
        for shard in category.shards:
            problems = verify_shard(out, shard, vocab_size)
            shards.append({"path": shard.path, "category": name, "split": shard.split, "blocks": shard.blocks,
                           "ok": not problems, "problems": problems})
    tokenizer = manifest.tokenizer
    tokenizer_problems = file_problems(resolve_inside(out, tokenizer.path, "manifest tokenizer path"), tokenizer.sha256)
    return {
        "build": out,
        "ok": not tokenizer_problems and all(s["ok"] for s in shards),
        "shards": shards,
        "tokenizer": {"path": tokenizer.path, "ok": not tokenizer_problems, "problems": tokenizer_problems},
    }


def verify_shard(out: str, shard: ShardRecord, vocab_size: int) -> list[str]:
    """What is wrong with one shard of the manifest: nothing is an empty list."""
    shard_uri, index_uri = shard_files(out, shard)
    fs, path = filesystem(shard_uri)
    if not fs.exists(path):
        return ["missing"]
    blocks, problems = index_problems(index_uri, shard)
    digest = hashlib.sha256()
    with fs.open(path, "rb") as f:
        size, block_issues = _read_blocks(f, blocks, shard, vocab_size, digest)
        rest, all_zero = _read_rest(f, digest)
    problems += block_issues
    if blocks and not problems and (rest, all_zero) != (TAR_END, True):
        problems.append(f"{rest} bytes after the last block, where {TAR_END} zero bytes end a tar")
    return problems + _size_and_hash_problems(size + rest, digest.hexdigest(), shard.bytes, shard.sha256)


def _read_blocks(f, blocks: list[dict], shard: ShardRecord, vocab_size: int, digest) -> tuple[int, list[str]]:
    """(bytes read, problems) of the indexed blocks, read in order from the start of `f`."""
    size, problems = 0, []
    for block in blocks:
        if block["offset"] != size:
            return size, problems + [f"block {block['key']} is indexed at byte {block['offset']}, not {size}"]
        data = f.read(block["length"])
        digest.update(data)
        size += len(data)
        problems += [f"block {block['key']}: {p}" for p in indexed_block_problems(data, block, shard, vocab_size)]
        if len(data) < block["length"]:
            break
    return size, problems


def _read_rest(f, digest) -> tuple[int, bool]:
    """(bytes, whether all are zero) from where `f` is to its end."""
    size, all_zero = 0, True
    while chunk := f.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        all_zero = all_zero and chunk.count(0) == len(chunk)
    return size, all_zero


def _size_and_hash_problems(size: int, sha256: str, expected_size: int | None, expected_sha256: str) -> list[str]:
    problems = []
    if expected_size is not None and size != expected_size:
        truncated = " (truncated)" if size < expected_size else ""
        problems.append(f"{size:,} bytes where the manifest has {expected_size:,}{truncated}")
    if sha256 != expected_sha256:
        problems.append(f"sha256 {sha256[:16]}... is not the manifest's {expected_sha256[:16]}...")
    return problems


def index_problems(uri: str, shard: ShardRecord) -> tuple[list[dict], list[str]]:
    """(the sidecar's blocks, what is wrong with it): no blocks if it is unusable."""
    fs, path = filesystem(uri)
    try:
        with fs.open(path, "rb") as f:
            raw = f.read()
        index = decode_index(raw)
    except FileNotFoundError:
        return [], [f"its block index {shard.index} is missing"]
    except ValueError as err:
        return [], [f"its block index {shard.index} is {err}"]
    blocks = index["blocks"]
    differ = index_disagreements(index, shard)
    if differ:
        return blocks, [f"its block index {shard.index} does not match the manifest: {differ}"]
    if sha256_hex(raw) != shard.index_sha256:
        return blocks, [f"its block index {shard.index} has sha256 {sha256_hex(raw)[:16]}..., not the manifest's"]
    return blocks, []


def indexed_block_problems(data: bytes, block: dict, shard: ShardRecord, vocab_size: int) -> list[str]:
    """What is wrong with the bytes of one indexed block."""
    if len(data) < block["length"]:
        return [f"only {len(data):,} of its {block['length']:,} bytes (the shard is truncated)"]
    problems = []
    if block_checksum(data) != block.get(BLOCK_CHECKSUM):
        problems.append(f"its bytes do not match the block index's {BLOCK_CHECKSUM} checksum")
    try:
        decoded = decode_block(data, block["key"])
        meta = json.loads(bytes(decoded.meta))
    except ValueError as err:  # a BlockFormatError, or JSON that does not parse
        return problems + [f"does not parse: {err}"]
    problems += index_mismatches(decoded, block["tokens"], block["docs"], vocab_size)
    doc_ids = len(meta.get("doc_ids", ()))
    if doc_ids != block["docs"]:
        problems.append(f"{doc_ids} doc_ids where the index has {block['docs']} documents")
    if (meta.get("category"), meta.get("split")) != (shard.category, shard.split):
        problems.append(f"its JSON says category {meta.get('category')!r}, split {meta.get('split')!r}")
    return problems


def file_problems(uri: str, sha256: str) -> list[str]:
    fs, path = filesystem(uri)
    if not fs.exists(path):
        return ["missing"]
    with fs.open(path, "rb") as f:
        size, digest = stream_sha256(f)
    return _size_and_hash_problems(size, digest, None, sha256)


def format_verify(result: dict) -> str:
    """One `BAD path: problem` line per problem, then a summary line."""
    shards = result["shards"]
    bad = [s for s in shards if not s["ok"]]
    lines = [f"BAD {s['path']}: {p}" for s in [*bad, result["tokenizer"]] for p in s["problems"]]
    checked = f"{len(shards)} shards ({sum(s['blocks'] for s in shards):,} blocks) and the tokenizer"
    summary = f"{result['build']}: {checked} checked against the manifest: "
    if result["ok"]:
        return summary + "all good"
    verdict = f"{len(bad)} bad shards ({', '.join(s['path'] for s in bad)})" if bad else "no bad shard"
    return "\n".join([*lines, summary + verdict + ("" if result["tokenizer"]["ok"] else ", a bad tokenizer")])
