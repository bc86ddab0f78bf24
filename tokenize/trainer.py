"""Tokenizer training: a mixture-weighted sample of the curated text, then sentencepiece.

    sample_curated_text(OUT/curated, shares, sample_bytes, seed, sample.txt)
    train_tokenizer(sample.txt, DIR, vocab_size=..., model_type=..., seed=...)
        -> DIR/tokenizer.model, DIR/tokenizer.json (parameters, sample, sha256, special ids)

The sample is deterministic: within a category, documents are taken in the order of
blake2b(seed, doc_id), whatever the order of the files and of the rows in them.
"""

from __future__ import annotations

import hashlib
import heapq
import io
import json
import logging
import os
import time
from typing import Callable, Iterator, Mapping, Sequence

import pyarrow.compute as pc
import pyarrow.parquet as pq
import sentencepiece as spm

from strata.manifests.layout import CATEGORY_PARTS_GLOB, MODEL_FILE, RECORD_FILE
from strata.storage import filesystem, glob, join, write_atomic, write_bytes_atomic
from strata.tokenize.specials import objective_special_ids, with_control_pieces
from strata.tokenize.vocab import check_vocab_size, meta_pieces, required_characters
from strata.version import __version__

log = logging.getLogger("strata.tokenize")

MASK = "<mask>"
# sentencepiece skips training lines longer than max_sentence_length bytes, so long lines
# are cut into chunks of at most this many bytes.
MAX_LINE_BYTES = 4096
SPECIALS = {"pad": 0, "unk": 1, "bos": 2, "eos": 3}
# Training lines never contain "\n" (sentencepiece reads one sentence per line), so the
# newline gets a piece of its own, not a byte-fallback token.
BUILTIN_SYMBOLS = (MASK, "\n")


# --------------------------------------------------------------------------- reading curated text


def curated_files(curated_root: str) -> list[str]:
    """The Parquet files of OUT/curated (curated/<category folder>/part-*.parquet)."""
    return glob(join(curated_root, CATEGORY_PARTS_GLOB))


def file_categories(uri: str) -> set[str]:
    """The categories in a curated file, from its small `category` column."""
    fs, path = filesystem(uri)
    with fs.open(path, "rb") as f:
        return set(pq.read_table(f, columns=["category"]).column("category").unique().to_pylist())


def curated_categories(curated_root: str) -> list[str]:
    return sorted(set().union(*map(file_categories, curated_files(curated_root))))


def document_key(seed: int, doc_id: str) -> int:
    digest = hashlib.blake2b(doc_id.encode(), digest_size=16, key=str(seed).encode()).digest()
    return int.from_bytes(digest, "big")


class LowestKeys:
    """The documents of smallest key whose sizes add up to `limit` (the last one may go
    past it), or all of them if there is less: a max-heap on the key that drops its top
    while the rest still reach the limit. Holds about `limit` worth of documents."""

    def __init__(self, limit: int):
        self.limit = limit
        self.heap: list[tuple[int, str, object, int]] = []  # (-key, doc_id, payload, size)
        self.size = 0
        self.seen_docs = 0
        self.seen_bytes = 0

    def wants(self, key: int) -> bool:
        if self.size < self.limit:
            return True
        return bool(self.heap) and -key > self.heap[0][0]

    def add(self, key: int, doc_id: str, payload: object, size: int) -> None:
        heapq.heappush(self.heap, (-key, doc_id, payload, size))
        self.size += size
        while self.size - self.heap[0][3] >= self.limit:
            self.size -= heapq.heappop(self.heap)[3]

    def documents(self) -> list[tuple[str, object]]:
        """(doc_id, payload) in ascending key order."""
        return [(doc_id, payload) for _, doc_id, payload, _ in sorted(self.heap, reverse=True)]


def select_documents(
    curated_root: str,
    seed: int,
    limits: Callable[[str], LowestKeys | None],
    payload: Callable[[str], tuple[object, int]],
) -> dict[str, LowestKeys]:
    """Stream the curated files and keep, per category, the documents of smallest key.
    Returns every category found, mapped to its LowestKeys or None.

    `limits(category)` gives the category's LowestKeys (None: skip the category);
    `payload(text)` turns a kept document into (what to keep, its size against the limit).
    Files holding no wanted category are not read further than their category column,
    and texts become Python strings only for documents that may be kept.
    """
    selected: dict[str, LowestKeys | None] = {}
    for uri in curated_files(curated_root):
        categories = file_categories(uri)
        for category in categories - selected.keys():
            selected[category] = limits(category)
        if all(selected[c] is None for c in categories):
            continue
        fs, path = filesystem(uri)
        with fs.open(path, "rb") as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=1024, columns=["doc_id", "category", "text"]):
                doc_ids, row_categories, texts = batch.columns
                lengths = pc.binary_length(texts).to_pylist()
                for i, (doc_id, category) in enumerate(zip(doc_ids.to_pylist(), row_categories.to_pylist())):
                    keep = selected[category]
                    if keep is None:
                        continue
                    keep.seen_docs += 1
                    keep.seen_bytes += lengths[i]
                    key = document_key(seed, doc_id)
                    if keep.wants(key):
                        keep.add(key, doc_id, *payload(texts[i].as_py()))
    return selected


# --------------------------------------------------------------------------- the sample


def training_lines(text: str) -> Iterator[bytes]:
    """A document as sentencepiece input lines: its non-blank lines, each cut into chunks
    of at most MAX_LINE_BYTES (at a space when one is in the second half of the chunk,
    else at a character boundary)."""
    for line in text.split("\n"):
        if not line.strip():
            continue
        data = line.encode()
        while len(data) > MAX_LINE_BYTES:
            cut = data.rfind(b" ", MAX_LINE_BYTES // 2, MAX_LINE_BYTES)  # the space opens the next chunk
            if cut < 0:
                cut = MAX_LINE_BYTES
                while data[cut] & 0xC0 == 0x80:  # a UTF-8 continuation byte
                    cut -= 1
            yield data[:cut]
            data = data[cut:]
        yield data


def _lines_and_size(text: str) -> tuple[list[bytes], int]:
    lines = list(training_lines(text))
    return lines, sum(len(line) + 1 for line in lines)


def sample_curated_text(
    curated_root: str,
    shares: Mapping[str, float] | None,
    sample_bytes: int,
    seed: int,
    out_path: str,
) -> dict:
    """Write a mixture-weighted sample of OUT/curated to `out_path`, as sentencepiece
    input (one line per line of text, long lines chunked); returns its record.

    Category c gets budget floor(share_c * sample_bytes) bytes of output, shares being
    normalised to sum 1 (None: equal shares over the categories found). Its documents are
    taken in blake2b(seed, doc_id) order until the budget is met; the last one is cut at
    the first line that does not fit, so the sample never exceeds `sample_bytes`. A
    category with less than its budget gives all it has; the leftover is not handed to
    the others, so that a category's share of the sample is never above its share of
    the mixture.
    """
    if shares is None:
        shares = {c: 1.0 for c in curated_categories(curated_root)}
    if any(s < 0 for s in shares.values()) or not sum(shares.values()):
        raise ValueError(f"shares must be >= 0 and not all 0, got {dict(shares)}")
    total_share = sum(shares.values())
    budgets = {c: int(s / total_share * sample_bytes) for c, s in shares.items()}
    selected = select_documents(
        curated_root,
        seed,
        lambda c: LowestKeys(budgets[c]) if budgets.get(c) else None,
        _lines_and_size,
    )
    unknown = sorted(c for c, s in shares.items() if s > 0 and c not in selected)
    if unknown:
        raise ValueError(f"shares name categories not in {curated_root}: {unknown}; it holds {sorted(selected)}")
    per_category, sampled_ids = {}, []

    def write(f) -> None:
        for category in sorted(budgets):
            keep = selected.get(category) or LowestKeys(0)
            docs = written = 0
            for doc_id, lines in keep.documents():
                fits = list(_fitting(lines, budgets[category] - written))
                if fits:
                    f.write(b"".join(line + b"\n" for line in fits))
                    written += sum(len(line) + 1 for line in fits)
                    docs += 1
                    sampled_ids.append(doc_id)
                if len(fits) < len(lines):
                    break
            per_category[category] = {
                "share": shares[category] / total_share,
                "budget_bytes": budgets[category],
                "docs": docs,
                "bytes": written,
                "available_docs": keep.seen_docs,
                "available_bytes": keep.seen_bytes,
            }

    write_atomic(out_path, write)
    record = {
        "path": out_path,
        "seed": seed,
        "sample_bytes": sample_bytes,
        "bytes": sum(c["bytes"] for c in per_category.values()),
        "docs": len(sampled_ids),
        "per_category": per_category,
        "doc_id_digest": hashlib.sha256("\n".join(sorted(sampled_ids)).encode()).hexdigest(),
    }
    log.info("tokenizer sample: %d docs, %.1f MB in %s", record["docs"], record["bytes"] / 1e6, out_path)
    return record


def _fitting(lines: list[bytes], room: int) -> Iterator[bytes]:
    """The leading lines that fit in `room` bytes (each with its newline)."""
    for line in lines:
        room -= len(line) + 1
        if room < 0:
            return
        yield line


# --------------------------------------------------------------------------- training


def trainer_options(
    vocab_size: int, model_type: str, user_defined_symbols: Sequence[str] = (), threads: int | None = None
) -> dict:
    """sentencepiece trainer options for a lossless tokenizer of prose and code.

    - identity normalization, no whitespace removal, no dummy prefix: decode(encode(t))
      == t for every text (curate already applied NFC; NFKC would fold characters
      irreversibly). Without the dummy prefix a line-initial word is learned as it
      appears after a newline when a whole document is encoded.
    - whitespace-only pieces, so that code indentation costs one or two tokens;
    - byte fallback: a character outside the vocabulary becomes its UTF-8 byte pieces,
      never <unk>; digits are split, one piece each;
    - character_coverage 0.9999 (sentencepiece's default is 0.9995, tuned for CJK): a
      character left out costs 2-4 byte tokens, so the rare accented letters and symbols
      of a mostly Latin-script corpus are kept as pieces;
    - `<mask>` and "\\n" first among the user-defined symbols (fixed ids 4 and 5). A
      user-defined symbol is matched in raw text too, so a literal "<mask>" in a
      document encodes to the mask id.
    - hard_vocab_limit off: a corpus too small for `vocab_size` gives a smaller
      vocabulary instead of an error (the record holds the real size).
    """
    if model_type not in ("bpe", "unigram"):
        raise ValueError(f"model_type must be bpe or unigram, got {model_type!r}")
    symbols = list(dict.fromkeys([*BUILTIN_SYMBOLS, *user_defined_symbols]))
    return {
        "model_type": model_type,
        "vocab_size": vocab_size,
        "character_coverage": 0.9999,
        "byte_fallback": True,
        "split_digits": True,
        "normalization_rule_name": "identity",
        "remove_extra_whitespaces": False,
        "add_dummy_prefix": False,
        "allow_whitespace_only_pieces": True,
        "max_sentence_length": MAX_LINE_BYTES,
        "hard_vocab_limit": False,
        "pad_id": SPECIALS["pad"],
        "unk_id": SPECIALS["unk"],
        "bos_id": SPECIALS["bos"],
        "eos_id": SPECIALS["eos"],
        "user_defined_symbols": symbols,
        "num_threads": threads or os.cpu_count() or 1,
    }


def train_tokenizer(
    sample_path: str,
    out_dir: str,
    *,
    vocab_size: int,
    model_type: str,
    user_defined_symbols: Sequence[str] = (),
    control_pieces: Sequence[str] = (),
    seed: int,
    threads: int | None = None,
    sample: dict | None = None,
    vocab_key: str = "vocab_size",
) -> dict:
    """Train sentencepiece on `sample_path` (a local file, e.g. from sample_curated_text,
    whose record may be passed as `sample`); write OUT_DIR/tokenizer.model and
    OUT_DIR/tokenizer.json and return the latter's record.

    A `vocab_size` below what the sample needs is a ConfigError naming `vocab_key`.
    `seed` seeds sentencepiece's generator, which it uses only to subsample its input
    (never here: the sample is already sized). The same sample and options give the same
    model bytes, wherever the sample file is: the model stores its trainer options, and
    an `input` option would put the sample's path in them. `threads`: default all cores.
    `control_pieces` are appended to the trained vocabulary (tokenize/specials.py).
    """
    options = trainer_options(vocab_size, model_type, user_defined_symbols, threads)
    needed = meta_pieces(len(SPECIALS), options["user_defined_symbols"]) + required_characters(
        sample_path, options["character_coverage"]
    )
    check_vocab_size(vocab_size, needed, vocab_key, "this corpus (256 byte pieces, the special and user-defined "
                     "pieces, and the characters that cover 99.99% of the sample)")
    log.info("training a %s tokenizer, vocab %d, on %.1f MB", model_type, vocab_size, os.path.getsize(sample_path) / 1e6)
    started = time.monotonic()
    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=_sample_lines(sample_path), model_writer=model, minloglevel=1, **options
    )
    seconds = time.monotonic() - started
    model_bytes = with_control_pieces(model.getvalue(), list(control_pieces))
    processor = spm.SentencePieceProcessor(model_proto=model_bytes)
    if processor.get_piece_size() < vocab_size:
        log.warning("the sample allows only %d pieces of the %d asked for", processor.get_piece_size(), vocab_size)
    write_bytes_atomic(join(out_dir, MODEL_FILE), model_bytes)
    record = {
        "model": MODEL_FILE,
        "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
        "vocab_size": processor.get_piece_size(),
        "model_type": model_type,
        "special_ids": _special_ids(processor),
        "parameters": {**options, "seed": seed, "control_pieces": len(control_pieces)},
        "sample": {**(sample or {}), "path": sample_path, "file_bytes": os.path.getsize(sample_path),
                   "sha256": file_sha256(sample_path)},
        "seconds": round(seconds, 3),
        "sentencepiece": spm.__version__,
        "strata_version": __version__,
    }
    write_bytes_atomic(join(out_dir, RECORD_FILE), json.dumps(record, indent=2).encode())
    return record


def _sample_lines(path: str) -> Iterator[str]:
    with open(path, encoding="utf-8", newline="\n") as f:
        for line in f:
            yield line.rstrip("\n")


# --------------------------------------------------------------------------- loading


def load_tokenizer(model_path: str) -> spm.SentencePieceProcessor:
    """A sentencepiece model from a path or URI."""
    fs, path = filesystem(model_path)
    with fs.open(path, "rb") as f:
        return spm.SentencePieceProcessor(model_proto=f.read())


def load_tokenizer_record(out_dir: str) -> dict:
    fs, path = filesystem(join(out_dir, RECORD_FILE))
    with fs.open(path, "rb") as f:
        return json.load(f)


def special_ids(model_path: str) -> dict:
    """{pad, unk, bos, eos, mask} ids of a model (None for one it lacks), and those of the
    objective specials it has (tokenize/specials.py)."""
    return _special_ids(load_tokenizer(model_path))


def _special_ids(processor: spm.SentencePieceProcessor) -> dict:
    ids = {"pad": processor.pad_id(), "unk": processor.unk_id(), "bos": processor.bos_id(), "eos": processor.eos_id()}
    mask = processor.piece_to_id(MASK)
    ids = {name: (i if i >= 0 else None) for name, i in ids.items()}
    ids["mask"] = mask if processor.id_to_piece(mask) == MASK else None
    return {**ids, **objective_special_ids(processor)}


def file_sha256(uri: str) -> str:
    digest = hashlib.sha256()
    fs, path = filesystem(uri)
    with fs.open(path, "rb") as f:
        while chunk := f.read(2**20):
            digest.update(chunk)
    return digest.hexdigest()
