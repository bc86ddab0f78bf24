"""Exact and near-duplicate detection: the pure hashing functions, and the Beam transforms
run on the DirectRunner against planted duplicates and a union-find reference."""

from __future__ import annotations

import hashlib
import json
import os
import random
import string
import subprocess
import sys
import tracemalloc

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to

from strata.config import NearDedupConfig
from strata.pipeline.components import ComponentsInOneWorker, ConnectedComponents
from strata.pipeline.dedup import ExactDuplicates, NearDuplicates, SharedBands, verify_cluster
from strata.pipeline.fingerprints import NO_KEY, band_keys, content_hash, estimated_jaccard, minhash_signature
from strata.pipeline.schema import make_doc_id

CFG = NearDedupConfig()

# --------------------------------------------------------------------------- corpus helpers

_VOCABULARY = [
    "".join(random.Random(index).choices(string.ascii_lowercase, k=2 + index % 7)) for index in range(5000)
]


def random_words(rng: random.Random, count: int) -> list[str]:
    return rng.choices(_VOCABULARY, k=count)


def shingles(words: list[str], n: int = 5) -> set[tuple]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(words_a: list[str], words_b: list[str]) -> float:
    a, b = shingles(words_a), shingles(words_b)
    return len(a & b) / len(a | b)


def near_copy(words: list[str], below: float, rng: random.Random) -> tuple[list[str], float]:
    """Substitute random words until the word-5-gram Jaccard with `words` drops below `below`."""
    copy = list(words)
    while True:
        copy[rng.randrange(len(copy))] = rng.choice(_VOCABULARY)
        similarity = jaccard(words, copy)
        if similarity < below:
            return copy, similarity


def components_by_union_find(edges) -> dict:
    """node -> smallest node of its component; the reference for ConnectedComponents."""
    parent: dict = {}

    def root(node):
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for u, v in edges:
        root_u, root_v = root(u), root(v)
        parent[max(root_u, root_v)] = min(root_u, root_v)
    return {node: root(node) for node in parent}


def run_and_check(elements, transform, matcher):
    with BeamTestPipeline() as pipeline:
        assert_that(pipeline | beam.Create(elements) | transform, matcher)


# --------------------------------------------------------------------------- content_hash


def test_content_hash_ignores_case_and_whitespace_runs():
    expected = hashlib.blake2b(b"hello world", digest_size=16).hexdigest()
    assert content_hash("  Hello\t\n\u00a0WORLD \r\n") == expected
    assert content_hash("hello world") == expected
    assert content_hash("hello worlds") != expected
    assert content_hash("helloworld") != expected


@pytest.mark.parametrize("chunk_chars", [1, 2, 3, 7, 64, 4096])
def test_content_hash_in_chunks_equals_the_whole_text_definition(chunk_chars):
    rng = random.Random(chunk_chars)
    alphabet = "abcXYZ ΟΔΟΣ ΣΑΣ İé ß\ud800\t\n\r\u00a0\u2003\u3000\x1c\x85  "
    text = " " + "".join(rng.choice(alphabet) for _ in range(5000)) + "Σ\n"
    whole = " ".join(text.lower().split()).encode("utf-8", "surrogatepass")
    assert content_hash(text, chunk_chars=chunk_chars) == hashlib.blake2b(whole, digest_size=16).hexdigest()


def peak_traced_bytes(function, *args) -> int:
    tracemalloc.start()
    try:
        function(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


_FOX = "The Quick brown fox,\n  jumps over the lazy dog. "


def test_content_hash_of_a_50_mb_document():
    copies = 50 * 2**20 // len(_FOX)
    normalized = (b"the quick brown fox, jumps over the lazy dog. " * copies).rstrip()
    assert content_hash(_FOX * copies) == hashlib.blake2b(normalized, digest_size=16).hexdigest()


def test_content_hash_memory_does_not_grow_with_the_document():
    text = _FOX * (4 * 2**20 // len(_FOX))
    assert peak_traced_bytes(content_hash, text) < 2**20  # its lowercased copy alone would take 4 MB


# --------------------------------------------------------------------------- minhash

_SAMPLE_TEXTS = [
    "The quick brown fox jumps over the lazy dog, again and again and again.",
    "three short words",
    "",
    " ".join(random_words(random.Random(7), 3000)),
]

_SIGNATURES_IN_A_CHILD = """
import json, sys
from strata.config import NearDedupConfig
from strata.pipeline.fingerprints import minhash_signature
texts = json.loads(sys.stdin.read())
print(json.dumps([minhash_signature(text, NearDedupConfig()).tolist() for text in texts]))
"""


def test_minhash_signature_is_the_same_in_another_process():
    child = subprocess.run(
        [sys.executable, "-c", _SIGNATURES_IN_A_CHILD],
        input=json.dumps(_SAMPLE_TEXTS),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    here = [minhash_signature(text, CFG).tolist() for text in _SAMPLE_TEXTS]
    assert json.loads(child.stdout) == here


def test_minhash_signature_shape_and_dtype():
    signature = minhash_signature(_SAMPLE_TEXTS[0], CFG)
    assert signature.shape == (CFG.bands * CFG.rows,)
    assert signature.dtype == np.uint32


@pytest.mark.parametrize("chunk_chars", [1, 5, 40, 1000])
def test_minhash_signature_in_chunks_equals_one_pass(chunk_chars):
    text = _SAMPLE_TEXTS[-1]
    assert np.array_equal(
        minhash_signature(text, CFG, chunk_chars=chunk_chars), minhash_signature(text, CFG, chunk_chars=len(text))
    )


def test_minhash_signature_lowercases_and_splits_on_any_whitespace():
    assert np.array_equal(
        minhash_signature("One two\u00a0THREE\tfour\n\nfive six", CFG),
        minhash_signature("one two three four five six", CFG),
    )


def test_documents_shorter_than_a_shingle_are_signed_by_all_their_words():
    short = minhash_signature("three short words", CFG)
    assert np.array_equal(short, minhash_signature("Three  SHORT words", CFG))
    assert not np.array_equal(short, minhash_signature("three short word", CFG))
    assert np.all(band_keys(short, CFG.bands, CFG.rows) != NO_KEY)


def test_empty_documents_have_no_band_keys():
    for text in ("", "  \n\t "):
        assert np.all(band_keys(minhash_signature(text, CFG), CFG.bands, CFG.rows) == NO_KEY)


def test_minhash_signature_memory_does_not_grow_with_the_document():
    text = " ".join(random_words(random.Random(3), 300_000))  # 1.8 MB, 300k shingles
    # The (shingles x permutations) matrix of one update_batch over the whole text would take 144 MB.
    assert peak_traced_bytes(minhash_signature, text, CFG) < 4 * 2**20


def test_estimated_jaccard_tracks_true_word_5gram_jaccard():
    rng = random.Random(11)
    errors = []
    for below in np.linspace(0.35, 0.98, 40):
        words = random_words(rng, rng.randrange(200, 600))
        copy, true_jaccard = near_copy(words, below, rng)
        estimate = estimated_jaccard(
            minhash_signature(" ".join(words), CFG), minhash_signature(" ".join(copy), CFG)
        )
        errors.append(abs(estimate - true_jaccard))
    # 120 permutations: standard error at most sqrt(0.25 / 120) = 0.046
    assert np.mean(errors) < 0.04
    assert max(errors) < 0.15


def test_band_keys_are_deterministic_and_change_only_with_their_band():
    signature = minhash_signature(_SAMPLE_TEXTS[0], CFG)
    keys = band_keys(signature, CFG.bands, CFG.rows)[0]
    assert np.array_equal(keys, band_keys(signature.copy(), CFG.bands, CFG.rows)[0])
    assert len(set(keys.tolist())) == CFG.bands
    changed = signature.copy()
    changed[CFG.rows * 3] += 1  # first value of band 3
    changed_keys = band_keys(changed, CFG.bands, CFG.rows)[0]
    assert [i for i in range(CFG.bands) if keys[i] != changed_keys[i]] == [3]
    # the same values in another band make another key
    moved = signature.copy()
    moved[: CFG.rows] = signature[CFG.rows : 2 * CFG.rows]
    assert band_keys(moved, CFG.bands, CFG.rows)[0][0] != keys[1]
    # a batch of signatures gets each one's own keys
    batch = np.stack([signature, changed, minhash_signature("", CFG)])
    assert np.array_equal(band_keys(batch, CFG.bands, CFG.rows)[:2], np.stack([keys, changed_keys]))
    with pytest.raises(ValueError, match="bands"):
        band_keys(signature, CFG.bands + 1, CFG.rows)


@pytest.mark.parametrize("partitions", [1, 3])
def test_shared_bands_are_the_keys_two_or_more_documents_hold(partitions):
    rng = random.Random(5)
    base = random_words(rng, 300)
    texts = [" ".join(base), " ".join(near_copy(base, 0.8, rng)[0]), " ".join(random_words(rng, 300)), "", "  "]
    signatures = [(f"d{i}", minhash_signature(text, CFG)) for i, text in enumerate(texts)]
    holders: dict[int, set] = {}
    for doc_id, signature in signatures:
        for key in band_keys(signature, CFG.bands, CFG.rows)[0].tolist():
            if key != NO_KEY:
                holders.setdefault(key, set()).add(doc_id)
    expected = sorted((key, doc_id) for key, docs in holders.items() if len(docs) >= 2 for doc_id in docs)
    assert {doc_id for _, doc_id in expected} == {"d0", "d1"}  # the near copies share bands; empty ones none
    run_and_check([signatures[:2], signatures[2:]], SharedBands(CFG, partitions), equal_to(expected))  # two batches


# --------------------------------------------------------------------------- exact duplicates


def test_exact_duplicates_point_every_copy_at_the_smallest_id():
    rng = random.Random(5)
    docs, expected = [], []
    for group in range(30):
        text = " ".join(random_words(rng, 50))
        ids = [make_doc_id("src", f"file{group}", index) for index in range(1 + group % 4)]
        variants = [text, text.upper(), "  " + text.replace(" ", "\n"), text + "\t"]
        docs += [(doc_id, content_hash(variants[i])) for i, doc_id in enumerate(ids)]
        expected += [(doc_id, min(ids)) for doc_id in ids if doc_id != min(ids)]
    rng.shuffle(docs)
    run_and_check(docs, ExactDuplicates(), equal_to(expected))


# --------------------------------------------------------------------------- connected components


def random_graph(seed: int, nodes: int, edges: int) -> list[tuple]:
    rng = random.Random(seed)
    labels = [f"{rng.getrandbits(64):016x}" for _ in range(nodes)]  # like doc ids: random order
    pairs = (rng.sample(labels, 2) for _ in range(edges))
    return [(u, v) for u, v in pairs]


def chains_and_stars() -> list[tuple]:
    rng = random.Random(9)
    edges = []
    for start in range(0, 1000, 100):  # chains of 100 shuffled labels
        chain = list(range(start, start + 100))
        rng.shuffle(chain)
        edges += list(zip(chain, chain[1:]))
    edges += [(5000, leaf) for leaf in range(5001, 5200)]  # centre is the smallest
    edges += [(6999, leaf) for leaf in range(6000, 6300)]  # centre is the largest
    edges += [(7000, 7001), (7001, 7000), (7000, 7001)]  # the same edge, both ways, repeated
    return edges


@pytest.mark.parametrize(
    "edges",
    [
        random_graph(seed=1, nodes=400, edges=250),  # many small components
        random_graph(seed=2, nodes=400, edges=380),  # near the giant-component threshold
        random_graph(seed=3, nodes=150, edges=600),  # one dense component
        chains_and_stars(),
    ],
    ids=["sparse", "critical", "dense", "chains-and-stars"],
)
@pytest.mark.parametrize("components", [lambda: ConnectedComponents(max_rounds=12), ComponentsInOneWorker],
                         ids=["star-rounds", "one-worker"])
def test_connected_components_match_union_find(edges, components):
    expected = components_by_union_find(edges)
    # a node with only a self-loop is in no component
    run_and_check(edges + [(100_000, 100_000)], components(), equal_to(list(expected.items())))


def test_long_ordered_path_converges_within_the_default_rounds():
    # 0-1-2-...-1999: the worst labelling for large-star/small-star, 11 rounds.
    path = [(i, i + 1) for i in range(1999)]
    run_and_check(path, ConnectedComponents(CFG.max_rounds), equal_to([(i, 0) for i in range(2000)]))


def test_unconverged_components_fail_the_pipeline_with_the_setting_to_raise():
    path = [(i, i + 1) for i in range(100)]
    with pytest.raises(Exception, match=r"raise dedup\.near\.max_rounds"):
        run_and_check(path, ConnectedComponents(max_rounds=1), equal_to([]))


# --------------------------------------------------------------------------- near duplicates


def signed(doc_id: str, words: list[str]) -> tuple:
    return doc_id, minhash_signature(" ".join(words), CFG)


@pytest.mark.parametrize("small_graph", [False, True])
def test_a_chain_whose_ends_are_not_similar_keeps_its_far_end(small_graph):
    rng = random.Random(21)
    b = random_words(rng, 400)
    a = random_words(rng, 60) + b[60:]  # A ~ B and B ~ C, on different parts of B
    c = b[:340] + random_words(rng, 60)
    signatures = dict([signed("doc-a", a), signed("doc-b", b), signed("doc-c", c)])
    assert estimated_jaccard(signatures["doc-a"], signatures["doc-b"]) >= CFG.threshold
    assert estimated_jaccard(signatures["doc-b"], signatures["doc-c"]) >= CFG.threshold
    assert estimated_jaccard(signatures["doc-a"], signatures["doc-c"]) < CFG.threshold
    unrelated = [signed(f"doc-{i}", random_words(rng, 300)) for i in range(20)]
    similarity_ab = estimated_jaccard(signatures["doc-a"], signatures["doc-b"])
    # One cluster; B is removed as a duplicate of A; C, unlike A, is kept (a representative).
    run_and_check(
        [*signatures.items(), *unrelated],
        NearDuplicates(CFG, small_graph=small_graph),
        equal_to([("doc-a", (None, "doc-a", None)), ("doc-b", ("doc-a", "doc-a", similarity_ab)),
                  ("doc-c", (None, "doc-a", None))]),
    )


def test_verify_cluster_names_the_first_similar_representative():
    rng = random.Random(22)
    a = random_words(rng, 300)
    b = a[:270] + random_words(rng, 30)  # like a
    c = random_words(rng, 300)  # like nothing: a representative
    d = c[:280] + random_words(rng, 20)  # like c
    members = [(name, signed(name, words)[1]) for name, words in (("d", d), ("b", b), ("c", c), ("a", a))]
    verdicts = dict(verify_cluster("a", members, CFG.threshold))
    assert verdicts["a"] == verdicts["c"] == (None, "a", None)
    assert verdicts["b"][:2] == ("a", "a") and verdicts["b"][2] >= CFG.threshold
    assert verdicts["d"][:2] == ("c", "a") and verdicts["d"][2] >= CFG.threshold


def test_near_duplicates_find_planted_pairs_and_merge_nothing_unrelated():
    """Recall 100% at word 5-gram Jaccard >= 0.8 and at least 90% in [0.7, 0.8); no pair under
    0.5 and no unrelated document merged."""
    rng = random.Random(31)
    docs, pairs, unrelated = [], {"0.8-1.0": [], "0.7-0.8": []}, set()
    for index in range(360):
        words = random_words(rng, rng.randrange(150, 600))
        below = (rng.uniform(0.81, 1.0), rng.uniform(0.7, 0.8), rng.uniform(0.3, 0.5))[index % 3]
        copy, similarity = near_copy(words, below, rng)
        pair = (make_doc_id("pairs", "a", index), make_doc_id("pairs", "b", index))
        docs += [signed(pair[0], words), signed(pair[1], copy)]
        if similarity >= 0.8:
            pairs["0.8-1.0"].append(pair)
        elif similarity >= 0.7:
            pairs["0.7-0.8"].append(pair)
        elif similarity < 0.5:
            unrelated.update(pair)
    for index in range(300):
        doc_id = make_doc_id("unrelated", "x", index)
        docs.append(signed(doc_id, random_words(rng, rng.randrange(50, 600))))
        unrelated.add(doc_id)
    assert len(pairs["0.8-1.0"]) > 100 and len(pairs["0.7-0.8"]) > 100

    def check(verdicts):
        verdicts = dict(verdicts)
        survivor_of = {node: survivor for node, (survivor, _, _) in verdicts.items() if survivor}
        found = {bucket: sum(1 for a, b in planted if survivor_of.get(b) == a or survivor_of.get(a) == b)
                 for bucket, planted in pairs.items()}
        merged_unrelated = unrelated & survivor_of.keys()
        cluster_sizes = np.unique([cluster for _, cluster, _ in verdicts.values()], return_counts=True)[1]
        if (found["0.8-1.0"] < len(pairs["0.8-1.0"]) or found["0.7-0.8"] < 0.9 * len(pairs["0.7-0.8"])
                or merged_unrelated or cluster_sizes.max() > 2):
            raise BeamAssertException(
                f"recall {found} of {[len(p) for p in pairs.values()]}, unrelated merged {len(merged_unrelated)}, "
                f"largest cluster {cluster_sizes.max()}"
            )

    run_and_check(docs, NearDuplicates(CFG), check)


def test_text_without_spaces_is_shingled_by_characters():
    from multilingual import CHINESE

    text, other = CHINESE["chmod"], CHINESE["env"]
    edited = text.replace("例如，数字七五五", "比如说，数字七五五")
    # As characters, the copy keeps almost all shingles, and another page shares only its footer.
    assert estimated_jaccard(minhash_signature(text, CFG), minhash_signature(edited, CFG)) >= 0.8
    assert estimated_jaccard(minhash_signature(text, CFG), minhash_signature(other, CFG)) < 0.5


def test_minhash_signature_is_datasketchs_affine32_minhash():
    """The signature is datasketch's MinHash (default scheme) of the same shingle hashes,
    computed without importing datasketch in the pipeline."""
    from datasketch import MinHash

    from strata.pipeline.fingerprints import _shingle_hashes, _word_hashes, normalized_pieces

    for text in [*_SAMPLE_TEXTS, "two words", ""]:
        normalized = " ".join(normalized_pieces(text, 1 << 30))
        words = _word_hashes(normalized)
        reference = MinHash(num_perm=CFG.num_perm, seed=CFG.seed, hashfunc=int)
        if normalized:
            reference.update_batch(_shingle_hashes(words, min(CFG.ngram, len(words))).tolist())
        assert reference.hashvalues.dtype == np.uint32
        assert minhash_signature(text, CFG).tolist() == reference.hashvalues.tolist()
