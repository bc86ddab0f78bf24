"""`strata trace`: a document's lineage (source, fate, survivor, blocks) and the steps that
trained on it; a step's documents; and the round trip document -> steps -> documents, down
to every token of a step's windows rebuilt from the planted source text."""

import json
import re
from collections import Counter

import pytest
import sentencepiece as spm

from strata.cli import main

from conftest import SMALL_SHARDS
from corpus import doc_id, kept_documents
from runs import GLOBAL_BATCH, SEQ_LEN, make_run

STEPS = 12


@pytest.fixture(scope="module")
def run(shard_build, tmp_path_factory):
    run = tmp_path_factory.mktemp("trace-run")
    return run, make_run(shard_build[0], run, steps=STEPS, world_size=2)


@pytest.fixture(scope="module")
def documents(shard_build, planted) -> dict[str, dict]:
    """The kept documents by doc_id, with their tokens as the shards hold them (EOS ended)."""
    out, manifest = shard_build
    sp = spm.SentencePieceProcessor(model_file=str(out / "tokenizer" / "tokenizer.model"))
    eos = manifest["tokenizer"]["special_ids"]["eos"]
    return {d["doc_id"]: {**d, "tokens": sp.encode(d["text"]) + [eos]} for d in kept_documents(planted)}


def trace(capsys, *args) -> dict:
    code = main(["trace", *map(str, args), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_a_kept_document_is_traced_to_its_source_and_blocks(shard_build, documents, capsys):
    out, _ = shard_build
    for d in documents.values():
        found = trace(capsys, out, d["doc_id"])
        assert (found["source"], found["record_index"], found["category"], found["fate"]) == (
            d["source"], d["record_index"], d["category"], "kept")
        assert found["uri"].endswith("/" + d["relpath"])
        assert found["tokens"] == len(d["tokens"])
        placed = found["placements"]
        assert len({p["shard"] for p in placed}) == 1 and len({p["block_key"] for p in placed}) == len(placed)
        split = "val" if int(d["doc_id"][:8], 16) / 2**32 < SMALL_SHARDS["val_fraction"] else "train"
        assert {p["split"] for p in placed} == {split}
        assert found["run"] is None and found["trained"] == [] and found["steps"] == []


def test_removed_records_show_their_fate_and_a_duplicate_its_survivor(shard_build, planted, capsys):
    out, _ = shard_build
    for kind, original, copy in planted["copies"]:
        a, b = (doc_id("pile", *record) for record in (original, copy))
        found = trace(capsys, out, max(a, b))
        stage = "exact_dedup" if kind == "exact" else "near_dedup"
        assert (found["fate"], found["stage"], found["reason"], found["duplicate_of"]) == (
            "duplicate", stage, f"{kind}_duplicate", min(a, b))
        assert found["placements"] == [] and found["tokens"] == 0
    junk = trace(capsys, out, doc_id("pile", "b.jsonl.zst", 16))  # "too short."
    assert (junk["fate"], junk["stage"], junk["reason"]) == ("dropped", "language", "language:low_score")
    bad = trace(capsys, out, doc_id("pile", "a.jsonl", 7))
    assert (bad["fate"], bad["stage"], bad["reason"], bad["uri"].endswith("a.jsonl")) == (
        "quarantined", "validate", "invalid_json", True)

    assert main(["trace", str(out), doc_id("pile", "b.jsonl.zst", 16)]) == 0
    text = capsys.readouterr().out
    assert re.search(r"^  fate\s+dropped at language: language:low_score$", text, re.M)
    assert re.search(r"b\.jsonl\.zst record 16$", text, re.M)


def step_windows(batches, step) -> dict[int, list[int]]:
    """sample_id -> tokens of every window of the step, over the ranks."""
    return {
        sample: tokens
        for b in batches if b["step"] == step
        for sample, tokens in zip(b["sample_id"].tolist(), b["tokens"].tolist())
    }


def test_step_to_documents_to_steps_and_back_down_to_every_token(shard_build, run, documents, capsys):
    out, _ = shard_build
    run_dir, batches = run
    by_step = {}
    for step in range(STEPS):
        found = trace(capsys, "--run", run_dir, "--step", step)
        assert (found["step"], found["build"], found["windows"]) == (step, str(out), GLOBAL_BATCH)
        assert found["tokens"] == GLOBAL_BATCH * (SEQ_LEN + 1) == sum(d["tokens"] for d in found["documents"])
        by_step[step] = found["documents"]
        for d in found["documents"]:
            planted = documents[d["doc_id"]]
            assert (d["source"], d["record_index"], d["category"]) == (
                planted["source"], planted["record_index"], planted["category"])

    doc_ids = {d["doc_id"] for ds in by_step.values() for d in ds}
    traced = {doc: trace(capsys, out, doc, "--run", run_dir) for doc in doc_ids}
    pairs_from_steps = {(d["doc_id"], step) for step, ds in by_step.items() for d in ds}
    pairs_from_docs = {(doc, step) for doc, t in traced.items() for step in t["steps"]}
    assert pairs_from_steps == pairs_from_docs

    for step in (0, STEPS // 2, STEPS - 1):  # every token of the step, from the source text
        rebuilt: dict[int, Counter] = {}
        for doc, t in traced.items():
            offsets, at = {}, 0
            for p in t["placements"]:
                offsets[p["block_key"]] = at - p["token_start"]
                at += p["token_end"] - p["token_start"]
            for piece in t["trained"]:
                if piece["step"] == step:
                    shift = offsets[piece["block_key"]]
                    tokens = documents[doc]["tokens"][piece["token_start"] + shift : piece["token_end"] + shift]
                    rebuilt.setdefault(piece["sample_id"], Counter()).update(tokens)
        windows = step_windows(batches, step)
        assert rebuilt == {sample: Counter(tokens) for sample, tokens in windows.items()}


def test_a_document_trace_with_a_run_lists_its_steps_in_text(shard_build, run, capsys):
    out, _ = shard_build
    run_dir, batches = run
    step = trace(capsys, "--run", run_dir, "--step", 3)
    doc = step["documents"][0]["doc_id"]
    assert main(["trace", str(out), doc, "--run", str(run_dir)]) == 0
    text = capsys.readouterr().out
    trained = rf"^  trained    in run {re.escape(str(run_dir))}: \d+ steps, \d+ pieces \(steps .*\b3\b"
    assert re.search(trained, text, re.M)
    assert main(["trace", str(out), "--run", str(run_dir), "--step", "3"]) == 0
    text = capsys.readouterr().out
    tokens = GLOBAL_BATCH * (SEQ_LEN + 1)
    assert text.startswith(f"step 3 of run {run_dir} (build {out}): {GLOBAL_BATCH} windows, {tokens} tokens")
    assert doc in text


def test_look_ups_that_find_nothing_or_are_misused_say_so(shard_build, run, capsys):
    out, _ = shard_build
    run_dir, _ = run
    assert main(["trace", str(out), "0" * 32]) == 1
    assert "no such document" in capsys.readouterr().err
    assert main(["trace", "--run", str(run_dir), "--step", str(STEPS)]) == 1
    assert f"step {STEPS} is not in its consumed lineage" in capsys.readouterr().err
    assert main(["trace", "--step", "1"]) == 2
    assert main(["trace", str(out)]) == 2
    assert "--run RUN --step N" in capsys.readouterr().err
