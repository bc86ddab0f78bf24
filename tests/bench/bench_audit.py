"""Audit and trace benchmark: `strata audit` and `strata trace` on a lineage of 10 million rows.

    python tests/bench/bench_audit.py [--rows 10000000] [--out DIR]      (with strata's venv)

1. a synthetic build and run in a temporary folder (or --out DIR, kept and reused when it
   holds data of the same size), made with numpy and written by strata's own Parquet writer:
     OUT/lineage/part-FFFFF-BBBBB.parquet  --rows curate lineage rows (LINEAGE_SCHEMA) from
                                           100 input files, in batches of up to 4,096 as
                                           curate writes them: 4 sources, 6 categories, kept
                                           70%, dropped 15% (filter, language and quality
                                           reasons), duplicate 12% (exact, near),
                                           quarantined 3%; log-normal sizes, 9 languages
     OUT/lineage/shards-*.parquet          placements of the kept documents (~0.27 tokens a
                                           byte, 0.8% to val) in 65,536-token blocks, 2,048
                                           blocks a shard
     OUT/manifest.json                     the categories, shares and shards of all that
     RUN/consumed/part-r*.parquet          about --rows pieces: 8 ranks, 512 windows of 2,049
                                           tokens a step, categories drawn by share, each
                                           category's stream read pass after pass
     RUN/run.json, RUN/metrics.jsonl
2. times, each in a fresh process (`python -m strata.cli ...`, start-up included), its
   wall time and peak RSS (ru_maxrss from os.wait4, in a small parent process of its own):
   `audit OUT --html`, `audit RUN`, `trace OUT DOC_ID --run RUN` (a kept document from the
   middle of the lineage) and `trace --run RUN --step N`; the target is under 5 s each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from strata.manifests.manifest import SCHEMA_VERSION, Manifest, TokenizerEntry
from strata.manifests.schemas import CONSUMED_SCHEMA, LINEAGE_SCHEMA, PLACEMENTS_SCHEMA
from strata.pipeline.write import write_table

TARGET_SECONDS = 5.0
INPUT_FILES, BATCH = 100, 4096
SOURCES = ("pile", "web", "code", "books")
CATEGORIES = {"Pile-CC": 0.3, "Github": 0.2, "ArXiv": 0.15, "Books3": 0.15, "Wikipedia (en)": 0.1, "StackExchange": 0.1}
FILTER_REASONS = ("gopher_quality:min_words", "gopher_quality:alpha_words", "gopher_quality:stop_words",
                  "gopher_repetition:dup_line_frac", "gopher_repetition:top_2gram", "c4:lorem_ipsum", "c4:curly_brace")
QUARANTINE_REASONS = ("invalid_json", "invalid_utf8", "missing_text", "empty_text", "text_too_large")
OUTCOMES = [  # (fate, stage, reason, share of the records)
    ("kept", None, None, 0.70),
    *[("quarantined", "validate", reason, 0.03 / len(QUARANTINE_REASONS)) for reason in QUARANTINE_REASONS],
    *[("dropped", "filter", reason, 0.07 / len(FILTER_REASONS)) for reason in FILTER_REASONS],
    ("dropped", "language", "language:low_score", 0.04),
    ("dropped", "language", "language:not_in_languages", 0.02),
    ("dropped", "quality", "quality:low_score", 0.02),
    ("duplicate", "exact_dedup", "exact_duplicate", 0.036),
    ("duplicate", "near_dedup", "near_duplicate", 0.084),
]
LANGUAGES = {"en": 0.85, "de": 0.03, "fr": 0.03, "es": 0.03, "zh": 0.02, "ru": 0.01, "ja": 0.01, "it": 0.01, "pl": 0.01}
TOKENS_PER_BYTE, BLOCK_TOKENS, SHARD_BLOCKS, VAL_FRACTION = 0.27, 65536, 2048, 0.008
WORLD, GLOBAL_BATCH, SEQ_LEN, STEPS_PER_PART = 8, 512, 2048, 100
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


# --------------------------------------------------------------------------- generation


def hex_strings(rng: np.random.Generator, n: int) -> pa.Array:
    """n random 32-hex-digit strings (128-bit ids), built as one Arrow buffer."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    chars = np.empty((n, 32), dtype=np.uint8)
    chars[:, 0::2], chars[:, 1::2] = HEX[raw >> 4], HEX[raw & 15]
    offsets = np.arange(0, 32 * n + 1, 32, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars)).cast(pa.string())


def strings(codes: np.ndarray, values: list, mask: np.ndarray | None = None) -> pa.Array:
    """values[codes] as a plain string column; null where `mask` or where the value is None."""
    indices = pa.array(codes.astype(np.int32), mask=mask)
    return pa.DictionaryArray.from_arrays(indices, pa.array(values, pa.string())).cast(pa.string())


def choose(rng: np.random.Generator, weights, n: int) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def lineage(rng: np.random.Generator, rows: int) -> pa.Table:
    """Curate lineage rows: INPUT_FILES files in SOURCES, outcomes drawn by OUTCOMES' shares."""
    outcome = choose(rng, [o[3] for o in OUTCOMES], rows)
    kept, quarantined, duplicate, near = (
        np.array([test(o) for o in OUTCOMES])[outcome]
        for test in (lambda o: o[0] == "kept", lambda o: o[0] == "quarantined", lambda o: o[0] == "duplicate",
                     lambda o: o[1] == "near_dedup")
    )
    unidentified = np.array([o[1] in ("validate", "filter") for o in OUTCOMES])[outcome]  # before language ID
    per_file = -(-rows // INPUT_FILES)
    file_of = np.arange(rows) // per_file
    uris = [f"s3://corpus/{SOURCES[f % len(SOURCES)]}/part-{f:05d}.jsonl.zst" for f in range(INPUT_FILES)]
    text_bytes = np.maximum(1, rng.lognormal(np.log(3000), 1.2, rows)).astype(np.int64)
    doc_id = hex_strings(rng, rows)
    duplicate_of = pa.array(doc_id.take(np.flatnonzero(kept)[rng.integers(0, kept.sum(), rows)]), mask=~duplicate)
    return pa.table(
        {
            "doc_id": doc_id,
            "source": strings(file_of % len(SOURCES), list(SOURCES)),
            "uri": strings(file_of, uris),
            "record_index": np.arange(rows) - file_of * per_file,
            "category": strings(choose(rng, list(CATEGORIES.values()), rows), list(CATEGORIES), quarantined),
            "raw_bytes": text_bytes + 60,
            "text_bytes": pa.array(text_bytes, mask=quarantined),
            "content_hash": hex_strings(rng, rows),
            "fate": strings(outcome, [o[0] for o in OUTCOMES]),
            "stage": strings(outcome, [o[1] for o in OUTCOMES]),
            "reason": strings(outcome, [o[2] for o in OUTCOMES]),
            "duplicate_of": duplicate_of,
            "cluster_id": pa.array(duplicate_of, mask=~near),
            "language": strings(choose(rng, list(LANGUAGES.values()), rows), list(LANGUAGES), unidentified),
            "language_score": pa.array(rng.uniform(0.6, 1, rows).astype(np.float32), mask=unidentified),
            "quality_score": pa.nulls(rows, pa.float32()),
            "config_hash": strings(np.zeros(rows, dtype=np.int64), ["ab" * 32]),
        },
        schema=LINEAGE_SCHEMA,
    )


def pieces(starts: np.ndarray, ends: np.ndarray, block: int) -> tuple[np.ndarray, ...]:
    """Token ranges [start, end) of a stream cut into blocks of `block` tokens: (range
    index, block, start and end within the block) of every piece."""
    first, last = starts // block, (ends - 1) // block
    count = last - first + 1
    index = np.repeat(np.arange(len(starts)), count)
    blocks = first[index] + np.arange(len(index)) - np.repeat(np.cumsum(count) - count, count)
    low = np.maximum(starts[index], blocks * block) - blocks * block
    high = np.minimum(ends[index], (blocks + 1) * block) - blocks * block
    return index, blocks, low, high


def folder(category: str) -> str:
    return category.replace(" ", "_").replace("(", "").replace(")", "")


def block_key(category: str, split: str, block: int) -> str:
    return f"{folder(category)}_{split}_{block // SHARD_BLOCKS:06d}_{block % SHARD_BLOCKS:06d}"


def shard_path(category: str, split: str, block: int) -> str:
    return f"shards/{folder(category)}/{split}-{block // SHARD_BLOCKS:06d}.tar"


def placements(table: pa.Table, rng: np.random.Generator) -> tuple[dict, dict[str, pa.Table]]:
    """(manifest categories, placements per lineage/shards-<folder>-NNNNNN.parquet name): the
    kept documents of each category and split, in lineage order, cut into blocks."""
    kept = table.filter(pc.equal(table.column("fate"), "kept"))
    category = kept.column("category").to_numpy(zero_copy_only=False)
    text_bytes = kept.column("text_bytes").to_numpy()
    tokens = (text_bytes * TOKENS_PER_BYTE).astype(np.int64) + 2
    val = rng.random(kept.num_rows) < VAL_FRACTION
    categories, files = {}, {}
    for name, share in CATEGORIES.items():
        entry = {"config": {"weight": share}, "share": share, "planned_epochs": None, "curated": f"curated/{folder(name)}",
                 "docs": int((category == name).sum()), "bytes": int(text_bytes[category == name].sum()), "shards": []}
        for split in ("train", "val"):
            rows = np.flatnonzero((category == name) & (val == (split == "val")))
            ends = np.cumsum(tokens[rows])
            index, blocks, low, high = pieces(ends - tokens[rows], ends, BLOCK_TOKENS)
            entry["tokens" if split == "train" else "val_tokens"] = int(ends[-1])
            for shard in range(int(blocks[-1]) // SHARD_BLOCKS + 1):
                mine = blocks // SHARD_BLOCKS == shard
                first = shard * SHARD_BLOCKS
                path = shard_path(name, split, first)
                keys = [block_key(name, split, b) for b in range(first, int(blocks[mine][-1]) + 1)]
                n = int(mine.sum())
                part = pa.table(
                    {"doc_id": kept.column("doc_id").take(rows[index[mine]]), "category": [name] * n,
                     "split": [split] * n, "shard": [path] * n, "block_key": strings(blocks[mine] - first, keys),
                     "token_start": low[mine], "token_end": high[mine]},
                    schema=PLACEMENTS_SCHEMA,
                )
                name_of_file = f"shards-{folder(name)}-{shard:06d}.parquet"  # both splits of a shard, as strata does
                files[name_of_file] = pa.concat_tables([files[name_of_file], part]) if name_of_file in files else part
                shard_tokens = int((high - low)[mine].sum())
                entry["shards"].append(
                    {"category": name, "split": split, "shard": shard, "path": path, "index": path[:-4] + ".idx.json",
                     "index_sha256": "0" * 64, "sha256": "0" * 64, "bytes": 2 * shard_tokens, "blocks": len(keys),
                     "tokens": shard_tokens, "docs": len(np.unique(index[mine]))}
                )
        categories[name] = entry
    return categories, files


def consumed(categories: dict, rows: int, rng: np.random.Generator) -> pa.Table:
    """About `rows` pieces of windows drawn by share, each category's train stream read in
    passes (blocks in order: the layout, not the shuffle, is what a look-up sees)."""
    windows = int(rows / 1.03) // GLOBAL_BATCH * GLOBAL_BATCH
    category = choose(rng, [c["share"] for c in categories.values()], windows)
    columns = []
    for c, (name, entry) in enumerate(categories.items()):
        ids = np.flatnonzero(category == c)
        total = entry["tokens"]
        start = np.arange(len(ids)) * SEQ_LEN % total  # the category's u-th window
        wrap = start + SEQ_LEN + 1 > total  # runs on into the next pass
        starts = np.concatenate([start, np.zeros(wrap.sum(), dtype=np.int64)])
        ends = np.concatenate([np.minimum(start + SEQ_LEN + 1, total), start[wrap] + SEQ_LEN + 1 - total])
        index, blocks, low, high = pieces(starts, ends, BLOCK_TOKENS)
        keys = [block_key(name, "train", b) for b in range(int(blocks.max()) + 1)]
        shards = [shard_path(name, "train", b) for b in range(int(blocks.max()) + 1)]
        sample_id = np.concatenate([ids, ids[wrap]])[index]
        columns.append((sample_id, strings(blocks, keys), strings(blocks, shards), low, high))
    sample_id, keys, shards, low, high = (
        pa.chunked_array(c) if isinstance(c[0], pa.Array) else np.concatenate(c) for c in zip(*columns)
    )
    rank = (sample_id % GLOBAL_BATCH) // (GLOBAL_BATCH // WORLD)
    table = pa.table(
        {"step": sample_id // GLOBAL_BATCH, "rank": rank.astype(np.int32), "sample_id": sample_id, "block_key": keys,
         "shard": shards, "token_start": low, "token_end": high},
        schema=CONSUMED_SCHEMA,
    )
    return table.take(np.argsort(sample_id, kind="stable"))


def consumed_parts(table: pa.Table) -> dict[str, pa.Table]:
    """The pieces as a trainer writes them: consumed/part-r<rank>-<first>-<last>.parquet,
    each rank's steps in parts of STEPS_PER_PART."""
    step, rank = table.column("step").to_numpy(), table.column("rank").to_numpy()
    part = rank.astype(np.int64) * (step.max() + 1) + step // STEPS_PER_PART
    order = np.argsort(part, kind="stable")
    table, part = table.take(order), part[order]
    bounds = np.flatnonzero(np.diff(part)) + 1
    parts = {}
    for low, high in zip(np.r_[0, bounds], np.r_[bounds, len(part)]):
        chunk = table.slice(low, high - low)
        r, first, last = chunk["rank"][0].as_py(), chunk["step"][0].as_py(), chunk["step"][-1].as_py()
        parts[f"consumed/part-r{r:05d}-{first:09d}-{last:09d}.parquet"] = chunk
    return parts


def metrics_lines(steps: int, categories: list[str]) -> str:
    rows = []
    for s in range(0, steps, 10):
        rows.append({"kind": "train", "step": s, "loss": 8 / (1 + s / 2000), "lr": 3e-4,
                     "tokens": s * GLOBAL_BATCH * SEQ_LEN, "tokens_per_s": 1e5, "time": s})
        if s % 500 == 0:
            rows += [{"kind": "val", "step": s, "category": name, "loss": 8.2 / (1 + s / 2500), "perplexity": 1.0,
                      "tokens": 65536} for name in [*categories, "all"]]
    return "".join(json.dumps(row) + "\n" for row in rows)


def write_all(root: Path, named: dict[str, pa.Table]) -> None:
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(lambda item: write_table(str(root / item[0]), item[1]), named.items()))


def generate(root: Path, rows: int, seed: int = 0) -> dict:
    """Writes root/out (a build's lineage and manifest) and root/run; returns the facts
    the timing needs (root/bench.json)."""
    rng = np.random.default_rng(seed)
    out, run = root / "out", root / "run"
    table = lineage(rng, rows)
    per_file = -(-rows // INPUT_FILES)
    write_all(out, {
        f"lineage/part-{start // per_file:05d}-{(start % per_file) // BATCH:05d}.parquet":
            table.slice(start, min(BATCH, per_file - start % per_file))
        for f in range(INPUT_FILES) for start in range(f * per_file, min((f + 1) * per_file, rows), BATCH)
    })
    categories, files = placements(table, rng)
    write_all(out, {f"lineage/{name}": part for name, part in files.items()})
    tokenizer = TokenizerEntry(path="tokenizer/tokenizer.model", record="", sha256="0" * 64, type="bpe", vocab_size=32000,
                               special_ids={}, trained=False)
    Manifest(schema_version=SCHEMA_VERSION, strata_version="bench", strata_commit=None, config_hash="ab" * 32, config={},
             inputs=[], records=rows, fates={}, stages={}, budget_tokens=None, tokenizer=tokenizer,
             categories=categories, lineage="lineage").write(str(out))
    pieces_table = consumed(categories, rows, rng)
    write_all(run, consumed_parts(pieces_table))
    steps = pieces_table["step"][-1].as_py() + 1
    spec = {"data": str(out), "objective": "clm", "seed": seed, "seq_len": SEQ_LEN, "global_batch": GLOBAL_BATCH,
            "steps": steps, "shares": {n: c["share"] for n, c in categories.items()}, "window_tokens": SEQ_LEN + 1}
    (run / "run.json").write_text(json.dumps(spec))
    (run / "metrics.jsonl").write_text(metrics_lines(steps, list(categories)))
    middle = table.slice(rows // 2)
    facts = {"rows": rows, "placements": sum(t.num_rows for t in files.values()), "consumed": pieces_table.num_rows,
             "doc_id": middle.filter(pc.equal(middle["fate"], "kept"))["doc_id"][0].as_py(), "step": steps // 2}
    (root / "bench.json").write_text(json.dumps(facts))
    return facts


# --------------------------------------------------------------------------- timing


# Runs argv[2:] and writes [wall seconds, exit code, peak RSS in KiB] to argv[1]. A small
# process of its own: a child's ru_maxrss starts from its parent's RSS at fork (Linux keeps
# it across exec), so forking the command from this big process would count this process.
MEASURE = """
import json, os, subprocess, sys, time
started = time.perf_counter()
process = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(process.pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump([time.perf_counter() - started, os.waitstatus_to_exitcode(status), usage.ru_maxrss], f)
"""


def timed(args: list[str], log: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of `python -m strata.cli ARGS` in a fresh process."""
    result = log.with_suffix(".json")
    with open(log, "wb") as output:
        command = [sys.executable, "-c", MEASURE, str(result), sys.executable, "-m", "strata.cli", *args]
        subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, check=True)
    wall, code, max_rss_kib = json.loads(result.read_text())
    if code:
        raise SystemExit(f"bench: strata {' '.join(args)} failed ({code}):\n{log.read_text()[-3000:]}")
    return wall, max_rss_kib / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="curate lineage rows (and about as many consumed)")
    parser.add_argument("--out", type=Path, help="keep the data here (reused when it has as many rows)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="strata-bench-audit-") as scratch:
        root = args.out or Path(scratch)
        facts_file = root / "bench.json"
        facts = json.loads(facts_file.read_text()) if facts_file.exists() else None
        if not facts or facts["rows"] != args.rows:
            print(f"generating {args.rows:,} lineage rows in {root} ...", flush=True)
            started = time.perf_counter()
            facts = generate(root, args.rows)
            print(f"generated in {time.perf_counter() - started:.0f}s: {facts['placements']:,} placements, "
                  f"{facts['consumed']:,} consumed pieces", flush=True)
        out, run = str(root / "out"), str(root / "run")
        runs = [
            ("audit", "build", f"rows={facts['rows']:,}", ["audit", out, "--html", str(root / "audit.html")]),
            ("audit", "run", f"rows={facts['consumed']:,}", ["audit", run]),
            ("trace", "doc_id", f"rows={facts['rows']:,}", ["trace", out, facts["doc_id"], "--run", run]),
            ("trace", "--step", f"rows={facts['consumed']:,}", ["trace", "--run", run, "--step", str(facts["step"])]),
        ]
        for command, what, rows, cli in runs:
            wall, rss = timed(cli, root / f"{command}-{what.strip('-')}.log")
            verdict = "" if wall < TARGET_SECONDS else "  MISSED"
            target = f"(target < {TARGET_SECONDS:.0f} s){verdict}"
            print(f"{command:<6} {what:<7} {rows} wall={wall:.2f}s peak_rss={rss:.0f} MB {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
