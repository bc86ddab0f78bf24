"""Validation: loss, bits per byte and perplexity per word, per category and overall."""

import json
import math

import pytest
from strata.tokenize.trainer import load_tokenizer
from strata.train.data import StreamingWindows
from strata.train.trainer import train
from test_train import config


def test_val_rows_carry_bits_per_byte_and_word_perplexity(code_build, tmp_path):
    out, manifest = code_build
    summary = train(config(out, tmp_path, steps=3, eval_batches=2))
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    val = {r["category"]: r for r in rows if r["kind"] == "val"}
    assert set(val) == {"Github", "Docstrings", "all"} and summary["val"] == {c: {k: v for k, v in r.items() if k not in ("kind", "step", "category")} for c, r in val.items()}
    sp = load_tokenizer(str(out / manifest["tokenizer"]["path"]))
    nats = {"all": 0.0}
    for category in ("Github", "Docstrings"):
        # the same val windows, their target text measured by decoding it
        stream = StreamingWindows(str(out), "val", seq_len=64, extra_token=True, global_batch=8, seed=1,
                                  weights={category: 1.0}, end_step=2)
        rows = [row.tolist() for batch in stream.batches() for row in batch["tokens"]]
        targets = [row[1:] for row in rows]
        text_bytes = sum(len(sp.decode(t).encode()) for t in targets)
        # words that start in the targets: a word the window's first token begins is not one
        words = sum(len(sp.decode(row).split()) - len(sp.decode(row[:1]).split()) for row in rows)
        r = val[category]
        assert r["tokens"] == sum(map(len, targets))
        total = r["loss"] * r["tokens"]
        assert r["bpb"] == pytest.approx(total / text_bytes / math.log(2), rel=0.01)
        # (decoding drops the EOS between two documents, which may glue two words into one)
        assert total / math.log(r["word_perplexity"]) == pytest.approx(words, rel=0.02)
        nats["all"] += total
    assert val["all"]["loss"] == pytest.approx(nats["all"] / val["all"]["tokens"])
    assert min(val["Github"]["bpb"], val["Docstrings"]["bpb"]) <= val["all"]["bpb"] <= max(val["Github"]["bpb"], val["Docstrings"]["bpb"])
