"""Decontamination benchmark: what the stage adds to curate's wall time with 100k eval n-grams.

    python tests/bench/bench_decontaminate.py [--corpus DIR] [--ngrams 100000]

Runs `strata build --until curate` on the curate benchmark corpus (tests/bench/make_corpus.py)
twice, without and with a `decontaminate` section whose eval set holds about `--ngrams`
13-grams: a fifth of its texts are 32-word passages taken from the corpus (so the stage
finds and cuts matches), the rest 32-word texts of random corpus words (as most of a real
eval set's n-grams are in no training document). Prints both wall times, the stage's share
of the decontaminating run (target: at most 15%) and the documents it touched.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import yaml
import zstandard

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import make_corpus  # noqa: E402

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


def build(config: Path, out: Path) -> float:
    strata = REPO / ".venv" / "bin" / "strata"
    started = time.monotonic()
    subprocess.run([str(strata), "build", str(config), "--out", str(out), "--until", "curate"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=60)
    ap.add_argument("--corpus", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench" / "decontaminate")
    ap.add_argument("--ngrams", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
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
    plain, decon = out / "plain.yaml", out / "decontaminate.yaml"
    plain.write_text(yaml.safe_dump(config))
    config["decontaminate"] = {"sets": [{"name": "bench", "paths": [str(eval_path)], "fields": ["text"]}]}
    decon.write_text(yaml.safe_dump(config))

    without = build(plain, out / "plain")
    with_stage = build(decon, out / "with")
    summary = json.loads((out / "with" / "curate.json").read_text())
    touched = summary["decontamination"].get("bench", {})
    docs = sum(c["documents"] for c in touched.values())
    removed = sum(c["removed"] for c in touched.values())
    share = (with_stage - without) / with_stage
    print(f"decontaminate  eval n-grams={args.ngrams}  curate wall without={without:.1f}s  with={with_stage:.1f}s  "
          f"stage share={100 * share:.1f}% (target <= 15%)  docs touched={docs}  removed={removed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
