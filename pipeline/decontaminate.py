"""Decontamination against evaluation sets, as GPT-3 (Brown et al. 2020, appendix C) and
NeMo Curator's task decontamination do it.

Eval texts (the configured `fields` of every record of each set) and documents are read
as normalized words: lowercased runs of letters and digits (punctuation and spacing do
not matter). An eval text gives its word `ngram`-grams (13); a shorter one, of at least
`min_ngram` words (8), gives itself whole. A document region matching any of them is
removed with `remove_chars` (200) characters on each side, and the document is split
there: pieces shorter than `min_piece_chars` (200) go, and the rest are joined by blank
lines into the document that is kept. A document split more than `max_splits` (10) times,
or with nothing left, is dropped as `contaminated:<set>`. The defaults are NeMo Curator's
(TaskDecontamination: max_ngram_size 13, min_ngram_size 8, remove_char_each_side 200,
min_document_length 200, max_splits 10); GPT-3 used 13-grams and the 200 characters.
NeMo's max_matches (ignore n-grams found in more than 10 documents) is not implemented.

The eval n-grams are a side input (`index`): by default one sorted uint64 array of 64-bit
n-gram hashes and a parallel int32 array of set indices, 12 bytes per n-gram (1.2 MB for
100k), searched with `np.searchsorted` behind a bitmap of the hashes' leading bits (8
more bytes per n-gram): exact (only a 64-bit hash collision could match wrongly). `index: bloom` keeps one Bloom filter per set instead (BloomEvalNgrams), about
3.6 bytes per n-gram at the default `bloom_fp_rate` of 1e-6, for eval sets too large for
12 bytes each; its false positives cut text that matches no eval set, so it is not the
default (tests/bench/bench_decontaminate.py measures both). Matching is one pass over each
document's word hashes.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow.parquet as pq
import zstandard

from strata.config import DecontaminateConfig
from strata.pipeline import text_scan
from strata.pipeline.bloom import BloomFilter
from strata.pipeline.hashing import splitmix64
from strata.storage import filesystem

_WORD = re.compile(r"[^\W_]+")
_BASE = np.uint64(0x9E3779B97F4A7C15)


def _words(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hash, start, end) of each normalized word of `text` (a run of letters and digits,
    lowercased), as arrays; start and end are character offsets. The hash is the
    polynomial of the lowercased word's code points (text_scan.span_hashes), mixed.

    Where lowercasing maps every character to one (so the lowercased text lines up with the
    text) and the text has no capital sigma (whose lowercase depends on what follows), the
    words are found and hashed with numpy over the whole text; else word by word."""
    lowered = text.lower()
    if len(text) > 2 * text_scan.BLOCK_CHARS or len(lowered) != len(text) or "Σ" in text:
        spans = [m.span() for m in _WORD.finditer(text)]
        words = "\x00".join(text[b:e] for b, e in spans).lower().split("\x00") if spans else []
        hashes = _hashes_of_words(words)
        starts, ends = (np.array(column, np.int64) for column in zip(*spans)) if spans else (np.zeros(0, np.int64),) * 2
    else:
        points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)
        starts, ends = text_scan.true_runs(_alnum_table()[points])
        lowered_points = np.frombuffer(lowered.encode("utf-32-le", "surrogatepass"), np.uint32)
        hashes = text_scan.span_hashes(text_scan.hash_prefix(lowered_points), starts, ends)
    return splitmix64(hashes + np.uint64(1)), starts, ends


def _hashes_of_words(words: list[str]) -> np.ndarray:
    """text_scan.span_hashes of each word, the words joined by NUL in groups of at most
    2 * BLOCK_CHARS code points (a longer word is hashed piece by piece)."""
    hashes = np.zeros(len(words), np.uint64)
    limit = 2 * text_scan.BLOCK_CHARS
    first = 0
    while first < len(words):
        last, size = first, 0
        while last < len(words) and size + len(words[last]) < limit:
            size += len(words[last]) + 1
            last += 1
        if last == first:  # one word longer than a group
            hashes[first] = _long_word_hash(words[first], limit)
            first += 1
            continue
        group = words[first:last]
        lengths = np.array([len(word) for word in group], np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths[:-1] + 1)])
        points = np.frombuffer("\x00".join(group).encode("utf-32-le", "surrogatepass"), np.uint32)
        hashes[first:last] = text_scan.span_hashes(text_scan.hash_prefix(points), starts, starts + lengths)
        first = last
    return hashes


def _long_word_hash(word: str, piece: int) -> np.uint64:
    """span_hashes of one word, summed over pieces of it: h(a + b) = h(a) + base**len(a) * h(b)."""
    total, offset = 0, 0
    for start in range(0, len(word), piece):
        points = np.frombuffer(word[start : start + piece].encode("utf-32-le", "surrogatepass"), np.uint32)
        part = int(text_scan.hash_prefix(points)[-1])
        total = (total + part * pow(text_scan.CHAR_BASE, offset, 2**64)) % 2**64
        offset += len(points)
    return np.uint64(total)


@functools.cache
def _alnum_table() -> np.ndarray:
    """str.isalnum() of every code point: the characters of a word (`[^\\W_]`)."""
    return np.fromiter((chr(c).isalnum() for c in range(0x110000)), bool, 0x110000)


def ngram_hashes(word_hashes: np.ndarray, n: int) -> np.ndarray:
    """64-bit hash of every run of n consecutive words (position i: words i..i+n-1): the
    polynomial of their (mixed) word hashes, mixed once more."""
    count = len(word_hashes) - n + 1
    if count <= 0:
        return np.zeros(0, np.uint64)
    combined = word_hashes[:count].copy()
    with np.errstate(over="ignore"):
        for offset in range(1, n):
            combined *= _BASE
            combined += word_hashes[offset : offset + count]
    return splitmix64(combined)


@dataclass
class EvalNgrams:
    """The n-grams of every eval set: sorted hashes, the set index of each, the n-gram
    lengths present, and the set names.

    Lookups first test one bit of `top_bits`, a bitmap of the hashes' leading bits with
    about 64 bits per n-gram (1 MB for 100k): most document n-grams are in no eval set,
    and only the ~1.5% whose bit is set are binary-searched."""

    hashes: np.ndarray
    set_index: np.ndarray
    lengths: tuple[int, ...]
    names: tuple[str, ...]
    top_bits: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        self.top_shift = np.uint64(64 - _top_bit_count(len(self.hashes)))
        top = self.hashes >> self.top_shift
        self.top_bits = np.zeros(1 << (64 - int(self.top_shift) - 3), np.uint8)
        np.bitwise_or.at(self.top_bits, top >> np.uint64(3), np.left_shift(1, top & np.uint64(7)).astype(np.uint8))

    def __len__(self) -> int:
        return len(self.hashes)

    def to_dict(self) -> dict:
        """Plain data, for a Beam side input."""
        return {"hashes": self.hashes.tobytes(), "set_index": self.set_index.tobytes(),
                "lengths": list(self.lengths), "names": list(self.names)}

    @classmethod
    def from_dict(cls, d: dict) -> "EvalNgrams":
        return cls(np.frombuffer(d["hashes"], np.uint64), np.frombuffer(d["set_index"], np.int32),
                   tuple(d["lengths"]), tuple(d["names"]))

    def lookup(self, found: np.ndarray) -> np.ndarray:
        """The set index of each n-gram hash, -1 for one in no set."""
        top = found >> self.top_shift
        maybe = np.flatnonzero((self.top_bits[top >> np.uint64(3)] >> (top & np.uint64(7)).astype(np.uint8)) & 1)
        result = np.full(len(found), -1, np.int32)
        if len(maybe):
            positions = np.minimum(np.searchsorted(self.hashes, found[maybe]), len(self) - 1)
            result[maybe] = np.where(self.hashes[positions] == found[maybe], self.set_index[positions], -1)
        return result


def _top_bit_count(ngrams: int) -> int:
    """log2 of the bitmap size in bits: at least 64 bits per n-gram, 2**16 to 2**33 bits."""
    return min(33, max(16, (64 * max(1, ngrams) - 1).bit_length()))


@dataclass
class BloomEvalNgrams:
    """The n-grams of every eval set as one Bloom filter per set (bloom.py): about 3.6
    bytes per n-gram at a false positive rate of 1e-6 instead of 12, no false negatives,
    and, with S sets, an n-gram in none of them taken for an eval n-gram with probability
    at most S x `bloom_fp_rate`. A hash in two sets counts for the first, as in EvalNgrams."""

    filters: tuple[BloomFilter, ...]
    lengths: tuple[int, ...]
    names: tuple[str, ...]

    @classmethod
    def from_sorted(cls, ngrams: EvalNgrams, fp_rate: float) -> "BloomEvalNgrams":
        filters = []
        for index in range(len(ngrams.names)):
            hashes = ngrams.hashes[ngrams.set_index == index]
            bloom = BloomFilter.for_capacity(len(hashes), fp_rate)
            bloom.add(hashes)
            filters.append(bloom)
        return cls(tuple(filters), ngrams.lengths, ngrams.names)

    def __len__(self) -> int:
        return sum(f.added for f in self.filters)

    def to_dict(self) -> dict:
        return {"bloom": [f.to_dict() for f in self.filters], "lengths": list(self.lengths), "names": list(self.names)}

    @classmethod
    def from_dict(cls, d: dict) -> "BloomEvalNgrams":
        return cls(tuple(BloomFilter.from_dict(f) for f in d["bloom"]), tuple(d["lengths"]), tuple(d["names"]))

    def lookup(self, found: np.ndarray) -> np.ndarray:
        result = np.full(len(found), -1, np.int32)
        for index, bloom in enumerate(self.filters):
            undecided = np.flatnonzero(result < 0)
            result[undecided[bloom.contains(found[undecided])]] = index
        return result


def eval_index_from_dict(d: dict) -> EvalNgrams | BloomEvalNgrams:
    """The eval n-gram index of a side input, either kind."""
    return BloomEvalNgrams.from_dict(d) if "bloom" in d else EvalNgrams.from_dict(d)


def eval_text_ngrams(text: str, ngram: int, min_ngram: int) -> tuple[int, np.ndarray]:
    """(n-gram length, hashes) of one eval text: its `ngram`-grams, itself whole when it has
    min_ngram to ngram-1 words, nothing when shorter."""
    word_hashes = _words(text)[0]
    n = min(ngram, len(word_hashes))
    if n < min_ngram:
        return n, np.zeros(0, np.uint64)
    return n, ngram_hashes(word_hashes, n)


def load_eval_index(cfg: DecontaminateConfig) -> EvalNgrams | BloomEvalNgrams:
    """The eval n-grams as `cfg.index` says: sorted hashes, or Bloom filters."""
    ngrams = load_eval_ngrams(cfg)
    return BloomEvalNgrams.from_sorted(ngrams, cfg.bloom_fp_rate) if cfg.index == "bloom" else ngrams


def load_eval_ngrams(cfg: DecontaminateConfig) -> EvalNgrams:
    """Reads every eval set (local or remote jsonl[.gz|.zst], parquet or text files) and
    hashes its n-grams; a hash in two sets keeps the first set's name."""
    hashes, sets, lengths = [], [], set()
    for index, eval_set in enumerate(cfg.sets):
        for text in _eval_texts(eval_set.paths, eval_set.fields):
            n, found = eval_text_ngrams(text, cfg.ngram, cfg.min_ngram)
            if len(found):
                lengths.add(n)
                hashes.append(found)
                sets.append(np.full(len(found), index, np.int32))
    if not hashes:
        return EvalNgrams(np.zeros(0, np.uint64), np.zeros(0, np.int32), (), tuple(s.name for s in cfg.sets))
    all_hashes, all_sets = np.concatenate(hashes), np.concatenate(sets)
    unique, first = np.unique(all_hashes, return_index=True)
    return EvalNgrams(unique, all_sets[first], tuple(sorted(lengths)), tuple(s.name for s in cfg.sets))


def _eval_paths(pattern: str) -> tuple[object, list[str]]:
    """The file system of a path or glob, and the files it names there."""
    fs, path = filesystem(pattern)
    return fs, sorted(fs.glob(path)) if any(c in path for c in "*?[") else [path]


def eval_files_fingerprint(cfg: DecontaminateConfig) -> list[dict]:
    """Size and sha256 of every eval file, per set: a settings fingerprint that changes
    when a file's contents do, not only when the config names other files."""
    files = []
    for eval_set in cfg.sets:
        for pattern in eval_set.paths:
            fs, paths = _eval_paths(pattern)
            for path in paths:
                digest = hashlib.sha256()
                with fs.open(path, "rb") as f:
                    while chunk := f.read(1 << 20):
                        digest.update(chunk)
                files.append({"set": eval_set.name, "size": fs.size(path), "sha256": digest.hexdigest()})
    return files


def _eval_files(pattern: str) -> Iterator[tuple[str, object]]:
    """(name without .gz/.zst, open decompressed file) of every file a path or glob names."""
    fs, paths = _eval_paths(pattern)
    for found in paths:
        raw = fs.open(found, "rb")
        if found.endswith(".gz"):
            yield found.removesuffix(".gz"), gzip.open(raw)
        elif found.endswith(".zst"):
            yield found.removesuffix(".zst"), zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
        else:
            yield found, raw


def _eval_texts(paths: list[str], fields: list[str]) -> Iterator[str]:
    for path in paths:
        for name, opened in _eval_files(path):
            with opened as f:
                if name.endswith(".parquet"):
                    records = pq.read_table(f).to_pylist()
                elif name.endswith((".jsonl", ".json")):
                    records = (json.loads(line) for line in _lines(f) if line.strip())
                else:  # text: one eval text per line
                    yield from (line.decode("utf-8").strip() for line in _lines(f) if line.strip())
                    continue
                for record in records:
                    for field in fields:
                        yield from _field_texts(record, field.split("."))


def _lines(f) -> Iterator[bytes]:
    """Lines of a binary file, zstd stream readers included (they do not iterate by line)."""
    buffer = b""
    while chunk := f.read(1 << 20):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        yield from lines
    if buffer:
        yield buffer


def _field_texts(value, path: list[str]) -> Iterator[str]:
    """The strings at a dotted path of a record; lists (e.g. answer choices) give each item."""
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return
        value = value[key]
    items = value if isinstance(value, list) else [value]
    yield from (item for item in items if isinstance(item, str))


@dataclass
class Decontaminated:
    text: str  # what is left (unchanged when nothing matched)
    set_name: str | None  # the set with the most matched n-grams, None when clean
    ngrams: int  # matched n-grams, all sets
    chars_removed: int
    dropped: bool  # split more than max_splits times, or nothing left


def decontaminate(text: str, index: EvalNgrams | BloomEvalNgrams, cfg: DecontaminateConfig) -> Decontaminated:
    """Removes every region of `text` matching an eval n-gram, with cfg.remove_chars on each side."""
    if not len(index):
        return Decontaminated(text, None, 0, 0, False)
    word_hashes, starts, ends = _words(text)
    matches = []  # (first word, n, set index) of every matched n-gram
    for n in index.lengths:
        found = ngram_hashes(word_hashes, n)
        if not len(found):
            continue
        sets = index.lookup(found)
        matches += [(int(i), n, int(sets[i])) for i in np.flatnonzero(sets >= 0)]
    if not matches:
        return Decontaminated(text, None, 0, 0, False)
    regions = [(max(0, int(starts[i]) - cfg.remove_chars), min(len(text), int(ends[i + n - 1]) + cfg.remove_chars))
               for i, n, _ in matches]
    matched_sets = [index_of_set for _, _, index_of_set in matches]
    set_name = index.names[np.bincount(matched_sets).argmax()]
    merged = _merged(regions)
    pieces, start = [], 0
    for begin, end in merged:
        pieces.append(text[start:begin])
        start = end
    pieces.append(text[start:])
    kept = [p.strip() for p in pieces if len(p.strip()) >= cfg.min_piece_chars]
    left = "\n\n".join(kept)
    dropped = len(merged) > cfg.max_splits or not kept
    removed = len(text) if dropped else len(text) - len(left)
    return Decontaminated(text if dropped else left, set_name, len(regions), removed, dropped)


def _merged(regions: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for begin, end in sorted(regions):
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    return [(b, e) for b, e in merged]
