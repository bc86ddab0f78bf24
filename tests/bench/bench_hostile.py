"""Peak memory of the read path on hostile inputs: each case in a fresh process.

    python tests/bench/bench_hostile.py [--out DIR]

Cases (made once in DIR, default out/bench/hostile): a 2 GiB zstd bomb and a 512 MiB gzip
bomb (a few KB / 512 KB that decompress to one JSON line then zeros, a single "line"), and
a 200 MB single-line jsonl. Each is read by `read_batches`, the function curate's Beam
DoFn runs per file, with curate's record limit and batch sizes, and the config's default
expansion limit; the bombs also with the expansion limit off, so that all of their output
goes through the line reader. Peak RSS is the process's own (getrusage ru_maxrss),
imports included. Target: under 600 MB for every case. Exit 1 if one is over.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import zstandard

REPO = Path(__file__).resolve().parents[2]
MIB = 1 << 20
TARGET_MB = 600
FIRST_LINE = json.dumps({"text": "a first record before the bomb"}).encode() + b"\n"

READ_ONE_FILE = textwrap.dedent(
    """
    import json, resource, sys
    from collections import Counter
    from strata.config import SourceConfig, ValidateConfig
    from strata.pipeline.curate import BATCH_BYTES, BATCH_DOCS
    from strata.pipeline.decompress import ExpansionLimit
    from strata.pipeline.read import discover_inputs, read_batches

    path, limit_on = sys.argv[1], sys.argv[2] == "on"
    cfg = ValidateConfig()
    expansion = ExpansionLimit(cfg.max_expansion_ratio, cfg.max_decompressed_bytes) if limit_on else ExpansionLimit()
    (f,) = discover_inputs([SourceConfig(name="bench", format="jsonl", paths=[path], category="Web")])
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fates = Counter()
    for batch in read_batches(f, cfg.max_text_bytes * 2 + 1024, BATCH_DOCS, BATCH_BYTES, expansion):
        fates.update(d["error"] or "record" for d in batch["docs"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"baseline_mb": baseline, "peak_mb": peak, "fates": dict(fates)}))
    """
)


def _compressed(path: Path, opener, size: int) -> None:
    with opener(path) as out:
        out.write(FIRST_LINE)
        zeros = bytes(MIB)
        for _ in range(size // MIB):
            out.write(zeros)


def make_cases(folder: Path) -> list[tuple[str, Path, int]]:
    folder.mkdir(parents=True, exist_ok=True)
    zst, gz, line = folder / "bomb-2gib.jsonl.zst", folder / "bomb-512mib.jsonl.gz", folder / "line-200mb.jsonl"
    if not zst.exists():
        _compressed(zst, lambda p: zstandard.ZstdCompressor(level=3).stream_writer(open(p, "wb")), 2048 * MIB)
    if not gz.exists():
        _compressed(gz, lambda p: gzip.open(p, "wb", compresslevel=9), 512 * MIB)
    if not line.exists():
        with open(line, "wb") as out:
            out.write(b'{"text": "')
            for _ in range(200):
                out.write(b"a" * 1_000_000)
            out.write(b'"}\n')
    return [("zstd bomb, 2 GiB", zst, 2048 * MIB), ("gzip bomb, 512 MiB", gz, 512 * MIB),
            ("single line, 200 MB", line, 200_000_000)]


def measure(path: Path, limit: str) -> dict:
    result = subprocess.run([sys.executable, "-c", READ_ONE_FILE, str(path), limit], capture_output=True, text=True,
                            cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"bench: reading {path} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "out" / "bench" / "hostile")
    args = parser.parse_args(argv)
    over = 0
    for name, path, expands in make_cases(args.out):
        limits = ["on", "off"] if path.suffix in (".zst", ".gz") else ["on"]
        for limit in limits:
            r = measure(path, limit)
            ok = r["peak_mb"] < TARGET_MB
            over += not ok
            print(f"{name:<20} ({path.stat().st_size / MIB:8.3f} MiB on disk, expands to {expands / MIB:6.0f} MiB), "
                  f"expansion limit {limit:<3}: peak RSS {r['peak_mb']:6.0f} MB (after imports {r['baseline_mb']:4.0f} MB)"
                  f"  {'OK' if ok else 'OVER'} < {TARGET_MB} MB  records: {json.dumps(r['fates'], sort_keys=True)}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
