"""A fastText quality classifier: training it (`strata quality train`), scoring with it,
and the quality filter rule.

The classifier tells high-quality documents (`__label__hq`, e.g. curated reference
text) from low-quality ones (`__label__lq`); a document's quality score is the
probability of `__label__hq`. Training and scoring read a document the same way
(langid.fasttext_line: its first MAX_PREDICT_CHARS characters, on one line).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Callable, Iterator, Sequence

import fasttext
import fsspec
import pyarrow.parquet as pq

from strata.config import QualityConfig
from strata.pipeline.langid import LABEL_PREFIX, MAX_PREDICT_CHARS, fasttext_line, load_once_per_process, predict_labels
from strata.version import __version__

log = logging.getLogger("strata.quality")

HIGH_QUALITY = "hq"
LOW_QUALITY = "lq"


# --------------------------------------------------------------------------- training inputs


def _txt_documents(path: str) -> Iterator[str]:
    with fsspec.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            yield line.rstrip("\n")


def _jsonl_documents(path: str) -> Iterator[str]:
    with fsspec.open(path, "rt", encoding="utf-8", compression="infer") as f:
        for number, line in enumerate(f, 1):
            if line.isspace():
                continue
            try:
                text = json.loads(line).get("text")
            except (json.JSONDecodeError, AttributeError):
                raise ValueError(f"{path}:{number}: not a JSON object") from None
            if not isinstance(text, str):
                raise ValueError(f"{path}:{number}: no string field 'text'")
            yield text


def _parquet_documents(path: str) -> Iterator[str]:
    with fsspec.open(path, "rb") as f:
        parquet = pq.ParquetFile(f)
        if "text" not in parquet.schema_arrow.names:
            raise ValueError(f"{path}: no column 'text'")
        for batch in parquet.iter_batches(columns=["text"]):
            yield from batch.column(0).to_pylist()


DOCUMENT_READERS: dict[str, Callable[[str], Iterator[str]]] = {
    ".txt": _txt_documents,
    ".jsonl": _jsonl_documents,
    ".jsonl.gz": _jsonl_documents,
    ".jsonl.zst": _jsonl_documents,
    ".parquet": _parquet_documents,
}


def document_reader(path: str) -> Callable[[str], Iterator[str]]:
    """The reader of a training input, chosen by its name: .txt (one document per line),
    .jsonl[.gz|.zst] (field `text`), .parquet (column `text`, e.g. curated output)."""
    for suffix, reader in DOCUMENT_READERS.items():
        if path.endswith(suffix):
            return reader
    raise ValueError(f"{path}: unsupported input; expected one of {', '.join(DOCUMENT_READERS)}")


def training_texts(path: str) -> Iterator[str]:
    """The non-blank documents of one training input (local path or fsspec URI)."""
    return (text for text in document_reader(path)(path) if text and not text.isspace())


# --------------------------------------------------------------------------- training


def _write_training_file(inputs: list[tuple[str, str]], path: str, seed: int) -> list[dict]:
    """Write `__label__X <document>` lines, shuffled, to `path`; return per-input counts.

    fastText learns from lines in file order, so the classes must be interleaved. Only
    the (offset, length) of each line is held in memory: lines go to a scratch file
    first and are copied out in shuffled order.
    """
    spans: list[tuple[int, int]] = []
    counts = []
    scratch = path + ".unshuffled"
    with open(scratch, "wb") as out:
        offset = 0
        for label, input_path in inputs:
            documents = 0
            for text in training_texts(input_path):
                line = f"{LABEL_PREFIX}{label} {fasttext_line(text)}\n".encode("utf-8", "replace")
                out.write(line)
                spans.append((offset, len(line)))
                offset += len(line)
                documents += 1
            counts.append({"path": input_path, "label": label, "documents": documents})
    random.Random(seed).shuffle(spans)
    with open(scratch, "rb") as lines, open(path, "wb") as out:
        for offset, length in spans:
            lines.seek(offset)
            out.write(lines.read(length))
    os.remove(scratch)
    return counts


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# Run in a fresh interpreter by train_fasttext: fastText arguments and model path as JSON
# in argv[1]; prints the vocabulary size.
_TRAIN_SCRIPT = """
import json, sys, fasttext
job = json.loads(sys.argv[1])
model = fasttext.train_supervised(**job["args"])
model.save_model(job["out"])
print(len(model.words))
"""


def train_fasttext(train_file: str, out: str, **fasttext_args) -> int:
    """fastText supervised training of `train_file` into the model file `out`, in a fresh
    process; returns the model's vocabulary size.

    The fastText build we use (upstream master, as packaged by fasttext-numpy2) leaves
    its matrices uninitialised and seeds only `thread`/10 of the input matrix, so the
    rest holds whatever memory the allocator hands back: models differ from run to run,
    and training fails with "Encountered NaN" once freed memory is reused. The child
    runs with glibc's mmap threshold fixed, so that every allocation from 128 KiB up is
    fresh, zero-filled pages (the zeros older fastText had); an input matrix, (words +
    bucket) x dim floats, under 128 KiB is only seen with toy data. A subprocess, not
    multiprocessing: it works from any caller, scripts without a __main__ guard included.
    """
    job = json.dumps({"args": {"input": train_file, "verbose": 0, **fasttext_args}, "out": out})
    child = subprocess.run(
        [sys.executable, "-c", _TRAIN_SCRIPT, job],
        env={**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)},
        capture_output=True,
        text=True,
    )
    if child.returncode:
        error = child.stderr.strip().splitlines()[-1:] or [f"exit status {child.returncode}"]
        raise RuntimeError(f"fastText training of {train_file} failed: {error[0]}")
    return int(child.stdout)


def train_quality_model(
    positive: Sequence[str],
    negative: Sequence[str],
    out: str,
    *,
    epoch: int = 5,
    lr: float = 0.1,
    word_ngrams: int = 2,
    dim: int = 64,
    min_count: int = 1,
    bucket: int = 200_000,
    seed: int = 0,
    threads: int | None = None,
) -> dict:
    """Train a fastText classifier of `positive` (high quality) vs `negative` documents,
    save it to `out` and its record to `out + '.json'`; return the record.

    Inputs are paths or URIs of .txt, .jsonl[.gz|.zst] or .parquet files. With
    `threads=1` training is deterministic (same inputs and seed, same model bytes); the
    default uses every core. The model holds (words + bucket) x dim floats, loaded by
    every worker process: about 50 MB with the default bucket at dim 64 (fastText's own
    default of 2M buckets would make it 512 MB).
    """
    inputs = [(HIGH_QUALITY, p) for p in positive] + [(LOW_QUALITY, p) for p in negative]
    for _, path in inputs:
        document_reader(path)  # fail on an unsupported input before reading any
    params = {
        "epoch": epoch,
        "lr": lr,
        "word_ngrams": word_ngrams,
        "dim": dim,
        "min_count": min_count,
        "bucket": bucket,
        "seed": seed,
        "threads": threads or os.cpu_count() or 1,
        "max_chars": MAX_PREDICT_CHARS,
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".quality-train-", dir=Path(out).parent) as scratch:
        train_file = os.path.join(scratch, "train.txt")
        counts = _write_training_file(inputs, train_file, seed)
        documents = {
            label: sum(c["documents"] for c in counts if c["label"] == label) for label in (HIGH_QUALITY, LOW_QUALITY)
        }
        for label, side in ((HIGH_QUALITY, "positive"), (LOW_QUALITY, "negative")):
            if not documents[label]:
                raise ValueError(f"no {side} documents in {[c['path'] for c in counts if c['label'] == label]}")
        log.info("training a quality classifier on %d positive and %d negative documents", *documents.values())
        started = time.monotonic()
        words = train_fasttext(
            train_file,
            out,
            epoch=epoch,
            lr=lr,
            wordNgrams=word_ngrams,
            dim=dim,
            minCount=min_count,
            bucket=bucket,
            seed=seed,
            thread=params["threads"],
        )
    record = {
        "model": out,
        "sha256": _sha256(out),
        "labels": {"positive": LABEL_PREFIX + HIGH_QUALITY, "negative": LABEL_PREFIX + LOW_QUALITY},
        "documents": {"positive": documents[HIGH_QUALITY], "negative": documents[LOW_QUALITY]},
        "inputs": counts,
        "words": words,
        "params": params,
        "seconds": round(time.monotonic() - started, 3),
        "fasttext": version("fasttext-numpy2"),
        "strata": __version__,
    }
    Path(out + ".json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return record


# --------------------------------------------------------------------------- scoring


class QualityScorer:
    """`score(text)`: the probability that `text` is high quality, from a model trained
    by train_quality_model."""

    def __init__(self, model_path: str):
        self.model_path = model_path
        self.model = fasttext.load_model(model_path)
        if LABEL_PREFIX + HIGH_QUALITY not in self.model.labels:
            raise ValueError(
                f"{model_path}: not a quality model (labels {self.model.labels}; "
                f"expected {LABEL_PREFIX}{HIGH_QUALITY}), train one with `strata quality train`"
            )

    def score(self, text: str) -> float:
        return dict(predict_labels(self.model, text, k=-1))[HIGH_QUALITY]


def get_scorer(model_path: str) -> QualityScorer:
    """The process-wide QualityScorer of `model_path`, for DoFn.setup()."""
    return load_once_per_process(QualityScorer, model_path)


def quality_decision(score: float, cfg: QualityConfig) -> str | None:
    """The drop reason for a document of quality `score`, or None to keep it. A score
    equal to `min_score` is kept."""
    if cfg.enabled and score < cfg.min_score:
        return "quality:low_score"
    return None
