"""Loader benchmark: tokens/s of strata's streaming loader from local shards, against LitData,
mosaicml-streaming, a nanoGPT memmap loader and plain WebDataset on the same tokens, in the
same run.

    python tests/bench/bench_loader.py [--tokens-m 52] [--batches 3000] [--repeat 3]
                                       [--workers 0 2] [--only strata litdata mosaic ...]

1. a synthetic build (made once in out/bench/loader-build, ~100 MB): three categories of
   random-token documents (log-normal lengths, EOS-terminated), weighted 0.5/0.3/0.2,
   packed by the real shard writer (pipeline/shard.py's BlockPacker and ShardTar) into
   65,536-token blocks and ~8 MB tars with block-index sidecars, plus a manifest; beside
   it the same train tokens as flat uint16 files, one per category and one in all
   (tests/bench/loader_build.py);
2. for 0 and 2 DataLoader workers, batches of 32 windows of 1024 (+1) tokens from:
     strata      StreamingWindows + BatchLoader: mixing by share, block-level shuffle of
                 every pass, packing into windows, int64 tokens, and lineage (a
                 ConsumedWriter writes RUN/consumed Parquet every 100 steps in the loop);
                 integrity checks on: each block's xxh3_64, each shard's size, and each
                 shard's sha256 on a background thread at the lowest CPU priority
                 (train/integrity.py), with an empty record of verified shards
                 (train/verified_record.py), as on a machine's first run over the build: every
                 shard touched is hashed; the time the run then still waits for the sha256
                 (finish_checks, after the timed batches) is printed with the overhead
     strata-warm the same with the record holding every shard (out/bench/loader-cache,
                 filled once before the timed runs), as on any later run on the machine:
                 size and block checks, no sha256 pass
     strata-unverified  the same with verify=False (`strata train --no-verify`): beside
                 the two above, it gives the checks' overhead on a first and a later run
     litdata     LitData 0.2.76 in its own venv (out/bench/loader-venv, made on first use
                 with torch==2.13.0 pinned, the local CPU build): each category
                 optimized once with TokensLoader (8 MB chunks), StreamingDataset(shuffle)
                 per category, CombinedStreamingDataset(weights) for the mixing,
                 StreamingDataLoader; its uint16 batches as they come (no int64, no lineage)
     mosaic      mosaicml-streaming 0.13.0 in its own venv (out/bench/mosaic-venv, made on
                 first use: it imports torchvision, whose PyPI wheels need PyPI's torch
                 build, so that venv has torch 2.13.0+cu130 running on the CPU): each
                 category written once as MDS shards of 1025-token samples (ndarray:uint16,
                 ~8 MB, as llm-foundry stores pre-tokenized text), one Stream per category
                 with its proportion, StreamingDataset(shuffle=True, shuffle_seed=0); its
                 uint16 batches as they come
     nanogpt     nanoGPT's get_batch: a fresh np.memmap per batch, 32 random offsets, x and
                 y stacked as int64 (no mixing, no lineage, no exact resume)
     webdataset  wds.WebDataset over the same tars in order, npy decoded with np.load,
                 tokens packed into windows (no mixing, no shuffle, no lineage)
3. prints tokens/s (32 x 1024 per batch after 20 warm-up batches, the median of --repeat
   runs, the loaders taking turns, their range beside it), the CPU the main (training)
   process spent meanwhile, for strata the CPU seconds per billion tokens of all the work
   (workers and the sha256 thread included), strata's ratios and the integrity checks' overhead, and writes
   out/bench/loader-results.json.

The machine's other load matters: run it idle. The page cache is warm after the first pass.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from loader_build import BLOCK_TOKENS, BUILD, LITDATA, REPO, SHARD_BLOCKS, SHARES, ensure_build

RESULTS = REPO / "out" / "bench" / "loader-results.json"
WARM_CACHE = REPO / "out" / "bench" / "loader-cache"  # STRATA_CACHE_DIR of strata-warm
MOSAIC = REPO / "out" / "bench" / "loader-mosaic"
BATCH, SEQ_LEN = 32, 1024
WARMUP = 20


# --------------------------------------------------------------------------- the loaders (strata's venv)


SHA256_LEFT: list[float] = []  # per strata run: seconds finish_checks() waited after the timed batches


def warm_record() -> None:
    """Every shard of the build hashed into WARM_CACHE's record (nothing left to do if it is
    already there)."""
    from strata.train.data import StreamingWindows
    from strata.train.integrity import ShardVerifier
    from strata.train.verified_record import VerifiedRecord

    table = StreamingWindows(str(BUILD), seq_len=SEQ_LEN, extra_token=True, global_batch=BATCH).table
    verifier = ShardVerifier(str(BUILD), table.uris, table.paths, table.sizes, table.sha256s,
                             VerifiedRecord(WARM_CACHE / "verified"))
    verifier.touch(range(len(table.paths)))
    verifier.wait()
    print(f"record of verified shards in {WARM_CACHE}: {len(table.paths) - len(verifier.hashed)} of "
          f"{len(table.paths)} shards already there", flush=True)


def strata_batches(workers: int, run_dir: str, verify: bool = True, warm: bool = False):
    from strata.train.data import BatchLoader, ConsumedWriter, StreamingWindows

    # the machine's record of verified shards: empty (a first run) or holding them all
    os.environ["STRATA_CACHE_DIR"] = str(WARM_CACHE) if warm else os.path.join(run_dir, "cache")
    windows = StreamingWindows(str(BUILD), seq_len=SEQ_LEN, extra_token=True, global_batch=BATCH, seed=0,
                               verify=verify)
    try:
        with ConsumedWriter(run_dir, windows.shard_of, flush_every=100) as consumed:
            for batch in BatchLoader(windows, num_workers=workers):
                consumed.write(batch["step"], batch)
                yield batch["tokens"]
    finally:  # closed after the timed batches: how much of the sha256 work was still to do
        waited = time.perf_counter()
        windows.finish_checks()
        SHA256_LEFT.append(time.perf_counter() - waited)


class NanoGPT(IterableDataset):
    """nanoGPT's train.py get_batch, endless (memmap re-created per batch, as nanoGPT does
    to avoid a memory leak)."""

    def __iter__(self):
        info = get_worker_info()
        torch.manual_seed(1337 + (info.id if info else 0))
        while True:
            data = np.memmap(BUILD / "train.bin", dtype=np.uint16, mode="r")
            ix = torch.randint(len(data) - SEQ_LEN, (BATCH,))
            x = torch.stack([torch.from_numpy(data[i : i + SEQ_LEN].astype(np.int64)) for i in ix])
            y = torch.stack([torch.from_numpy(data[i + 1 : i + 1 + SEQ_LEN].astype(np.int64)) for i in ix])
            yield x, y


def nanogpt_batches(workers: int, run_dir: str):
    for x, _ in DataLoader(NanoGPT(), batch_size=None, num_workers=workers):
        yield x


def _pack(samples):
    """Tokens of the blocks, in order, cut into windows of SEQ_LEN + 1 (stride SEQ_LEN)."""
    buffer = np.empty(0, dtype=np.uint16)
    for sample in samples:
        buffer = np.concatenate([buffer, np.load(io.BytesIO(sample["tokens.npy"]), allow_pickle=False)])
        n = (len(buffer) - 1) // SEQ_LEN
        for i in range(n):
            yield torch.from_numpy(buffer[i * SEQ_LEN : i * SEQ_LEN + SEQ_LEN + 1].astype(np.int64))
        buffer = buffer[n * SEQ_LEN :]


def webdataset_batches(workers: int, run_dir: str):
    import webdataset as wds

    from strata.manifests.manifest import Manifest

    manifest = Manifest.read(str(BUILD))
    urls = [str(BUILD / s.path) for c in manifest.categories.values() for s in c.shards]
    while True:
        dataset = wds.WebDataset(urls, shardshuffle=False, empty_check=False).compose(_pack)
        dataset = dataset.batched(BATCH, collation_fn=torch.stack)
        yield from DataLoader(dataset, batch_size=None, num_workers=workers)


def children_cpu() -> float:
    """CPU seconds the live child processes (DataLoader workers) have used so far."""
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def timed(stream, batches: int, workers_cpu: Callable[[], float] | None = None) -> dict:
    """Tokens/s of `batches` batches after WARMUP; with `workers_cpu`, also the CPU seconds
    per billion tokens of all the work: start-up, warm-up, the timed batches, the workers,
    every thread of this process and what closing the stream waits for (strata's sha256)."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(WARMUP):
        first = next(stream)
    assert first.shape[0] == BATCH and first.shape[1] >= SEQ_LEN, first.shape
    t1, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(stream)
    t2, cpu = time.perf_counter(), time.process_time() - cpu
    workers = workers_cpu() if workers_cpu else 0.0
    stream.close()
    result = {"tokens_per_s": batches * BATCH * SEQ_LEN / (t2 - t1), "startup_s": t1 - t0,
              "main_cpu": cpu / (t2 - t1), "dtype": str(first.dtype)}
    if workers_cpu:
        result["cpu_s_per_gtok"] = (time.process_time() - cpu0 + workers) / ((WARMUP + batches) * BATCH * SEQ_LEN) * 1e9
    return result


# --------------------------------------------------------------------------- LitData (its own venv)


def litdata_batches(workers: int):
    """Runs in the LitData venv (no strata there)."""
    from litdata import CombinedStreamingDataset, StreamingDataLoader, StreamingDataset, TokensLoader

    categories = sorted(SHARES)
    datasets = [
        StreamingDataset(str(LITDATA / c), item_loader=TokensLoader(block_size=SEQ_LEN + 1), shuffle=True, seed=0)
        for c in categories
    ]
    mixed = CombinedStreamingDataset(datasets, weights=[SHARES[c] for c in categories], iterate_over_all=False, seed=0)
    while True:
        yield from StreamingDataLoader(mixed, batch_size=BATCH, num_workers=workers, drop_last=True)


def _litdata_pieces(item: tuple[str, int, int]):
    path, start, stop = item
    yield torch.from_numpy(np.fromfile(path, dtype=np.uint16, count=stop - start, offset=2 * start))


def ensure_litdata_data() -> None:
    """Each category's tokens through litdata.optimize, once, in 65,536-token pieces."""
    from litdata import TokensLoader, optimize

    for category in sorted(SHARES):
        output = LITDATA / category
        if (output / "index.json").exists():
            continue
        path = BUILD / f"{category}.bin"
        total = path.stat().st_size // 2
        pieces = [(str(path), start, min(start + BLOCK_TOKENS, total)) for start in range(0, total, BLOCK_TOKENS)]
        optimize(fn=_litdata_pieces, inputs=pieces, output_dir=str(output), chunk_size=SHARD_BLOCKS * BLOCK_TOKENS,
                 item_loader=TokensLoader(), num_workers=1, verbose=False)


# --------------------------------------------------------------------------- Mosaic (its own venv)


def mosaic_batches(workers: int):
    """Runs in the Mosaic venv (no strata there): one Stream per category with its
    proportion, StreamingDataset(shuffle) mixing them, uint16 batches as they come."""
    from streaming import Stream, StreamingDataset

    streams = [Stream(local=str(MOSAIC / c), proportion=SHARES[c]) for c in sorted(SHARES)]
    dataset = StreamingDataset(streams=streams, shuffle=True, shuffle_seed=0, batch_size=BATCH)
    stack = lambda samples: torch.from_numpy(np.stack([s["tokens"] for s in samples]))  # noqa: E731
    while True:
        yield from DataLoader(dataset, batch_size=BATCH, num_workers=workers, collate_fn=stack, drop_last=True)


def ensure_mosaic_data() -> None:
    """Each category's tokens as MDS shards, once, as llm-foundry stores pre-tokenized text:
    samples of SEQ_LEN + 1 tokens (column `tokens`, ndarray:uint16), ~8 MB shards."""
    from streaming import MDSWriter

    for category in sorted(SHARES):
        output = MOSAIC / category
        if (output / "index.json").exists():
            continue
        tokens = np.fromfile(BUILD / f"{category}.bin", dtype=np.uint16)
        window = SEQ_LEN + 1
        with MDSWriter(out=str(output), columns={"tokens": "ndarray:uint16"}, size_limit=1 << 23) as writer:
            for start in range(0, len(tokens) - window + 1, window):
                writer.write({"tokens": tokens[start : start + window]})


@dataclass(frozen=True)
class OtherVenv:
    """A peer installed in a venv of its own, beside strata's."""

    folder: Path
    packages: list[str]
    pypi_torch: bool  # install PyPI's torch rather than a local CPU wheel
    prepare: Callable[[], None]
    batches: Callable[[int], Iterator[torch.Tensor]]

    def python(self) -> Path:
        python = self.folder / "bin" / "python"
        if not python.exists():
            print(f"making {self.folder} with {' '.join(self.packages)} ...", flush=True)
            subprocess.run([sys.executable, "-m", "venv", str(self.folder)], check=True)
            env = dict(os.environ)
            if self.pypi_torch:
                # torchvision's ops need PyPI's (CUDA) torch build: a local CPU wheel offered
                # through find-links or an extra index would win and leave them unloadable.
                env.pop("PIP_FIND_LINKS", None)
                env["PIP_CONFIG_FILE"] = os.devnull
            install = [str(python), "-m", "pip", "install", "-q", *self.packages]
            subprocess.run(install, check=True, env=env)
        return python


OTHERS = {
    # pinned to the CPU torch strata uses, so installing LitData does not pull a CUDA build
    "litdata": OtherVenv(REPO / "out" / "bench" / "loader-venv", ["torch==2.13.0", "litdata==0.2.76"], False,
                         ensure_litdata_data, litdata_batches),
    # mosaicml-streaming imports torchvision, whose PyPI wheels need PyPI's torch build
    "mosaic": OtherVenv(REPO / "out" / "bench" / "mosaic-venv",
                        ["torch==2.13.0", "torchvision==0.28.0", "mosaicml-streaming==0.13.0"], True,
                        ensure_mosaic_data, mosaic_batches),
}


def in_its_venv(name: str, workers: int, batches: int) -> dict:
    python = OTHERS[name].python()
    command = [str(python), str(Path(__file__).resolve()), "--child", name, str(workers), str(batches)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(name: str, workers: int, batches: int) -> None:
    OTHERS[name].prepare()
    print(json.dumps(timed(OTHERS[name].batches(workers), batches)))


# --------------------------------------------------------------------------- main


LOADERS = {"strata": strata_batches, "strata-warm": functools.partial(strata_batches, warm=True),
           "strata-unverified": functools.partial(strata_batches, verify=False),
           "litdata": None, "mosaic": None, "nanogpt": nanogpt_batches,
           "webdataset": webdataset_batches}
RECORD = {"strata": "first run", "strata-warm": "record warm"}  # the verified loaders: their record
LABELS = {name: f"strata (verify, {record})" for name, record in RECORD.items()}
STRATA = {*RECORD, "strata-unverified"}


def measure(name: str, workers: int, batches: int) -> dict:
    if name in OTHERS:
        return in_its_venv(name, workers, batches)
    with tempfile.TemporaryDirectory() as run_dir:
        SHA256_LEFT.clear()
        result = timed(LOADERS[name](workers, run_dir), batches, children_cpu)
        return dict(result, sha256_left_s=SHA256_LEFT[0]) if name in RECORD else result


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        return child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens-m", type=int, default=52, help="millions of tokens in the synthetic build")
    parser.add_argument("--batches", type=int, default=3000, help="timed batches per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per loader and worker count (median reported)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--only", nargs="+", choices=list(LOADERS), default=list(LOADERS))
    args = parser.parse_args()
    ensure_build(args.tokens_m * 1_000_000)
    if "strata-warm" in args.only:
        warm_record()
    print(f"cores: {os.cpu_count()}, batches of {BATCH} x {SEQ_LEN}, median of {args.repeat} runs "
          f"of {args.batches} timed batches", flush=True)
    results, speed, measured_runs = [], {}, {}
    for workers in args.workers:
        measured: dict[str, list[dict]] = {name: [] for name in args.only}
        for _ in range(args.repeat):  # loaders take turns, so a change in the machine's load hits all alike
            for name in args.only:
                measured[name].append(measure(name, workers, args.batches))
        for name, runs in measured.items():
            rates = sorted(r["tokens_per_s"] / 1e6 for r in runs)
            speed[name, workers] = statistics.median(rates)
            startup = statistics.median(r["startup_s"] for r in runs)
            cpu = statistics.median(r["main_cpu"] for r in runs)
            per_token = (f"; {statistics.median(r['cpu_s_per_gtok'] for r in runs):.1f} CPU-s per G tokens in all"
                         if "cpu_s_per_gtok" in runs[0] else "")
            print(f"{LABELS.get(name, name):28s} workers={workers}  {speed[name, workers]:7.1f} M tokens/s  ({rates[0]:.0f}-{rates[-1]:.0f}; "
                  f"main process {cpu:4.0%} CPU; start-up + {WARMUP} batches {startup:.2f}s; {runs[0]['dtype']}{per_token})", flush=True)
            results.append({"loader": name, "workers": workers, "runs": runs, "median_m_per_s": speed[name, workers]})
            measured_runs[name, workers] = runs
    for workers in args.workers:
        for verified, record in RECORD.items():
            if {(verified, workers), ("strata-unverified", workers)} <= speed.keys():
                on, off = speed[verified, workers], speed["strata-unverified", workers]
                left = statistics.median(r["sha256_left_s"] for r in measured_runs[verified, workers])
                cpu_on, cpu_off = (statistics.median(r["cpu_s_per_gtok"] for r in measured_runs[name, workers])
                                   for name in (verified, "strata-unverified"))
                print(f"integrity on / off, {record} (workers={workers}): {on:.1f} / "
                      f"{off:.1f} M tokens/s, overhead {(off - on) / off:.1%}; CPU per token {cpu_on / cpu_off - 1:+.1%} "
                      f"(sha256 of every shard touched done {left:.2f}s after the timed batches, median)")
    for workers in args.workers:
        for name in args.only:
            for verified, label in LABELS.items():
                if name not in STRATA and (verified, workers) in speed:
                    print(f"{label} / {name} (workers={workers}): {speed[verified, workers] / speed[name, workers]:.2f}")
    for name in args.only:
        for workers in args.workers[1:]:
            if (name, args.workers[0]) in speed:
                ratio = speed[name, workers] / speed[name, args.workers[0]]
                print(f"{name} workers={workers} / workers={args.workers[0]}: {ratio:.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"cores": os.cpu_count(), "batches": args.batches, "results": results}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
