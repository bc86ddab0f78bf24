"""Shard-stage benchmark: encoding throughput against plain sentencepiece, and tar overhead.

    python tests/bench/bench_shard.py [--target-mb 2] [--block-tokens 65536] [--copies 1] [-- BEAM_ARGS...]

1. the curated bench corpus, made when missing with
   `strata build out/bench/corpus-60mb/strata.yaml --out out/bench/shard-build --until curate`;
2. a 32k BPE sentencepiece model trained on its curated text (out/bench/shard-sp32k.model,
   made once; sentencepiece directly, input_sentence_size capped);
3. plain sentencepiece: `encode(batch, add_eos=True, num_threads=1)` over every curated
   document, 256 per call, in this one process, texts already in memory -> tokens/s; timed
   before and after the stage's runs, their mean taken (this machine's speed drifts by
   10-15% over a minute);
4. the stage's own work without Beam: ShardWriter on every shard plan in this process;
5. `run_shards` on the same documents (the stage's default: DirectRunner, one worker thread
   per core, unless BEAM_ARGS say otherwise), timed whole: Beam start-up, reads, encoding,
   packing, tars, lineage;
6. prints shard tokens/s, per core (tokens/s / cores used), its ratio to plain encoding
   (target >= 0.9), the same ratio on CPU time (robust to other load on the machine), and
   the bytes of all tars against the raw token bytes (tokens x dtype size) with what the
   overhead is made of (target <= 5%).

The bench corpus is small (~10 core-seconds of encoding): Beam's start/stop and the
DirectRunner's static split of ~15 shards over the workers weigh on the ratio. --copies N
shards N copies of the curated files (symlinks in out/bench/shard-build-xN) to see the
stage where they are amortized. Small shards (--target-mb) spread the work; each tar also
ends with 1-10 KiB of end-of-archive padding, printed apart. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from strata_venv import STRATA_VENV, run_in_strata_venv  # noqa: E402

if __name__ == "__main__":
    run_in_strata_venv(__file__)

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import sentencepiece as spm  # noqa: E402

from strata.config import parse_config  # noqa: E402
from strata.manifests.block_codec import token_dtype  # noqa: E402
from strata.pipeline.shard import ShardWriter, plan_shards, run_shards, shard_inputs  # noqa: E402

BUILD = REPO / "out" / "bench" / "shard-build"
CORPUS_CONFIG = REPO / "out" / "bench" / "corpus-60mb" / "strata.yaml"
MODEL = REPO / "out" / "bench" / "shard-sp32k.model"
STRATA = STRATA_VENV / "bin" / "strata"
ENCODE_BATCH_DOCS = 256
TRAINING_LINES = 400_000


def ensure_curated(build: Path) -> None:
    if (build / "curate.json").exists():
        return
    print(f"making the curated corpus in {build} ...", flush=True)
    subprocess.run([str(STRATA), "build", str(CORPUS_CONFIG), "--out", str(build), "--until", "curate"], check=True)


def curated_texts(build: Path) -> list[str]:
    """Every curated document's text, in the order the shard stage reads them."""
    texts = []
    for files in shard_inputs(str(build)).values():
        for uri, _ in files:
            texts += pq.read_table(uri, columns=["text"]).column("text").to_pylist()
    return texts


def ensure_model(model: Path, texts: list[str]) -> None:
    if model.exists():
        return
    print(f"training a 32k BPE sentencepiece model into {model} ...", flush=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as sample:
        for text in texts:
            sample.writelines(line + "\n" for line in text.splitlines() if line.strip())
        sample.flush()
        spm.SentencePieceTrainer.train(
            input=sample.name, model_prefix=str(model.with_suffix("")), model_type="bpe", vocab_size=32000,
            input_sentence_size=TRAINING_LINES, shuffle_input_sentence=True, byte_fallback=True,
            pad_id=0, unk_id=1, bos_id=2, eos_id=3, num_threads=os.cpu_count(), minloglevel=2,
        )


def cpu_seconds() -> float:
    """User + system CPU time of this process, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def plain_encode(model: Path, texts: list[str]) -> tuple[int, float, float]:
    """(tokens, seconds, CPU seconds) of sentencepiece alone, one process, one thread."""
    sp = spm.SentencePieceProcessor(model_file=str(model))
    tokens = 0
    started, cpu = time.perf_counter(), cpu_seconds()
    for i in range(0, len(texts), ENCODE_BATCH_DOCS):
        tokens += sum(len(ids) for ids in sp.encode(texts[i : i + ENCODE_BATCH_DOCS], add_eos=True, num_threads=1))
    return tokens, time.perf_counter() - started, cpu_seconds() - cpu


def tar_overhead(build: Path, records: list[dict]) -> dict[str, int]:
    """Bytes of every tar beyond the raw tokens, by kind."""
    parts = dict.fromkeys(("tar headers", "member padding", "npy headers", "offsets", "json", "end of archive"), 0)
    for record in records:
        path = build / record["path"]
        with tarfile.open(path) as tar:
            members = tar.getmembers()
            for m in members:
                parts["tar headers"] += 512
                parts["member padding"] += -m.size % 512
                if m.name.endswith(".json"):
                    parts["json"] += m.size
                else:
                    array = np.load(io.BytesIO(tar.extractfile(m).read()), allow_pickle=False)
                    parts["npy headers"] += m.size - array.nbytes
                    if m.name.endswith(".offsets.npy"):
                        parts["offsets"] += array.nbytes
        last = members[-1]
        parts["end of archive"] += record["bytes"] - (last.offset_data + last.size + -last.size % 512)
    return parts


def repeated_build(build: Path, copies: int) -> Path:
    """An OUT whose curated folders hold `copies` links to each curated file of `build`."""
    if copies == 1:
        return build
    repeated = build.with_name(f"{build.name}-x{copies}")
    if not (repeated / "curate.json").exists():
        for source in sorted((build / "curated").glob("*/*.parquet")):
            folder = repeated / "curated" / source.parent.name
            folder.mkdir(parents=True, exist_ok=True)
            for copy in range(copies):
                (folder / f"{source.stem}-{copy:03d}.parquet").symlink_to(source.resolve())
        (repeated / "curate.json").write_bytes((build / "curate.json").read_bytes())
    return repeated


def shard_in_process(build: Path, model: Path, config) -> tuple[int, float]:
    """(tokens, seconds) of the stage's own work, without Beam: ShardWriter on every plan,
    one after the other in this process, writing into a scratch OUT (without the token
    store, which lives beside the curated files)."""
    plans = plan_shards(shard_inputs(str(build)), config.shards.target_bytes)
    with tempfile.TemporaryDirectory(dir=build.parent) as scratch:
        writer = ShardWriter(scratch, str(model), config.shards.model_copy(update={"keep_tokens": False}))
        started = time.perf_counter()
        writer.setup()
        tokens = sum(record["tokens"] for plan in plans for record in writer.process(plan))
        return tokens, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, default=BUILD, help="an OUT holding curate.json and curated/")
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--target-mb", type=float, default=2.0, help="shards.target_bytes in MB (spread over cores)")
    parser.add_argument("--block-tokens", type=int, default=65536)
    parser.add_argument("--copies", type=int, default=1, help="shard this many copies of the curated corpus")
    argv = sys.argv[1:] if argv is None else argv
    beam_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)

    ensure_curated(args.build)
    texts = curated_texts(args.build)
    ensure_model(args.model, texts)
    build = repeated_build(args.build, args.copies)
    text_mb = sum(len(t.encode()) for t in texts) / 1e6 * args.copies
    load = os.getloadavg()[0]

    plain_tokens, plain_before, plain_cpu_before = plain_encode(args.model, texts)

    config = parse_config(
        {
            "sources": [{"name": "bench", "format": "pile", "paths": ["unused"], "category_field": "pile"}],
            "shards": {"block_tokens": args.block_tokens, "target_bytes": int(args.target_mb * 1e6)},
        }
    )
    alone_tokens, alone_seconds = shard_in_process(build, args.model, config)
    cores = next((int(a.split("=")[1]) for a in beam_args if a.startswith("--direct_num_workers=")), 0) or os.cpu_count()
    shutil.rmtree(build / "tokens", ignore_errors=True)  # the stage as a first build runs it: it encodes everything
    started, cpu = time.perf_counter(), cpu_seconds()
    records = [r.to_dict() for r in run_shards(config, str(build), str(args.model), beam_args)]
    shard_seconds, shard_cpu = time.perf_counter() - started, cpu_seconds() - cpu
    tokens = sum(r["tokens"] for r in records)
    _, plain_after, plain_cpu_after = plain_encode(args.model, texts)
    plain_seconds, plain_cpu = (plain_before + plain_after) / 2, (plain_cpu_before + plain_cpu_after) / 2
    plain_rate = plain_tokens / plain_seconds
    assert tokens == alone_tokens == plain_tokens * args.copies, (tokens, alone_tokens, plain_tokens)
    shard_rate = tokens / shard_seconds

    itemsize = token_dtype(spm.SentencePieceProcessor(model_file=str(args.model)).vocab_size()).itemsize
    tar_bytes = sum(r["bytes"] for r in records)
    raw_bytes = tokens * itemsize
    blocks = sum(r["blocks"] for r in records)
    parts = tar_overhead(build, records)
    assert sum(parts.values()) == tar_bytes - raw_bytes

    print(f"machine    cores={os.cpu_count()}  load average at start={load:.2f}, at end={os.getloadavg()[0]:.2f}")
    print(
        f"corpus     {build.relative_to(REPO) if build.is_relative_to(REPO) else build}: docs={len(texts) * args.copies}  "
        f"text={text_mb:.1f} MB  tokens={tokens}  ({text_mb * 1e6 / tokens:.2f} text bytes/token)"
    )
    print(f"encode     plain sentencepiece, 1 process, num_threads=1: {plain_seconds:.2f}s (before the stage "
          f"{plain_before:.2f}s, after {plain_after:.2f}s)  tokens/s={plain_rate:,.0f}")
    print(
        f"shard-1p   ShardWriter in this process, no Beam: {alone_seconds:.2f}s  tokens/s={alone_tokens / alone_seconds:,.0f}  "
        f"ratio to plain encode={alone_tokens / alone_seconds / plain_rate:.2f}"
    )
    print(
        f"shard      run_shards: {shard_seconds:.2f}s  tars={len(records)}  blocks={blocks}  "
        f"tokens/s={shard_rate:,.0f}  cores={cores}  tokens/s/core={shard_rate / cores:,.0f}  "
        f"(Beam start/stop and imbalance ~{shard_seconds - alone_seconds / cores:.1f}s)"
    )
    print(f"ratio      shard tokens/s per core / plain encode tokens/s = {shard_rate / cores / plain_rate:.2f}  (target >= 0.9)")
    print(
        f"ratio-cpu  shard tokens per CPU-second / plain encode's = {tokens / shard_cpu / (plain_tokens / plain_cpu):.2f}  "
        f"(CPU time counts only the work done, whatever else runs on the machine; shard CPU {shard_cpu:.1f}s in-process "
        "threads: valid for the default thread runner)"
    )
    print(
        f"size       tars={tar_bytes:,} B  raw tokens={raw_bytes:,} B ({tokens} x {itemsize} B)  "
        f"overhead={100 * (tar_bytes - raw_bytes) / raw_bytes:.2f}%  (target <= 5%)"
    )
    print("overhead   " + "  ".join(f"{name}={value:,} B" for name, value in parts.items()))
    per_block = tar_bytes - raw_bytes - parts["end of archive"]
    print(
        f"           without the end of each archive (2 zero blocks + padding to 10 KiB per tar, "
        f"{len(records)} tars): {100 * per_block / raw_bytes:.2f}%"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
