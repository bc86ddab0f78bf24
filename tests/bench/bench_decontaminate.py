"""Decontamination benchmark: what the stage adds to curate's wall time with 100k eval n-grams,
and its two eval n-gram indexes (sorted hashes, the default, and Bloom filters) side by side.

    python tests/bench/bench_decontaminate.py [--corpus DIR] [--ngrams 100000] [--fp-rate 1e-6]

Runs `strata build --until curate` on the curate benchmark corpus (tests/bench/make_corpus.py)
without a `decontaminate` section, and with one whose eval set holds about `--ngrams`
13-grams, once per index (`decontaminate.index: sorted | bloom`), the three builds
interleaved and repeated `--repeat` times (a build's wall time varies by a few seconds
from run to run, as much as the stage costs; the medians are compared): a fifth of its
texts are 32-word passages taken from the corpus (so the stage finds and cuts matches), the
rest 32-word texts of random corpus words (as most of a real eval set's n-grams are in no
training document). Prints the wall times, the stage's share of the decontaminating run
(target: at most 15%) and the documents it touched. Then, in this process and without Beam,
both indexes over every corpus document: bytes of the index, build and matching time,
documents and n-grams matched, and the Bloom filter's false positives (n-grams it matched
that the exact index did not) against the number it was sized to expect.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import statistics
import subprocess
import sys
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

WORDS_PER_TEXT = 32  # 20 13-grams each


def corpus_words(corpus: Path, seed: int) -> tuple[list[list[str]], list[str]]:
    """Word lists of the corpus documents, and a vocabulary sample."""
    docs, vocabulary = [], []
    for path in sorted(corpus.glob("part-*.jsonl.zst")):
        with open(path, "rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as reader:
            for line in io.TextIOWrapper(reader, encoding="utf-8"):
                words = json.loads(line)["text"].split()
                if len(words) >= 200:
                    docs.append(words)
                vocabulary.extend(words[:50])
    random.Random(seed).shuffle(docs)
    return docs, vocabulary


def write_eval_set(corpus: Path, out: Path, ngrams: int, seed: int) -> Path:
    rng = random.Random(seed)
    docs, vocabulary = corpus_words(corpus, seed)
    texts = ngrams // (WORDS_PER_TEXT - 12)
    from_corpus = texts // 5
    lines = []
    for i in range(texts):
        if i < from_corpus:
            words = docs[i % len(docs)]
            start = rng.randrange(len(words) - WORDS_PER_TEXT)
            lines.append(" ".join(words[start : start + WORDS_PER_TEXT]))
        else:
            lines.append(" ".join(rng.choices(vocabulary, k=WORDS_PER_TEXT)))
    path = out / "eval.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in lines))
    return path


def index_comparison(corpus: Path, cfg: dict) -> None:
    """Both indexes over every corpus document, in this process."""
    from strata.config import DecontaminateConfig
    from strata.pipeline.decontaminate import decontaminate, load_eval_index

    texts = []
    for path in sorted(corpus.glob("part-*.jsonl.zst")):
        with open(path, "rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as reader:
            texts.extend(json.loads(line)["text"] for line in io.TextIOWrapper(reader, encoding="utf-8"))
    matched = {}
    for kind in ("sorted", "bloom"):
        config = DecontaminateConfig(**{**cfg, "index": kind})
        started = time.process_time()
        index = load_eval_index(config)
        built = time.process_time() - started
        nbytes = sum(f.nbytes for f in index.filters) if kind == "bloom" else index.hashes.nbytes + index.set_index.nbytes
        started = time.process_time()
        matched[kind] = [decontaminate(text, index, config).ngrams for text in texts]
        seconds = time.process_time() - started
        print(f"index      {kind:6s} n-grams={len(index)}  bytes={nbytes:,}  build cpu={built:.2f}s  "
              f"match cpu={seconds:.1f}s over {len(texts)} docs  docs matched={sum(1 for n in matched[kind] if n)}  "
              f"n-grams matched={sum(matched[kind])}")
    # The sorted index is exact (up to 64-bit hash collisions): what the Bloom filters match beyond it is false.
    extra = sum(max(0, b - s) for b, s in zip(matched["bloom"], matched["sorted"]))
    missed = sum(max(0, s - b) for b, s in zip(matched["bloom"], matched["sorted"]))
    looked_up = sum(max(0, len(text.split()) - 12) for text in texts)  # about the documents' 13-grams
    print(f"index      bloom false positives={extra} n-grams (expected about {looked_up * cfg['bloom_fp_rate']:.1f}: "
          f"{looked_up:,} document 13-grams x fp rate {cfg['bloom_fp_rate']:g})  false negatives={missed}")


def build(config: Path, out: Path) -> float:
    """Wall seconds of a curate build from nothing (an earlier run's OUT would be reused)."""
    strata = REPO / ".venv" / "bin" / "strata"
    shutil.rmtree(out, ignore_errors=True)
    started = time.monotonic()
    subprocess.run([str(strata), "build", str(config), "--out", str(out), "--until", "curate"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def fmt(seconds: list[float]) -> str:
    return "[" + " ".join(f"{s:.1f}" for s in seconds) + "]"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=60)
    ap.add_argument("--corpus", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench" / "decontaminate")
    ap.add_argument("--ngrams", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="builds of each config; medians are compared")
    ap.add_argument("--fp-rate", type=float, default=1e-6, help="the Bloom filter's false positive rate")
    args = ap.parse_args(argv)
    corpus = (args.corpus or make_corpus.default_out(args.mb)).resolve()
    if not make_corpus.corpus_ready(corpus):
        make_corpus.main(["--mb", f"{args.mb:g}", "--out", str(corpus), "--quiet"])
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    eval_path = write_eval_set(corpus, out, args.ngrams, args.seed)
    config = yaml.safe_load((corpus / "strata.yaml").read_text())
    for source in config["sources"]:
        source["paths"] = [str(corpus / p) for p in source["paths"]]
    plain = out / "plain.yaml"
    plain.write_text(yaml.safe_dump(config))
    eval_cfg = {"sets": [{"name": "bench", "paths": [str(eval_path)], "fields": ["text"]}], "bloom_fp_rate": args.fp_rate}
    configs = {"without": plain}
    for kind in ("sorted", "bloom"):
        configs[kind] = out / f"decontaminate-{kind}.yaml"
        configs[kind].write_text(yaml.safe_dump({**config, "decontaminate": {**eval_cfg, "index": kind}}))
    walls = {name: [] for name in configs}
    for _ in range(args.repeat):
        for name, path in configs.items():
            walls[name].append(build(path, out / name))
    without = statistics.median(walls["without"])
    print(f"decontaminate  curate wall without the stage: median {without:.1f}s of {fmt(walls['without'])}")
    for kind in ("sorted", "bloom"):
        with_stage = statistics.median(walls[kind])
        summary = json.loads((out / kind / "curate.json").read_text())
        touched = summary["decontamination"].get("bench", {})
        docs = sum(c["documents"] for c in touched.values())
        removed = sum(c["removed"] for c in touched.values())
        share = (with_stage - without) / with_stage
        print(f"decontaminate  index={kind}  eval n-grams={args.ngrams}  curate wall with: median {with_stage:.1f}s of "
              f"{fmt(walls[kind])}  stage share={100 * share:.1f}% (target <= 15%)  docs touched={docs}  removed={removed}")
    index_comparison(corpus, eval_cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
