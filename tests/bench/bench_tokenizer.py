"""Tokenizer benchmark: sentencepiece training time for a 32k BPE and a 32k unigram
tokenizer on the curated text of the bench corpus.

    python tests/bench/bench_tokenizer.py [--corpus DIR] [--vocab-size 32000] [--sample-mb N]

1. makes the corpus (tests/bench/make_corpus.py) unless it is there already;
2. curates it, `strata build CORPUS/strata.yaml --out BUILD --until curate`, unless
   BUILD/curate.json exists (BUILD: out/bench/tok-build);
3. samples the curated text with the config's mixture and `tokenizer.sample_bytes`
   (or --sample-mb), timed;
4. trains each model type in a fresh process: wall time of the training and peak RSS
   of that process; then tokens per byte, tokens per word and byte-fallback rate over
   the curated text (up to 2000 documents per category).

Results also go to OUT/results.json (OUT: out/bench/tok).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
STRATA_VENV = Path(os.environ.get("STRATA_VENV", REPO / ".venv"))

if __name__ == "__main__":
    try:
        import strata.tokenize.trainer  # noqa: F401
    except ImportError:
        py = STRATA_VENV / "bin" / "python"
        if py.exists() and not os.environ.get("_BENCH_REEXEC"):
            os.environ["_BENCH_REEXEC"] = "1"
            os.execv(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]])
        raise SystemExit("bench: needs strata (run `make setup`, or use strata's venv)")

sys.path.insert(0, str(HERE))

import make_corpus  # noqa: E402
from strata.config import load_config  # noqa: E402
from strata.tokenize.stats import tokenizer_stats  # noqa: E402
from strata.manifests.mixture import resolve_shares  # noqa: E402
from strata.tokenize.trainer import sample_curated_text, train_tokenizer  # noqa: E402

MODEL_TYPES = ("bpe", "unigram")


def curate(corpus: Path, build: Path) -> dict:
    summary = build / "curate.json"
    if not summary.exists():
        print(f"bench: curating {corpus} into {build}", file=sys.stderr, flush=True)
        strata = STRATA_VENV / "bin" / "strata"
        subprocess.run([str(strata), "build", str(corpus / "strata.yaml"), "--out", str(build), "--until", "curate"],
                       check=True)
    return json.loads(summary.read_text())


def train_in_child(sample: str, out: str, vocab_size: int, model_type: str, seed: int, sample_record: dict) -> dict:
    """Runs in a fresh process, so that its peak RSS is the training's own."""
    started = time.perf_counter()
    record = train_tokenizer(sample, out, vocab_size=vocab_size, model_type=model_type, seed=seed, sample=sample_record)
    return {
        "record": record,
        "wall_s": time.perf_counter() - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=make_corpus.default_out(60), help="bench corpus folder")
    ap.add_argument("--build", type=Path, default=REPO / "out" / "bench" / "tok-build", help="its curate output")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench" / "tok", help="sample, models, results")
    ap.add_argument("--vocab-size", type=int, default=32000)
    ap.add_argument("--sample-mb", type=float, default=None, help="default: the config's tokenizer.sample_bytes")
    ap.add_argument("--only", choices=MODEL_TYPES, default=None)
    args = ap.parse_args(argv)

    corpus, build, out = args.corpus.resolve(), args.build.resolve(), args.out.resolve()
    if not make_corpus.corpus_ready(corpus):
        print(f"bench: making the corpus at {corpus}", file=sys.stderr, flush=True)
        if rc := make_corpus.main(["--out", str(corpus), "--quiet"]):
            return rc
    config = load_config(corpus / "strata.yaml")
    summary = curate(corpus, build)
    out.mkdir(parents=True, exist_ok=True)

    sizes = {c: v["bytes"] for c, v in summary["categories"].items()}
    shares = resolve_shares(config.categories, sizes)
    sample_bytes = int(args.sample_mb * 2**20) if args.sample_mb else config.tokenizer.sample_bytes
    started = time.perf_counter()
    sample = sample_curated_text(str(build / "curated"), shares, sample_bytes, config.seed, str(out / "sample.txt"))
    sample_s = time.perf_counter() - started
    print(f"tokenizer sample  curated={sum(sizes.values()) / 2**20:.1f} MB  budget={sample_bytes / 2**20:.0f} MB  "
          f"docs={sample['docs']}  sample={sample['bytes'] / 2**20:.1f} MB  time={sample_s:.1f}s", flush=True)

    results = {"sample": {**sample, "seconds": round(sample_s, 3)}, "models": {}}
    for model_type in [args.only] if args.only else MODEL_TYPES:
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            run = pool.submit(train_in_child, str(out / "sample.txt"), str(out / model_type), args.vocab_size,
                              model_type, config.seed, sample).result()
        stats = tokenizer_stats(str(out / model_type / "tokenizer.model"), str(build / "curated"))["all"]
        results["models"][model_type] = {**run, "stats": stats}
        print(f"tokenizer {model_type:<7} vocab={run['record']['vocab_size']}  sample={sample['bytes'] / 2**20:.1f} MB  "
              f"train={run['wall_s']:.1f}s  peak_rss={run['peak_rss_mb']:.0f} MB  "
              f"tok/byte={stats['tokens_per_byte']:.3f}  tok/word={stats['tokens_per_word']:.2f}  "
              f"byte_fallback={stats['byte_fallback_rate']:.3%}", flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
