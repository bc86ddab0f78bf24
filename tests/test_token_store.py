"""The token store: a rebuild takes each kept document's tokens from the previous build
when tokenizer and text are the same, encodes the rest, and writes the same shards as a
build from nothing; damaged rows are encoded again, another tokenizer empties the store."""

from __future__ import annotations

import json
import random
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from strata.config import parse_config
from strata.pipeline import shard
from strata.pipeline.shard import run_shards
from strata.pipeline.token_store import SCHEMA, prepare_store

from test_shard import CONFIG, IN_MEMORY, _curated_docs, _train_model, _write_curated
from corpus import prose


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return _train_model(tmp_path_factory.mktemp("sp") / "sp", [prose(random.Random(5), 12) for _ in range(200)])


@pytest.fixture
def encoded_texts(monkeypatch):
    """Every text the shard stage hands to the tokenizer (the real encoder still encodes)."""
    seen: list = []
    encode = shard.ShardWriter.encode

    def counting(self, texts):
        seen.extend(texts)
        return encode(self, texts)

    monkeypatch.setattr(shard.ShardWriter, "encode", counting)
    return seen


def _shards(out, model, config=CONFIG):
    return [r.to_dict() for r in run_shards(config, str(out), model, IN_MEMORY)]


def _stricter(docs):
    """Fewer documents in every file, and one kept document's text changed."""
    fewer = {c: [rows[::2] for rows in files] for c, files in docs.items()}
    doc_id, text = fewer["Pile-CC"][0][0]
    fewer["Pile-CC"][0][0] = (doc_id, text + " One more sentence.")
    return fewer


def test_a_rebuild_encodes_only_what_the_store_lacks_and_writes_the_same_shards(tmp_path, model, encoded_texts):
    docs = _curated_docs(random.Random(3))
    out = tmp_path / "out"
    _write_curated(out, docs)
    _shards(out, model)
    assert len(encoded_texts) == sum(len(rows) for files in docs.values() for rows in files)
    assert sorted(p.name for p in (out / "tokens" / "Pile-CC").iterdir()) == [f"part-0000{i}-00000.parquet" for i in range(3)]

    stricter = _stricter(docs)
    for name in ("curated", "curate.json"):
        shutil.rmtree(out / name) if (out / name).is_dir() else (out / name).unlink()
    _write_curated(out, stricter)
    encoded_texts.clear()
    rebuilt = _shards(out, model)
    assert encoded_texts == [stricter["Pile-CC"][0][0][1]]  # only the changed text

    fresh = tmp_path / "fresh"
    _write_curated(fresh, stricter)
    assert _shards(fresh, model) == rebuilt
    for record in rebuilt:
        assert (out / record["path"]).read_bytes() == (fresh / record["path"]).read_bytes()


def test_a_relative_out_keeps_its_store_inside_it(tmp_path, model, monkeypatch):
    """OUT given relative to the working folder, through `..` (`--out ../build`): the
    curated files are listed by absolute paths, and each still finds its store file."""
    _write_curated(tmp_path / "build", _curated_docs(random.Random(4)))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    _shards("../build", model)
    curated = sorted(p.relative_to(tmp_path / "build" / "curated") for p in (tmp_path / "build" / "curated").rglob("*.parquet"))
    assert sorted(p.relative_to(tmp_path / "build" / "tokens") for p in (tmp_path / "build" / "tokens").rglob("*.parquet")) == curated


def test_a_damaged_row_is_encoded_again(tmp_path, model, encoded_texts):
    docs = _curated_docs(random.Random(3))
    out = tmp_path / "out"
    _write_curated(out, docs)
    first = _shards(out, model)
    stored = out / "tokens" / "Pile-CC" / "part-00001-00000.parquet"
    rows = pq.read_table(stored).to_pylist()
    rows[2]["tokens"] = bytes([rows[2]["tokens"][0] ^ 1]) + rows[2]["tokens"][1:]  # its checksum now fails
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), stored)
    (out / "tokens" / "Pile-CC" / "part-00002-00000.parquet").write_bytes(b"not parquet")
    encoded_texts.clear()
    assert _shards(out, model) == first
    assert len(encoded_texts) == 1 + len(docs["Pile-CC"][2])


def test_another_tokenizer_empties_the_store_and_keep_tokens_false_removes_it(tmp_path, model):
    docs = _curated_docs(random.Random(3))
    out = tmp_path / "out"
    _write_curated(out, docs)
    _shards(out, model)
    assert any((out / "tokens").rglob("*.parquet"))
    prepare_store(str(out), "another tokenizer's sha256")
    assert not any((out / "tokens").rglob("*.parquet"))
    assert json.loads((out / "tokens" / "tokens.json").read_text()) == {"tokenizer_sha256": "another tokenizer's sha256"}
    _shards(out, model, parse_config({**CONFIG.to_dict(), "shards": {**CONFIG.to_dict()["shards"], "keep_tokens": False}}))
    assert not (out / "tokens").exists()
