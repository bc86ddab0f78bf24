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

The per-document fingerprints are pure functions (fingerprints.py), the components a
Beam transform of their own (components.py). The Beam transforms here stream their
grouped values (a band bucket, a document's pairs).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import apache_beam as beam
import numpy as np

from strata.config import NearDedupConfig
from strata.pipeline.components import ComponentsInOneWorker, ConnectedComponents, star_edges
from strata.pipeline.fingerprints import NO_KEY, band_keys, estimated_jaccard


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


class SharedBands(beam.PTransform):
    """Batches (lists) of (doc_id, signature) -> (band key, doc_id) for every band a document
    shares with at least one other document: the only bands that can make a candidate pair,
    among these documents or any subset of them.

    Keys are computed per batch of signatures (fingerprints.band_keys) and grouped by
    `partitions` ranges of key values, each partition's keys sorted with numpy: a
    document's 50 keys travel as a few array elements, not as 50 shuffled records (which
    cost more than computing the signatures). A partition holds its keys in memory (8 bytes
    and a node reference each); the caller picks `partitions` by the corpus size."""

    def __init__(self, cfg: NearDedupConfig, partitions: int = 1):
        super().__init__()
        self.cfg = cfg
        self.partitions = partitions

    def expand(self, signature_batches):
        return (
            signature_batches
            | "KeysByPartition" >> beam.FlatMap(_keys_by_partition, self.cfg.bands, self.cfg.rows, self.partitions)
            | "GroupByPartition" >> beam.GroupByKey()
            | "Shared" >> beam.FlatMapTuple(_shared_keys)
        )


def _keys_by_partition(batch: list[tuple], bands: int, rows: int, partitions: int) -> Iterator[tuple]:
    """(partition, (keys, owners, doc_ids)) of a batch of (doc_id, signature): each key's
    owner is its position in doc_ids, the documents of that partition's keys."""
    doc_ids = [doc_id for doc_id, _ in batch]
    keys = band_keys(np.stack([signature for _, signature in batch]), bands, rows).ravel()
    owners = np.repeat(np.arange(len(batch), dtype=np.int64), bands)
    real = keys != NO_KEY
    keys, owners = keys[real], owners[real]
    partition_of = keys % np.uint64(partitions)
    for partition in np.unique(partition_of).tolist():
        chosen = partition_of == partition
        documents, owner = np.unique(owners[chosen], return_inverse=True)
        yield partition, (keys[chosen], owner, [doc_ids[i] for i in documents.tolist()])


def _shared_keys(_partition, parts: Iterable[tuple]) -> Iterator[tuple]:
    """(key, doc_id) for every key of a partition that two or more documents hold."""
    keys, owners, doc_ids = [], [], []
    for part_keys, part_owners, part_doc_ids in parts:
        keys.append(part_keys)
        owners.append(part_owners + len(doc_ids))
        doc_ids.extend(part_doc_ids)
    if not keys:
        return
    keys, owners = np.concatenate(keys), np.concatenate(owners)
    order = np.argsort(keys, kind="stable")
    keys, owners = keys[order], owners[order]
    shared = np.zeros(len(keys), bool)
    same_as_next = keys[1:] == keys[:-1]
    shared[1:] |= same_as_next
    shared[:-1] |= same_as_next
    for key, owner in zip(keys[shared].tolist(), owners[shared].tolist()):
        yield key, doc_ids[owner]


class NearDuplicates(beam.PTransform):
    """(doc_id, signature) -> (doc_id, (survivor, cluster_id, similarity)) for every document
    in a cluster of two or more; cluster_id is the cluster's smallest doc_id. For a duplicate,
    survivor is the representative it was verified against and similarity their estimated
    Jaccard; for a representative (kept), both are None.

    `band_members`, when given, are the (band key, doc_id) of the shared bands of these
    documents (SharedBands of a superset of them, as annotation stores it); only the
    documents among them need a signature. Else they are found here. `small_graph` (the
    caller knows there are few band members) computes the clusters in one worker."""

    def __init__(self, cfg: NearDedupConfig, band_members=None, small_graph: bool = False):
        super().__init__()
        self.cfg = cfg
        self.band_members = band_members
        self.small_graph = small_graph

    def expand(self, signatures):
        cfg = self.cfg
        if self.band_members is not None:
            members = self.band_members
        else:
            members = signatures | "OnePerBatch" >> beam.Map(lambda doc: [doc]) | "SharedBands" >> SharedBands(cfg)
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
            | "Clusters" >> (ComponentsInOneWorker() if self.small_graph else ConnectedComponents(cfg.max_rounds))
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
