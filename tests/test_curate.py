"""The curate pipeline end to end on a generated corpus whose numbers are known."""

import json
from collections import Counter

import pyarrow.dataset as ds
import pyarrow.parquet as pq

from strata.pipeline.curate import read_lineage
from strata.pipeline.curate_steps import run_curate

from conftest import MALFORMED

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
    # Language ID runs first, on the text as read: the French and German records and the
    # symbol junk are not English, "too short." is English with a low score.
    assert stages["language"]["dropped"] == {"language:not_in_languages": 3, "language:low_score": 1}
    assert stages["filter"]["dropped"] == {"gopher_repetition:dup_line_frac": 1}
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
    assert Counter(rejected.column("stage").to_pylist())["language"] == 4


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


def test_category_folders_never_collide():
    from strata.manifests.layout import category_folder

    assert category_folder("Pile-CC") == "Pile-CC"
    names = ["A B", "A_B", "A  B", "Gutenberg (PG-19)", "Wikipedia (en)", "a/b", "..", ""]
    folders = [category_folder(n) for n in names]
    assert len(set(folders)) == len(names)
    assert all("/" not in f and f not in ("", ".", "..") for f in folders)
