"""The curate pipeline end to end on a generated corpus whose numbers are known."""

import json
import random
from collections import Counter

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import zstandard

from strata.config import parse_config
from strata.pipeline.curate import read_lineage, run_curate

from corpus import FRENCH, GERMAN, perturb, prose, word_ngram_jaccard

IN_MEMORY = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]

MALFORMED = {
    "text_not_string": json.dumps({"text": 12, "meta": {"pile_set_name": "Pile-CC"}}),
    "not_an_object": json.dumps(["a", "b"]),
    "invalid_json": '{"text": "unterminated',
    "missing_text": json.dumps({"meta": {"pile_set_name": "Pile-CC"}}),
    "empty_text": json.dumps({"text": "  ", "meta": {"pile_set_name": "Pile-CC"}}),
    "missing_category": json.dumps({"text": "no category here at all"}),
}
JUNK = [
    "$$$ ### @@@ !!! %%% " * 30,  # symbols, not words
    "too short.",
    "\n".join(["Buy cheap watches now and save money today."] * 30),  # repetition
]


def _pile(text, category="Pile-CC"):
    return {"text": text, "meta": {"pile_set_name": category}}


def _zst(lines):
    return zstandard.ZstdCompressor().compress(("\n".join(lines) + "\n").encode())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = random.Random(7)
    root = tmp_path_factory.mktemp("corpus")
    (root / "pile").mkdir()
    a = [prose(rng) for _ in range(20)]
    b = [prose(rng) for _ in range(10)]
    near = [perturb(rng, a[i], 0.01) for i in (3, 4)]
    assert all(word_ngram_jaccard(a[i], n) >= 0.8 for i, n in zip((3, 4), near))
    lines_a = [json.dumps(_pile(t, "Pile-CC" if i % 2 else "ArXiv")) for i, t in enumerate(a)]
    lines_a[5:5] = list(MALFORMED.values())
    raw_a = ("\n".join(lines_a) + "\n").encode() + b'{"text": "bad \xff byte", "meta": {"pile_set_name": "ArXiv"}}\n'
    (root / "pile" / "a.jsonl").write_bytes(raw_a)
    lines_b = (
        [json.dumps(_pile(t)) for t in b]
        + [json.dumps(_pile(a[i], "Pile-CC" if i % 2 else "ArXiv")) for i in (0, 1, 2)]  # exact copies
        + [json.dumps(_pile(t)) for t in near]
        + [json.dumps(_pile(t)) for t in JUNK]
        + [json.dumps(_pile(FRENCH)), json.dumps(_pile(GERMAN))]
    )
    (root / "pile" / "b.jsonl.zst").write_bytes(_zst(lines_b))
    c = [json.dumps(_pile(prose(rng), "ArXiv")) for _ in range(5)]
    whole = _zst(c)
    (root / "pile" / "c.jsonl.zst").write_bytes(whole + _zst(["{}"] * 100)[:20])  # second frame cut short
    books = [prose(rng, 15) for _ in range(5)]
    pq.write_table(pa.table({"text": books}), root / "books.parquet")
    config = parse_config(
        {
            "sources": [
                {"name": "pile", "format": "pile", "paths": [str(root / "pile" / "*")], "category_field": "pile"},
                {"name": "books", "format": "parquet", "paths": [str(root / "books.parquet")], "category": "Books"},
            ],
            "categories": {"Pile-CC": {"weight": 1}, "ArXiv": {"weight": 1}, "Books": {"epochs": 2}},
        }
    )
    return config


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    summary = run_curate(corpus, str(out), IN_MEMORY)
    return out, summary


def _curated(out):
    table = ds.dataset(out / "curated", format="parquet").to_table()
    return sorted(zip(table.column("doc_id").to_pylist(), table.column("category").to_pylist(), table.column("text").to_pylist()))


def test_every_input_record_has_exactly_one_lineage_row(built):
    out, summary = built
    lineage = read_lineage(str(out))
    keys = list(zip(lineage.column("uri").to_pylist(), lineage.column("record_index").to_pylist()))
    assert len(keys) == len(set(keys))
    # 20 + 7 malformed in a, 10 + 3 + 2 + 3 + 2 in b, 5 + the cut in c, 5 books
    assert summary["records"] == len(keys) == 27 + 20 + 6 + 5
    assert len(set(lineage.column("doc_id").to_pylist())) == len(keys)
    assert set(lineage.column("config_hash").to_pylist()) == {summary["config_hash"]}


def test_fates_match_the_planted_corpus(built):
    out, summary = built
    assert summary["fates"] == {"kept": 40, "dropped": 5, "duplicate": 5, "quarantined": 8}
    stages = summary["stages"]
    assert stages["validate"]["dropped"] == {
        "empty_text": 1, "invalid_json": 1, "invalid_utf8": 1, "missing_category": 1, "missing_text": 1,
        "not_an_object": 1, "text_not_string": 1, "truncated_compressed_file": 1,
    }
    assert sum(stages["filter"]["dropped"].values()) == 3
    assert stages["language"]["dropped"] == {"language:not_in_languages": 2} or sum(stages["language"]["dropped"].values()) == 2
    assert stages["exact_dedup"]["dropped"] == {"exact_duplicate": 3}
    assert stages["near_dedup"]["dropped"] == {"near_duplicate": 2}
    assert stages["near_dedup"]["docs_out"] == 40
    assert stages["validate"]["docs_in"] == 58


def test_curated_output_per_category(built):
    out, summary = built
    rows = _curated(out)
    assert len(rows) == 40 == len({r[0] for r in rows})
    assert Counter(c for _, c, _ in rows) == Counter({k: v["docs"] for k, v in summary["categories"].items()})
    assert summary["categories"]["Books"]["docs"] == 5
    assert (out / "curated" / "Pile-CC").is_dir() and (out / "curated" / "Books").is_dir()


def test_duplicates_name_their_survivor(built):
    out, _ = built
    lineage = read_lineage(str(out)).to_pylist()
    by_id = {r["doc_id"]: r for r in lineage}
    dups = [r for r in lineage if r["fate"] == "duplicate"]
    for r in dups:
        survivor = by_id[r["duplicate_of"]]
        assert survivor["fate"] == "kept"
        assert survivor["doc_id"] < r["doc_id"]  # the smallest doc_id survives
    near = [r for r in dups if r["stage"] == "near_dedup"]
    assert all(r["cluster_id"] == r["duplicate_of"] for r in near)


def test_quarantine_and_rejected_hold_the_records(built):
    out, _ = built
    quarantine = ds.dataset(out / "quarantine", format="parquet").to_table().to_pylist()
    assert len(quarantine) == 8
    invalid_json = [q for q in quarantine if q["reason"] == "invalid_json"]
    assert invalid_json[0]["raw"] == MALFORMED["invalid_json"].encode()
    rejected = ds.dataset(out / "rejected", format="parquet").to_table()
    assert rejected.num_rows == 10
    assert Counter(rejected.column("stage").to_pylist())["language"] == 2


def test_summary_is_written_last_and_complete(built):
    out, summary = built
    on_disk = json.loads((out / "curate.json").read_text())
    assert on_disk["fates"] == summary["fates"]
    assert len(on_disk["inputs"]) == 4 and all(i["size"] > 0 for i in on_disk["inputs"])


def test_rerun_on_two_processes_gives_identical_output(corpus, built, tmp_path):
    out, _ = built
    run_curate(corpus, str(tmp_path), ["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    assert _curated(tmp_path) == _curated(out)
    for folder in ("curated/ArXiv", "curated/Books", "lineage"):
        first = sorted(p.name for p in (out / folder).iterdir())
        assert first == sorted(p.name for p in (tmp_path / folder).iterdir())
        for name in first:
            assert pq.read_table(out / folder / name).equals(pq.read_table(tmp_path / folder / name))
