"""`make bench` entry point: the curate benchmark (tests/bench/bench_curate.py) as one test.

Slow (minutes) and outside the default run (pytest ignores tests/bench unless asked).
"""

import json

import bench_curate


def test_curate_benchmark(tmp_path):
    out = tmp_path / "run"
    assert bench_curate.main(["--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())["results"]
    assert set(results) == {*bench_curate.STRATA_MODES, "datatrove"}
    for r in results.values():
        assert r["docs_in"] > 0 and r["docs_kept"] > 0


def test_big_document_memory(tmp_path):
    import bench_big_doc

    assert bench_big_doc.main(["--out", str(tmp_path / "big-doc")]) == 0
