"""Per-document fingerprints for dedup, pure functions in bounded memory whatever the
document's size:

    content_hash        exact duplicates: blake2b-128 of the lowercased text with
                        whitespace runs collapsed
    minhash_signature   near duplicates: MinHash over shingles, word n-grams or, for a text
                        mostly in a script written without spaces (CJK, Thai; chosen per
                        document), character n-grams; bit for bit datasketch's
    band_keys           signatures cut into LSH bands, one 64-bit key per band
    estimated_jaccard   two signatures' agreement
"""

from __future__ import annotations

import functools
import hashlib
import re
import zlib
from collections.abc import Iterator

import numpy as np

from strata.config import NearDedupConfig
from strata.pipeline.hashing import splitmix64
from strata.pipeline.languages import mostly_unsegmented

# Characters per chunk when a document is normalized piece by piece: big enough to
# amortise per-chunk overhead, small enough that a chunk's words stay well under a MB.
_CHUNK_CHARS = 1 << 15

# Size of the (shingles x num_perm) uint32 matrix that _update_in_batches builds per
# call. Bigger batches fall out of the CPU cache, and past about 1 MB glibc's malloc
# hands every such temporary back to the OS, which made whole documents 2.5x slower.
_PERMUTATION_MATRIX_BYTES = 1 << 19

_WHITESPACE = re.compile(r"\s")  # the same characters as str.split() and str.isspace()


def normalized_pieces(text: str, chunk_chars: int) -> Iterator[str]:
    """The normalized content of `text` (lowercased words joined by one space) in
    non-empty pieces; joined with single spaces they equal " ".join(text.lower().split()).

    Chunks are cut at whitespace, so no word is split and lowercasing sees the same
    context as on the whole text (its one context rule, final sigma, stops at whitespace).
    """
    start = 0
    while start < len(text):
        boundary = _WHITESPACE.search(text, start + chunk_chars)
        end = boundary.start() if boundary else len(text)
        piece = " ".join(text[start:end].lower().split())
        if piece:
            yield piece
        start = end


def content_hash(text: str, *, chunk_chars: int = _CHUNK_CHARS) -> str:
    """Hex blake2b-128 of the text lowercased, whitespace runs collapsed to one space, stripped."""
    digest = hashlib.blake2b(digest_size=16)
    separator = b""
    for piece in normalized_pieces(text, chunk_chars):
        digest.update(separator)
        digest.update(piece.encode("utf-8", "surrogatepass"))
        separator = b" "
    return digest.hexdigest()


_GOLDEN32 = np.uint32(0x9E3779B1)


def _mix32(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer: an avalanching bijection on uint32."""
    values = values ^ (values >> np.uint32(16))
    values = values * np.uint32(0x85EBCA6B)
    values = values ^ (values >> np.uint32(13))
    values = values * np.uint32(0xC2B2AE35)
    return values ^ (values >> np.uint32(16))


def _word_hashes(piece: str) -> np.ndarray:
    """crc32 of every word of a normalized piece (deterministic across processes, unlike hash())."""
    # Words hold no whitespace, so splitting the encoded piece at b" " gives exactly the
    # encoded words (the bytes of a multi-byte UTF-8 character are never ASCII).
    words = piece.encode("utf-8", "surrogatepass").split(b" ")
    return np.fromiter(map(zlib.crc32, words), dtype=np.uint32, count=len(words))


def _char_hashes(piece: str) -> np.ndarray:
    """A hash of every character of a normalized piece, spaces left out."""
    points = np.frombuffer(piece.replace(" ", "").encode("utf-32-le", "surrogatepass"), np.uint32)
    return _mix32(points + _GOLDEN32)


def _shingle_hashes(word_hashes: np.ndarray, width: int) -> np.ndarray:
    """One 32-bit hash per run of `width` consecutive units (words or characters), order-sensitive."""
    count = len(word_hashes) - width + 1
    combined = np.zeros(count, dtype=np.uint32)
    for offset in range(width):
        combined = _mix32(combined * _GOLDEN32 + word_hashes[offset : offset + count])
    return combined


@functools.lru_cache(maxsize=8)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's (2.x) "affine32" permutations h -> a*h + b mod 2^32, a odd, drawn from
    numpy's RandomState(seed) exactly as datasketch draws them: signatures are bit-for-bit
    datasketch's (a test checks), without importing it (it imports scipy: 40 MB a process)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def minhash_signature(text: str, cfg: NearDedupConfig, *, chunk_chars: int = _CHUNK_CHARS) -> np.ndarray:
    """MinHash (datasketch's default affine32 scheme, uint32) of the document's shingles:
    word `cfg.ngram`-grams, words being the whitespace split of the lowercased text; or,
    when most of its letters are in scripts without spaces between words (CJK, Thai),
    `cfg.char_ngram`-grams of its characters, whitespace left out.

    A document of fewer than n units has one shingle of all of them. An empty document
    keeps the empty signature (all 2^32-1), to which `band_keys` gives no keys. The text
    is processed in chunks, carrying the last n-1 units over, so memory does not grow
    with the document.
    """
    if mostly_unsegmented(text):
        units_of, width = _char_hashes, cfg.char_ngram
    else:
        units_of, width = _word_hashes, cfg.ngram
    permutations = _permutations(cfg.num_perm, cfg.seed)
    signature = np.full(cfg.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
    carried = np.zeros(0, dtype=np.uint32)  # the last width-1 unit hashes seen
    units_seen = 0
    for piece in normalized_pieces(text, chunk_chars):
        unit_hashes = units_of(piece)
        units_seen += len(unit_hashes)
        window = np.concatenate([carried, unit_hashes])
        if len(window) >= width:
            _update_in_batches(signature, permutations, _shingle_hashes(window, width))
        carried = window[max(0, len(window) - (width - 1)) :]
    if 0 < units_seen < width:
        _update_in_batches(signature, permutations, _shingle_hashes(carried, units_seen))
    return signature


def _update_in_batches(signature: np.ndarray, permutations, shingle_hashes: np.ndarray) -> None:
    a, b = permutations
    batch = max(1, _PERMUTATION_MATRIX_BYTES // (4 * len(signature)))
    for start in range(0, len(shingle_hashes), batch):
        # datasketch applies MurmurHash3's finalizer before the permutations
        mixed = _mix32(shingle_hashes[start : start + batch].astype(np.uint32, copy=False)).reshape(-1, 1)
        np.minimum(signature, (mixed * a + b).min(axis=0), out=signature)


def estimated_jaccard(signature_a: np.ndarray, signature_b: np.ndarray) -> float:
    """The fraction of permutations on which the two signatures agree."""
    return float(np.count_nonzero(signature_a == signature_b)) / len(signature_a)


NO_KEY = 0  # band_keys' value for an empty document: every real key is odd


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(documents, bands) uint64: one key per band of each signature (a row of
    `signatures`), the band index and its `rows` values mixed by splitmix64. Documents that
    share a key agree on a whole band (up to a 2^-63 chance per pair of bands, and every
    candidate pair is verified against its signatures unless `verify` is off). An empty
    document's signature (all 2^32-1) gets NO_KEY in every band: it is nobody's near
    duplicate. Vectorized over a batch: one key costs a few nanoseconds, where a digest
    call per band cost a microsecond."""
    signatures = np.atleast_2d(signatures)
    if signatures.shape[1] != bands * rows:
        raise ValueError(f"a signature of {signatures.shape[1]} values cannot be cut into {bands} bands of {rows} rows")
    values = signatures.reshape(len(signatures), bands, rows).astype(np.uint64)
    keys = np.broadcast_to(np.arange(bands, dtype=np.uint64), (len(signatures), bands)).copy()
    for row in range(rows):
        keys = splitmix64(keys * np.uint64(0x9E3779B97F4A7C15) + values[:, :, row])
    keys |= np.uint64(1)
    keys[~np.any(signatures != np.iinfo(np.uint32).max, axis=1)] = NO_KEY
    return keys
