"""Re-selection benchmark: rebuild after changing only the Gopher thresholds, against the first build.

    python tests/bench/bench_reselect.py [--mb 60] [--corpus DIR] [--out DIR] [--given-tokenizer [--vocab 32000]]

1. the curate benchmark corpus (tests/bench/make_corpus.py), made when missing;
2. with --given-tokenizer, a sentencepiece BPE tokenizer trained once on a sample of the
   corpus text and given to every build (`tokenizer.model`), as a team iterating on
   selection may keep its tokenizer; by default each build trains its own, as the corpus
   config says (a new selection retrains it: the stage lines show its cost);
3. `strata build` of the corpus config (its own timer around the command): the first, full build;
4. the same OUT rebuilt with stricter Gopher thresholds: the build must report annotate
   reused and run only select, tokenizer and shards;
5. a from-scratch build with the stricter thresholds into another OUT;
6. prints the wall times, the rebuild's share of the first build (target: at most 20%),
   and whether the rebuild equals the from-scratch build: sha256 of every shard, the
   manifest, and every curated Parquet file.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from strata_venv import run_in_strata_venv  # noqa: E402

if __name__ == "__main__":
    run_in_strata_venv(__file__)

import make_corpus  # noqa: E402
import yaml  # noqa: E402
import zstandard  # noqa: E402

from strata.manifests.manifest import Manifest  # noqa: E402

STRICTER = {
    "gopher_quality": {"min_words": 100, "max_symbol_word_ratio": 0.05, "min_alpha_words_fraction": 0.85},
    "gopher_repetition": {"max_duplicate_line_fraction": 0.2, "max_duplicate_line_char_fraction": 0.15},
}


def train_given_tokenizer(corpus: Path, out: Path, vocab: int, sample_mb: float = 8) -> Path:
    """A tokenizer trained once on the first `sample_mb` of corpus text (strata's trainer)."""
    from strata.tokenize.trainer import train_tokenizer

    model = out / "given-tokenizer" / "tokenizer.model"
    if model.exists():
        return model
    with tempfile.TemporaryDirectory() as scratch:
        sample = Path(scratch) / "sample.txt"
        written = 0
        with open(sample, "w", encoding="utf-8") as f:
            for path in sorted(corpus.glob("part-*.jsonl.zst")):
                with open(path, "rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as reader:
                    for line in io.TextIOWrapper(reader, encoding="utf-8"):
                        text = json.loads(line)["text"]
                        f.write(text.replace("\n", " ") + "\n")
                        written += len(text)
                        if written > sample_mb * 1e6:
                            break
                if written > sample_mb * 1e6:
                    break
        train_tokenizer(str(sample), str(model.parent), vocab_size=vocab, model_type="bpe", seed=1)
    return model


def build(config: dict, path: Path, out: Path) -> tuple[float, list[str]]:
    """Wall seconds of `strata build` and the lines it printed."""
    path.write_text(yaml.safe_dump(config))
    strata = REPO / ".venv" / "bin" / "strata"
    started = time.monotonic()
    done = subprocess.run([str(strata), "build", str(path), "--out", str(out)], check=True, capture_output=True,
                          text=True)
    return time.monotonic() - started, [line.strip() for line in done.stderr.splitlines() if line.strip()]


def digests(out: Path, folder: str, pattern: str) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((out / folder).rglob(pattern))}


def manifest(out: Path) -> Manifest:
    return Manifest.read(str(out))


def stage_lines(lines: list[str]) -> str:
    kept = [line.split(" | ")[0].split(":")[0] + " " + line.rsplit(" | ", 1)[-1].split(",")[-1].strip()
            for line in lines if line.startswith(("curate:", "tokenizer:", "shards:"))]
    return "  ".join(kept)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=60)
    ap.add_argument("--corpus", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench" / "reselect")
    ap.add_argument("--given-tokenizer", action="store_true", help="train a tokenizer once and give it to every build")
    ap.add_argument("--vocab", type=int, default=32000, help="the given tokenizer's vocabulary")
    args = ap.parse_args(argv)
    corpus = (args.corpus or make_corpus.default_out(args.mb)).resolve()
    if not make_corpus.corpus_ready(corpus):
        make_corpus.main(["--mb", f"{args.mb:g}", "--out", str(corpus), "--quiet"])
    out = args.out.resolve()
    for leftover in ("first", "scratch"):
        shutil.rmtree(out / leftover, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)

    config = yaml.safe_load((corpus / "strata.yaml").read_text())
    for source in config["sources"]:
        source["paths"] = [str(corpus / p) for p in source["paths"]]
    if args.given_tokenizer:
        config["tokenizer"] = {"model": str(train_given_tokenizer(corpus, out, args.vocab))}
    stricter = json.loads(json.dumps(config))
    for family, values in STRICTER.items():
        stricter["filters"].setdefault(family, {}).update(values)

    first, first_lines = build(config, out / "first.yaml", out / "first")
    before = manifest(out / "first")
    rebuild, rebuild_lines = build(stricter, out / "stricter.yaml", out / "first")
    scratch, scratch_lines = build(stricter, out / "stricter.yaml", out / "scratch")

    reused = next((line for line in rebuild_lines if line.startswith("stages reused:")), "(no reuse line)")
    rebuilt, fresh = manifest(out / "first"), manifest(out / "scratch")
    shards_same = digests(out / "first", "shards", "*.tar") == digests(out / "scratch", "shards", "*.tar")
    curated_same = digests(out / "first", "curated", "*.parquet") == digests(out / "scratch", "curated", "*.parquet")
    shard_count = len(digests(out / "scratch", "shards", "*.tar"))
    share = rebuild / first
    tokenizer = "given" if args.given_tokenizer else "trained by each build"
    print(f"reselect   tokenizer {tokenizer}  first build={first:.1f}s  rebuild (stricter Gopher thresholds)={rebuild:.1f}s  "
          f"from scratch={scratch:.1f}s  rebuild/first={100 * share:.1f}% (target <= 20%: "
          f"{'met' if share <= 0.2 else 'NOT met'})")
    print(f"reselect   rebuild {reused}")
    print(f"reselect   stages: first [{stage_lines(first_lines)}]  rebuild [{stage_lines(rebuild_lines)}]  "
          f"scratch [{stage_lines(scratch_lines)}]")
    print(f"reselect   kept docs first={before.fates['kept']}  stricter={rebuilt.fates['kept']}  "
          f"dropped by filter first={before.stages['filter']['docs_in'] - before.stages['filter']['docs_out']}  "
          f"stricter={rebuilt.stages['filter']['docs_in'] - rebuilt.stages['filter']['docs_out']}")
    print(f"reselect   rebuild vs from scratch: shards sha256 {'identical' if shards_same else 'DIFFERENT'} "
          f"({shard_count} tars)  manifest {'identical' if rebuilt == fresh else 'DIFFERENT'}  "
          f"curated parquet {'identical' if curated_same else 'DIFFERENT'}")
    return 0 if shards_same and rebuilt == fresh and curated_same else 1


if __name__ == "__main__":
    sys.exit(main())
