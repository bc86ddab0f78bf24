"""`make bench`: every benchmark in tests/bench as one test each (slow: minutes; outside the
default run, which ignores tests/bench). Each prints its figures; run with -s to see them."""

import json

import bench_audit
import bench_big_doc
import bench_curate
import bench_decontaminate
import bench_generate
import bench_hostile
import bench_reselect
import bench_shard
import bench_tokenizer
import bench_trainer


def test_curate_against_datatrove(tmp_path):
    out = tmp_path / "run"
    assert bench_curate.main(["--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())["results"]
    assert set(results) == {*bench_curate.STRATA_MODES, "datatrove"}
    for r in results.values():
        assert r["docs_in"] > 0 and r["docs_kept"] > 0


def test_decontamination_stage_cost(tmp_path):
    assert bench_decontaminate.main(["--out", str(tmp_path / "decontaminate")]) == 0


def test_reselection_reuses_the_annotation(tmp_path):
    assert bench_reselect.main(["--out", str(tmp_path / "reselect")]) == 0


def test_big_document_memory(tmp_path):
    assert bench_big_doc.main(["--out", str(tmp_path / "big-doc")]) == 0


def test_tokenizer_training():
    assert bench_tokenizer.main([]) == 0


def test_shard_stage_against_plain_sentencepiece():
    assert bench_shard.main([]) == 0


def test_trainer_overhead_against_in_memory_batches():
    assert bench_trainer.main([]) == 0


def test_audit_and_trace_on_10_million_lineage_rows(tmp_path):
    assert bench_audit.main(["--out", str(tmp_path / "audit")]) == 0


def test_scale_curve(tmp_path):
    import bench_scale

    # the 1 GB point takes an hour or more on 2 cores: `python tests/bench/bench_scale.py` runs it
    assert bench_scale.main(["--sizes", "10", "100", "--out", str(tmp_path / "scale")]) == 0


def test_generation_against_transformers():
    assert bench_generate.main([]) == 0


def test_hostile_inputs_keep_the_reader_under_600_mb(tmp_path):
    assert bench_hostile.main(["--out", str(tmp_path / "hostile")]) == 0
