"""Scale curve: `strata build` end to end on Pile-style corpora of 10 MB, 100 MB and 1 GB.

    python tests/bench/bench_scale.py [--sizes 10 100 1000] [--out out/bench/scale] [-- BEAM_ARGS...]

Corpora: tests/bench/make_corpus.py makes real-text corpora (Debian documentation installed
with apt-get, the standard library) with planted near and exact duplicates: one of 10 MB,
and one of 100 MB that is also the first tenth of the 1 GB corpus. The other nine tenths
repeat it with, per round, a fixed rewrite of about a fifth of the word types (each word
of 2+ letters is swapped, in every document alike, for another word of the corpus when a
hash of (round, word) says so). A round's documents are therefore no near-duplicates of
the base's (word 5-gram Jaccard ~0.2), while the planted pairs and groups of the base stay
near or exact duplicates within each round: dedup has the same work per MB at every size.

Each size is built with the default `strata build` (the DirectRunner as strata configures
it), one stage per command, so that each stage is measured alone (the next command keeps the
stages already built):

    strata build CONFIG --out OUT --until curate
    strata build CONFIG --out OUT --until tokenizer
    strata build CONFIG --out OUT

and prints per size and stage: input MB (jsonl bytes for curate and the tokenizer, curated
text bytes for shards), wall s, MB/s, peak RSS of the process tree (sum) and of its largest
process (psutil, every 0.1 s), and the bytes the stage wrote under OUT. Then the ratios of
MB/s and peak RSS from 100 MB to 1 GB (goal: MB/s flat or rising, peak RSS within 1.3x).
The 1 GB build takes an hour or more on 2 cores; `--sizes 10 100` for a quick curve.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _reexec_in_strata_venv() -> None:
    """zstandard and psutil live in strata's venv: run there when they are missing here."""
    try:
        import psutil  # noqa: F401
        import zstandard  # noqa: F401
    except ImportError:
        python = REPO / ".venv" / "bin" / "python"
        if not python.exists() or Path(sys.prefix).resolve() == (REPO / ".venv").resolve():
            raise SystemExit("bench: needs psutil and zstandard (run `make setup`)")
        os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


if __name__ == "__main__":
    _reexec_in_strata_venv()

import zstandard  # noqa: E402
from procmon import run_monitored  # noqa: E402

STRATA = REPO / ".venv" / "bin" / "strata"
MAKE_CORPUS = Path(__file__).resolve().parent / "make_corpus.py"
BASE_MB = 100
STAGES = ("curate", "tokenizer", "shards")
WORD = re.compile(r"[A-Za-z]{2,}")
REWRITTEN_SHARE = 0.2


def base_corpus(mb: int, root: Path) -> Path:
    folder = root / f"corpus-{mb}mb"
    if not (folder / "corpus.json").is_file():
        subprocess.run([sys.executable, str(MAKE_CORPUS), "--mb", str(mb), "--out", str(folder), "--quiet"], check=True)
    return folder


def vocabulary(base: Path) -> list[str]:
    """The distinct words of the base corpus's first file, sorted: what rewritten words become."""
    first = sorted(base.glob("part-*.jsonl.zst"))[0]
    text = zstandard.ZstdDecompressor().decompress(first.read_bytes()).decode()
    return sorted({w for w in WORD.findall(text) if len(w) <= 12})


def rewriter(round_: int, vocab: list[str]):
    """A fixed rewrite of word types for one round: the same word always becomes the same."""
    cache: dict[str, str] = {}

    def rewrite(match: re.Match) -> str:
        word = match.group(0)
        new = cache.get(word)
        if new is None:
            digest = int.from_bytes(hashlib.blake2b(f"{round_}:{word}".encode(), digest_size=8).digest(), "big")
            new = vocab[digest % len(vocab)] if digest % 1000 < REWRITTEN_SHARE * 1000 else word
            cache[word] = new
        return new

    return rewrite


def scaled_corpus(base: Path, rounds: int, root: Path) -> Path:
    """`rounds` x the base corpus: round 0 is the base, each other round its rewrite."""
    folder = root / f"corpus-{BASE_MB * rounds}mb-scaled"
    done = folder / "corpus.json"
    if done.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(base / "strata.yaml", folder / "strata.yaml")
    vocab = vocabulary(base)
    cctx, dctx = zstandard.ZstdCompressor(level=3), zstandard.ZstdDecompressor()
    total = 0
    for round_ in range(rounds):
        rewrite = rewriter(round_, vocab)
        for path in sorted(base.glob("part-*.jsonl.zst")):
            data = dctx.decompress(path.read_bytes())
            if round_:
                out = io.StringIO()
                for line in data.decode().splitlines():
                    record = json.loads(line)
                    record["id"] = f"r{round_}-{record['id']}"
                    record["text"] = WORD.sub(rewrite, record["text"])
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                data = out.getvalue().encode()
            total += len(data)
            (folder / f"part-r{round_:02d}-{path.name.removeprefix('part-')}").write_bytes(cctx.compress(data))
        print(f"scale: corpus round {round_ + 1}/{rounds} written ({total / 2**20:.0f} MB)", file=sys.stderr, flush=True)
    done.write_text(json.dumps({"rounds": rounds, "base": str(base), "jsonl_bytes": total}))
    return folder


def jsonl_bytes(corpus: Path) -> int:
    summary = json.loads((corpus / "corpus.json").read_text())
    return summary.get("jsonl_bytes") or int(summary["jsonl_mb"] * 2**20)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def build(corpus: Path, out: Path, logs: Path, beam_args: list[str]) -> list[dict]:
    shutil.rmtree(out, ignore_errors=True)
    rows = []
    for stage in STAGES:
        cmd = [str(STRATA), "build", str(corpus / "strata.yaml"), "--out", str(out), "--until", stage, "--quiet"]
        before = folder_bytes(out)
        with open(logs / f"{out.name}-{stage}.log", "w") as log:
            result = run_monitored([*cmd, *(["--", *beam_args] if beam_args else [])], stdout=log, stderr=log)
        if result.returncode != 0:
            raise SystemExit(f"scale: {' '.join(cmd)} failed (exit {result.returncode}); see {log.name}")
        if stage == "shards":
            curate = json.loads((out / "curate.json").read_text())
            input_bytes = sum(c["bytes"] for c in curate["categories"].values())
        else:
            input_bytes = jsonl_bytes(corpus)
        rows.append(
            {"stage": stage, "input_mb": input_bytes / 1e6, "wall_s": result.wall_s,
             "mb_s": input_bytes / 1e6 / result.wall_s, "peak_rss_total_mb": result.peak_total_mb,
             "peak_rss_single_mb": result.peak_single_mb, "written_mb": (folder_bytes(out) - before) / 1e6}
        )
    return rows


def print_table(results: dict[int, list[dict]]) -> None:
    print(f"{'size':>6} {'stage':<10} {'input MB':>9} {'wall s':>8} {'MB/s':>7} {'peak RSS MB':>12} "
          f"{'largest proc':>13} {'written MB':>11}")
    for size, rows in results.items():
        for r in rows:
            print(f"{size:>4}MB {r['stage']:<10} {r['input_mb']:>9.1f} {r['wall_s']:>8.1f} {r['mb_s']:>7.2f} "
                  f"{r['peak_rss_total_mb']:>12.0f} {r['peak_rss_single_mb']:>13.0f} {r['written_mb']:>11.1f}")
        total_wall = sum(r["wall_s"] for r in rows)
        print(f"{size:>4}MB {'all':<10} {rows[0]['input_mb']:>9.1f} {total_wall:>8.1f} "
              f"{rows[0]['input_mb'] / total_wall:>7.2f} {max(r['peak_rss_total_mb'] for r in rows):>12.0f} "
              f"{max(r['peak_rss_single_mb'] for r in rows):>13.0f} {sum(r['written_mb'] for r in rows):>11.1f}")


def print_ratios(results: dict[int, list[dict]], small: int, big: int) -> None:
    if small not in results or big not in results:
        return
    for a, b in zip(results[small], results[big]):
        print(f"scale {small}MB -> {big}MB {a['stage']:<10} MB/s x{b['mb_s'] / a['mb_s']:.2f} (goal >= 1.0)  "
              f"peak RSS x{b['peak_rss_total_mb'] / a['peak_rss_total_mb']:.2f} (goal <= 1.3)")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    beam_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000], help="MB: 10, or multiples of 100")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench" / "scale")
    args = ap.parse_args(argv)
    bench = REPO / "out" / "bench"
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for size in args.sizes:
        if size < BASE_MB:
            corpus = base_corpus(size, bench)
        else:
            base = base_corpus(BASE_MB, bench)
            corpus = base if size == BASE_MB else scaled_corpus(base, size // BASE_MB, bench)
        results[size] = build(corpus, args.out / f"build-{size}mb", args.out, beam_args)
        print_table({size: results[size]})
        sys.stdout.flush()
    print("\nscale (machine load shifts absolute figures; compare sizes within one run)")
    print_table(results)
    print_ratios(results, BASE_MB, max(args.sizes))
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":  # noqa: E305
    if not STRATA.exists():
        raise SystemExit("bench: strata is not installed (run `make setup`)")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
