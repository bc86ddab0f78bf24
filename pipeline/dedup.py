"""Exact and near-duplicate detection.

Exact duplicates share a `content_hash` (blake2b-128 of the lowercased text with
whitespace runs collapsed). Near duplicates are found with MinHash LSH over shingles:
word n-grams, or character n-grams for a text mostly in a script written without spaces
(CJK, Thai; chosen per document). Every document's signature is cut into bands,
documents sharing a band become candidate pairs, candidates are optionally verified
against the estimated Jaccard, and the surviving pairs are merged into clusters by
connected components computed inside Beam (large-star / small-star, Kiveris et al.
2014). Clusters are then verified against their representatives, as NeMo Curator's and
text-dedup's verification steps do, so that no chain A~B~C removes a C unlike A: in
doc_id order, a member is a duplicate of the first representative it is similar to
(estimated Jaccard at or above the threshold), or else becomes a representative itself.

The pure functions work on one document in bounded memory, whatever its size. The
Beam transforms stream their grouped values (a band bucket, a document's pairs) and
hold at most one node's neighbourhood in memory while computing components.
"""

from __future__ import annotations

import functools
import hashlib
import re
import zlib
from collections.abc import Iterable, Iterator

import apache_beam as beam
import numpy as np

from strata.config import NearDedupConfig
from strata.pipeline.languages import mostly_unsegmented

# Characters per chunk when a document is normalized piece by piece: big enough to
# amortise per-chunk overhead, small enough that a chunk's words stay well under a MB.
_CHUNK_CHARS = 1 << 15

# Size of the (shingles x num_perm) uint32 matrix that _update_in_batches builds per
# call. Bigger batches fall out of the CPU cache, and past about 1 MB glibc's malloc
# hands every such temporary back to the OS, which made whole documents 2.5x slower.
_PERMUTATION_MATRIX_BYTES = 1 << 19

_WHITESPACE = re.compile(r"\s")  # the same characters as str.split() and str.isspace()


# --------------------------------------------------------------------------- exact


def _normalized_pieces(text: str, chunk_chars: int) -> Iterator[str]:
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
    for piece in _normalized_pieces(text, chunk_chars):
        digest.update(separator)
        digest.update(piece.encode("utf-8", "surrogatepass"))
        separator = b" "
    return digest.hexdigest()


class ExactDuplicates(beam.PTransform):
    """(doc_id, content_hash) -> (doc_id, survivor_doc_id) for every document that is not
    the survivor of its content-hash group; the survivor is the group's smallest doc_id."""

    def expand(self, doc_hashes):
        return (
            doc_hashes
            | "KeyByContentHash" >> beam.KvSwap()
            | "GroupByContentHash" >> beam.GroupByKey()
            | "SurvivorToEachCopy" >> beam.FlatMapTuple(star_edges)
            | "CopyToSurvivor" >> beam.KvSwap()
        )


def star_edges(_key, members: Iterable) -> Iterator[tuple]:
    """(smallest, other) for every member of a group but the smallest, in two passes over
    the grouped values (Beam's grouped iterables may be re-iterated, and may not fit in memory)."""
    smallest = min(members)
    for member in members:
        if member != smallest:
            yield smallest, member


# --------------------------------------------------------------------------- minhash

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
    for piece in _normalized_pieces(text, chunk_chars):
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


def band_keys(signature: np.ndarray, bands: int, rows: int) -> list[bytes]:
    """One key per band: the band index and a digest of its `rows` values. Documents that
    share a key agree on a whole band. An empty document's signature has no keys: it is
    nobody's near duplicate."""
    if len(signature) != bands * rows:
        raise ValueError(f"a signature of {len(signature)} values cannot be cut into {bands} bands of {rows} rows")
    if not np.any(signature != np.iinfo(signature.dtype).max):
        return []
    little_endian = signature.astype(signature.dtype.newbyteorder("<"), copy=False)
    return [
        band.to_bytes(4, "big") + hashlib.blake2b(values.tobytes(), digest_size=12).digest()
        for band, values in enumerate(np.split(little_endian, bands))
    ]


# --------------------------------------------------------------------------- near duplicates


class SharedBands(beam.PTransform):
    """(doc_id, signature) -> (band key, doc_id) for every band a document shares with at
    least one other document: the only bands that can make a candidate pair, among these
    documents or any subset of them."""

    def __init__(self, cfg: NearDedupConfig):
        super().__init__()
        self.cfg = cfg

    def expand(self, signatures):
        return (
            signatures
            | "KeyByBand" >> beam.FlatMap(_keyed_by_band, self.cfg.bands, self.cfg.rows)
            | "GroupByBand" >> beam.GroupByKey()
            | "Shared" >> beam.FlatMapTuple(_members_if_shared)
        )


def _members_if_shared(key: bytes, doc_ids: Iterable) -> Iterator[tuple]:
    """(key, doc_id) for every member of a bucket of two or more, in two passes over the
    grouped values (Beam's grouped iterables may be re-iterated, and may not fit in memory)."""
    members = iter(doc_ids)
    if next(members, None) is not None and next(members, None) is not None:
        for doc_id in doc_ids:
            yield key, doc_id


class NearDuplicates(beam.PTransform):
    """(doc_id, signature) -> (doc_id, (survivor, cluster_id, similarity)) for every document
    in a cluster of two or more; cluster_id is the cluster's smallest doc_id. For a duplicate,
    survivor is the representative it was verified against and similarity their estimated
    Jaccard; for a representative (kept), both are None.

    `band_members`, when given, are the (band key, doc_id) of the shared bands of these
    documents (SharedBands of a superset of them, as annotation stores it); only the
    documents among them need a signature. Else they are found here."""

    def __init__(self, cfg: NearDedupConfig, band_members=None):
        super().__init__()
        self.cfg = cfg
        self.band_members = band_members

    def expand(self, signatures):
        cfg = self.cfg
        members = self.band_members if self.band_members is not None else signatures | "SharedBands" >> SharedBands(cfg)
        pairs = (
            members
            | "GroupByBand" >> beam.GroupByKey()
            | "StarEdgesPerBucket" >> beam.FlatMapTuple(star_edges)
            | "DistinctPairs" >> beam.Distinct()
        )
        if cfg.verify:
            pairs = pairs | "KeepSimilarPairs" >> _KeepSimilarPairs(signatures, cfg.threshold)
        return (
            pairs
            | "Clusters" >> ConnectedComponents(cfg.max_rounds)
            | "WithSignatureOfMember" >> _WithSignature(signatures)
            | "KeyByCluster" >> beam.MapTuple(_keyed_by_cluster)
            | "GroupByCluster" >> beam.GroupByKey()
            | "VerifyAgainstRepresentatives" >> beam.FlatMap(lambda grouped, threshold: verify_cluster(*grouped, threshold), cfg.threshold)
        )


def _keyed_by_cluster(node, cluster_and_signature: tuple) -> tuple:
    cluster, signature = cluster_and_signature
    return cluster, (node, signature)


def verify_cluster(cluster, members: Iterable[tuple], threshold: float) -> Iterator[tuple]:
    """(node, (survivor, cluster, similarity)) for the members of one cluster, taken in node
    order: each is a duplicate of the first representative whose signature it matches at
    `threshold` or above, else a representative itself (survivor and similarity None). The
    smallest node is always a representative. Holds the cluster's signatures in memory
    (about 0.5 KB per member with 120 permutations)."""
    representatives: list[tuple] = []
    for node, signature in sorted(members, key=lambda member: member[0]):
        for representative, representative_signature in representatives:
            similarity = estimated_jaccard(signature, representative_signature)
            if similarity >= threshold:
                yield node, (representative, cluster, similarity)
                break
        else:
            representatives.append((node, signature))
            yield node, (None, cluster, None)


def _keyed_by_band(doc: tuple, bands: int, rows: int) -> Iterator[tuple]:
    doc_id, signature = doc
    for key in band_keys(signature, bands, rows):
        yield key, doc_id


class _KeepSimilarPairs(beam.PTransform):
    """Keep the pairs (a, b) whose estimated Jaccard reaches `threshold`, joining the
    signature of a, then of b, by doc_id."""

    def __init__(self, signatures, threshold: float):
        super().__init__()
        self.signatures = signatures
        self.threshold = threshold

    def expand(self, pairs):
        return (
            pairs
            | "WithSignatureOfFirst" >> _WithSignature(self.signatures)
            | "KeyBySecond" >> beam.MapTuple(_keyed_by_second)
            | "WithSignatureOfSecond" >> _WithSignature(self.signatures)
            | "Similar" >> beam.FlatMap(_pair_if_similar, self.threshold)
        )


def _keyed_by_second(a, b_and_signature_a: tuple) -> tuple:
    b, signature_a = b_and_signature_a
    return b, (a, signature_a)


def _pair_if_similar(joined: tuple, threshold: float) -> Iterator[tuple]:
    b, ((a, signature_a), signature_b) = joined
    if estimated_jaccard(signature_a, signature_b) >= threshold:
        yield a, b


_SIGNATURE, _PAYLOAD = 0, 1


class _WithSignature(beam.PTransform):
    """(doc_id, payload) -> (doc_id, (payload, signature of doc_id)): a join on doc_id that
    streams a document's payloads instead of listing them as CoGroupByKey does."""

    def __init__(self, signatures):
        super().__init__()
        self.signatures = signatures

    def expand(self, keyed):
        return (
            (
                self.signatures | "TagSignatures" >> beam.MapTuple(lambda doc_id, sig: (doc_id, (_SIGNATURE, sig))),
                keyed | "TagPayloads" >> beam.MapTuple(lambda doc_id, payload: (doc_id, (_PAYLOAD, payload))),
            )
            | "Flatten" >> beam.Flatten()
            | "GroupByDocId" >> beam.GroupByKey()
            | "Attach" >> beam.FlatMapTuple(_attach_signature)
        )


def _attach_signature(doc_id, tagged: Iterable[tuple]) -> Iterator[tuple]:
    signature = next((value for tag, value in tagged if tag == _SIGNATURE), None)
    if signature is None:
        return
    for tag, value in tagged:
        if tag == _PAYLOAD:
            yield doc_id, (value, signature)


# --------------------------------------------------------------------------- connected components


class ComponentsNotConverged(RuntimeError):
    """The large-star/small-star rounds did not reach a forest of stars."""


class ConnectedComponents(beam.PTransform):
    """Edges (u, v) -> (node, smallest node of its component) for every node of an edge.

    Alternates large-star and small-star rounds (Kiveris et al. 2014, "Connected
    Components in MapReduce and Beyond"), unrolled `max_rounds` times since a Beam graph
    is static; O(log n) rounds suffice in practice. Each step groups edges by node, so a
    worker holds one node's neighbourhood at a time. Self-loops carry no connectivity
    and are ignored. The pipeline fails if the graph is not a forest of stars after the
    last round.
    """

    def __init__(self, max_rounds: int):
        super().__init__()
        self.max_rounds = max_rounds

    def expand(self, edges):
        edges = edges | "SmallerNodeFirst" >> beam.FlatMapTuple(_ordered_edge)
        for round_number in range(1, self.max_rounds + 1):
            edges = (
                edges
                | f"LargeStar{round_number}" >> _LargeStar()
                | f"SmallStar{round_number}" >> _SmallStar()
            )
        return edges | "CentreOfEachStar" >> _CentreOfEachStar(self.max_rounds)


def _ordered_edge(u, v) -> Iterator[tuple]:
    if u != v:
        yield (u, v) if u < v else (v, u)


class _LargeStar(beam.PTransform):
    """Connect every neighbour larger than a node to the smallest node of its closed neighbourhood."""

    def expand(self, edges):
        return (
            edges
            | "BothDirections" >> beam.FlatMapTuple(lambda u, v: ((u, v), (v, u)))
            | "GroupByNode" >> beam.GroupByKey()
            | "Connect" >> beam.FlatMapTuple(_large_star)
        )


def _large_star(node, neighbours: Iterable) -> Iterator[tuple]:
    neighbours = set(neighbours)
    centre = min(min(neighbours), node)
    for neighbour in neighbours:
        if neighbour > node:
            yield centre, neighbour


class _SmallStar(beam.PTransform):
    """Connect a node and its smaller neighbours to the smallest of them."""

    def expand(self, edges):
        return (
            edges
            | "KeyByLarger" >> beam.KvSwap()
            | "GroupByNode" >> beam.GroupByKey()
            | "Connect" >> beam.FlatMapTuple(_small_star)
        )


def _small_star(node, smaller_neighbours: Iterable) -> Iterator[tuple]:
    smaller_neighbours = set(smaller_neighbours)
    centre = min(smaller_neighbours)
    for neighbour in smaller_neighbours:
        if neighbour != centre:
            yield centre, neighbour
    yield centre, node


class _CentreOfEachStar(beam.PTransform):
    """(node, centre) for every node once the edges form stars centred on their smallest
    nodes, which is what the rounds converge to; fails the pipeline otherwise.

    Each edge names its smaller end to both ends; in a converged graph every node then
    hears one name only, its star's centre."""

    def __init__(self, max_rounds: int):
        super().__init__()
        self.max_rounds = max_rounds

    def expand(self, edges):
        return (
            edges
            | "TellBothEnds" >> beam.FlatMapTuple(lambda centre, leaf: ((leaf, centre), (centre, centre)))
            | "GroupByNode" >> beam.GroupByKey()
            | "OnlyCentre" >> beam.FlatMap(_only_centre, self.max_rounds)
        )


def _only_centre(node_and_centres: tuple, max_rounds: int) -> Iterator[tuple]:
    node, centres = node_and_centres
    centres = iter(centres)
    centre = next(centres)
    for other in centres:
        if other != centre:
            raise ComponentsNotConverged(
                f"connected components of the near-duplicate graph did not converge within "
                f"dedup.near.max_rounds={max_rounds} rounds of large-star/small-star (node {node!r} is "
                f"not yet in a single star); raise dedup.near.max_rounds in the build config"
            )
    yield node, centre
