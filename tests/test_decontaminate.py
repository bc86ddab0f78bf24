"""Decontamination: planted eval passages (verbatim, re-cased, re-spaced, inside a long
document) are found and removed with the right lineage; a 12-gram alone is kept."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest
import zstandard

from strata.config import DecontaminateConfig
from strata.pipeline.decontaminate import EvalNgrams, decontaminate, load_eval_ngrams

from corpus import prose

QUESTION = ("Which planet in the solar system has the largest number of known moons orbiting it "
            "according to recent astronomical surveys")
CHOICES = ["Jupiter", "Saturn", "Uranus", "Neptune"]
PASSAGE = ("The old lighthouse keeper climbed the spiral stairs every evening to light the great lamp, "
           "and the ships that passed the rocky point at night were guided safely into the harbour.")
SHORT = "the quick brown fox jumps over the lazy dog"  # 9 words: matched whole


@pytest.fixture()
def eval_sets(tmp_path):
    record = json.dumps({"question": QUESTION, "choices": CHOICES}) + "\n"
    (tmp_path / "mc.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(record.encode()))
    (tmp_path / "lambada.txt").write_text(PASSAGE + "\n" + SHORT + "\n")
    return DecontaminateConfig(sets=[
        {"name": "mc", "paths": [str(tmp_path / "mc.jsonl.zst")], "fields": ["question", "choices"]},
        {"name": "lambada", "paths": [str(tmp_path / "*.txt")]},
    ])


def test_eval_ngrams_come_from_the_named_fields(eval_sets):
    index = load_eval_ngrams(eval_sets)
    # QUESTION: 20 words -> 8 13-grams; PASSAGE: 31 words -> 19; SHORT whole; choices too short
    assert len(index) == 8 + 19 + 1 and index.lengths == (9, 13) and index.names == ("mc", "lambada")
    assert EvalNgrams.from_dict(index.to_dict()).hashes.tolist() == index.hashes.tolist()


@pytest.mark.parametrize("planted, set_name, marker", [
    (PASSAGE, "lambada", "lighthouse"),
    (PASSAGE.upper(), "lambada", "lighthouse"),
    ("  ".join(PASSAGE.split()).replace(", ", " ,\n"), "lambada", "lighthouse"),  # re-spaced
    (QUESTION + "?", "mc", "astronomical"),
    ("THE Quick brown fox, jumps over the lazy dog!", "lambada", "fox"),
])
def test_a_planted_passage_is_cut_out_of_a_long_document(eval_sets, planted, set_name, marker):
    rng = random.Random(1)
    before, after = prose(rng, 20), prose(rng, 20)
    found = decontaminate(f"{before}\n{planted}\n{after}", load_eval_ngrams(eval_sets), eval_sets)
    assert (found.set_name, found.dropped) == (set_name, False)
    assert found.ngrams >= 1 and marker not in found.text.lower()  # the passage is gone
    # the match plus 200 characters on each side went; the rest stays, in two pieces
    assert found.text.startswith(before[:-250].strip()) and found.text.endswith(after[250:].strip())
    assert found.chars_removed >= len(planted) + 2 * 200 - 10  # less the blank line joining the pieces


def test_a_shared_12_gram_is_not_contamination(eval_sets):
    twelve = " ".join(PASSAGE.split()[5:17])
    text = f"{prose(random.Random(2), 10)}\n{twelve}\n{prose(random.Random(3), 10)}"
    found = decontaminate(text, load_eval_ngrams(eval_sets), eval_sets)
    assert (found.text, found.set_name, found.ngrams) == (text, None, 0)


def test_a_short_or_often_split_document_is_dropped(eval_sets):
    index = load_eval_ngrams(eval_sets)
    assert decontaminate(PASSAGE, index, eval_sets).dropped  # nothing of 200 characters left
    rng = random.Random(4)
    many = "\n".join(f"{prose(rng, 6)}\n{PASSAGE}" for _ in range(12)) + "\n" + prose(rng, 6)
    found = decontaminate(many, index, eval_sets)
    assert found.dropped and found.chars_removed == len(many) and found.ngrams == 12 * 19


def test_curate_records_contamination_in_lineage_and_summary(eval_sets, tmp_path):
    from conftest import IN_MEMORY
    from strata.config import parse_config
    from strata.pipeline.curate import read_lineage
    from strata.pipeline.curate_steps import run_curate

    rng = random.Random(6)
    texts = [f"{prose(rng)}\n{PASSAGE}\n{prose(rng)}", PASSAGE, prose(rng)]
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    config = parse_config({
        "sources": [{"name": "web", "format": "jsonl", "paths": [str(tmp_path / "docs.jsonl")], "category": "Web"}],
        "filters": {"gopher_quality": {"min_words": 10}, "c4": {"enabled": False}},
        "decontaminate": eval_sets.model_dump(),
    })
    summary = run_curate(config, str(tmp_path / "out"), IN_MEMORY)
    rows = {r["record_index"]: r for r in read_lineage(str(tmp_path / "out")).to_pylist()}
    assert (rows[0]["fate"], rows[0]["contaminated_set"], rows[0]["contaminated_ngrams"]) == ("kept", "lambada", 19)
    assert (rows[1]["fate"], rows[1]["stage"], rows[1]["reason"]) == ("dropped", "decontaminate", "contaminated:lambada")
    assert rows[2]["contaminated_set"] is None and rows[2]["fate"] == "kept"
    web = summary["decontamination"]["lambada"]["Web"]
    assert (web["documents"], web["removed"]) == (2, 1) and web["chars_removed"] >= len(PASSAGE) * 2


def test_words_hash_the_same_whether_found_with_numpy_or_one_by_one(monkeypatch):
    """The whole-text path (a text whose lowercase lines up with it) and the word-by-word one
    (capital sigma, İ, long texts) give each word the same hash and span, so eval texts and
    documents match whichever path each took."""
    from strata.pipeline import decontaminate as module
    from strata.pipeline import text_scan

    rng = random.Random(4)
    pieces = ["Word", "wORD", "ΟΔΟΣ", "οδος", "İstanbul", "straße", "x_y", "a1", "日本語", "١٢٣", " ", "\n", ",", "'", "-"]
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        words = [w.lower() for w in re.findall(r"[^\W_]+", text)]
        one_by_one = module.splitmix64(module._hashes_of_words(words) + np.uint64(1))
        hashes, starts, ends = module._words(text)
        assert np.array_equal(hashes, one_by_one), text
        assert list(zip(starts.tolist(), ends.tolist())) == [m.span() for m in re.finditer(r"[^\W_]+", text)], text
    # a word longer than a group of words is hashed piece by piece to the same value
    long_word = "abcdefghij" * 5
    whole = module._hashes_of_words(["ab", long_word, "cd"])
    monkeypatch.setattr(text_scan, "BLOCK_CHARS", 8)  # groups of at most 16 code points
    assert np.array_equal(module._hashes_of_words(["ab", long_word, "cd"]), whole)


@pytest.mark.parametrize("size", [0, 1, 1000, 50_000])
def test_eval_index_lookup_finds_exactly_its_hashes(size):
    """The leading-bits bitmap only skips the binary search: a hash is found iff it is in
    the index, with its own set, also for hashes that share leading bits with one in it."""
    rng = np.random.default_rng(size)
    hashes = np.unique(rng.integers(0, 2**64, size, dtype=np.uint64))
    sets = rng.integers(0, 3, len(hashes), dtype=np.int32)
    index = EvalNgrams(hashes, sets, (13,), ("a", "b", "c"))
    near = hashes ^ np.uint64(1)  # same leading bits, not in the index (up to a 1 in 2**64 chance)
    probes = np.concatenate([hashes, near, rng.integers(0, 2**64, 20_000, dtype=np.uint64)])
    expected = dict(zip(hashes.tolist(), sets.tolist()))
    assert index.lookup(probes).tolist() == [expected.get(h, -1) for h in probes.tolist()]
