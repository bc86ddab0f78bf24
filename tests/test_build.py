"""`strata build` all the way: tokenizer, shards, lineage and the manifest as commit point."""

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.dataset as ds
import pytest
import sentencepiece as spm
import webdataset as wds
import yaml

from strata.config import parse_config
from strata.manifests.manifest import Manifest, ManifestError
from strata.pipeline.build import run_build
from strata.pipeline.curate import read_lineage

from conftest import IN_MEMORY

SMALL = {"tokenizer": {"vocab_size": 400}, "shards": {"block_tokens": 256, "val_fraction": 0.1, "target_bytes": 20000}}


@pytest.fixture(scope="module")
def build_config(corpus_config_dict):
    return dict(corpus_config_dict, **SMALL)


@pytest.fixture(scope="module")
def manifest_and_out(build_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    return run_build(parse_config(build_config), str(out), "shards", IN_MEMORY), out


def _shards(manifest):
    return [s for c in manifest["categories"].values() for s in c["shards"]]


def _npy(data: bytes) -> np.ndarray:
    import io

    return np.load(io.BytesIO(data), allow_pickle=False)


def test_stock_webdataset_reads_every_shard_and_counts_match(manifest_and_out):
    manifest, out = manifest_and_out
    assert manifest["tokenizer"]["vocab_size"] < 65536
    for shard in _shards(manifest):
        samples = list(wds.WebDataset(str(out / shard["path"]), shardshuffle=False))
        assert len(samples) == shard["blocks"]
        tokens = [_npy(s["tokens.npy"]) for s in samples]
        assert all(t.dtype == np.uint16 for t in tokens)
        assert sum(len(t) for t in tokens) == shard["tokens"]
        docs = {d for s in samples for d in json.loads(s["json"])["doc_ids"]}
        assert len(docs) == shard["docs"]
        assert hashlib.sha256((out / shard["path"]).read_bytes()).hexdigest() == shard["sha256"]
        listing = subprocess.run(["tar", "tf", str(out / shard["path"])], capture_output=True, text=True, check=True)
        assert len(listing.stdout.split()) == 3 * shard["blocks"]


def test_manifest_accounts_for_every_category(manifest_and_out):
    manifest, out = manifest_and_out
    cats = manifest["categories"]
    assert set(cats) == {"ArXiv", "Pile-CC", "Books"}
    assert sum(c["share"] for c in cats.values()) == pytest.approx(1)
    assert cats["Pile-CC"]["share"] == pytest.approx(0.4) and cats["ArXiv"]["share"] == pytest.approx(0.3)
    assert cats["Books"]["config"] == {"epochs": 2.0}
    assert all(not p["path"].startswith("/") for c in cats.values() for p in c["shards"])
    assert manifest["tokenizer"]["path"] == "tokenizer/tokenizer.model"
    model = (out / manifest["tokenizer"]["path"]).read_bytes()
    assert hashlib.sha256(model).hexdigest() == manifest["tokenizer"]["sha256"]
    assert Manifest.read(str(out)).model_dump() == manifest


def test_lineage_places_every_kept_token(manifest_and_out):
    manifest, out = manifest_and_out
    lineage = read_lineage(str(out)).to_pylist()
    kept = {r["doc_id"] for r in lineage if r["fate"] == "kept"}
    placements = ds.dataset(sorted(str(p) for p in (out / "lineage").glob("shards-*.parquet"))).to_table().to_pylist()
    assert {p["doc_id"] for p in placements} == kept
    total = sum(p["token_end"] - p["token_start"] for p in placements)
    assert total == sum(c["tokens"] + c["val_tokens"] for c in manifest["categories"].values())


def test_documents_decode_back_from_their_blocks(manifest_and_out):
    manifest, out = manifest_and_out
    sp = spm.SentencePieceProcessor(model_file=str(out / manifest["tokenizer"]["path"]))
    curated = {r["doc_id"]: r["text"] for r in ds.dataset(str(out / "curated")).to_table().to_pylist()}
    blocks = {}
    for shard in _shards(manifest):
        for sample in wds.WebDataset(str(out / shard["path"]), shardshuffle=False):
            blocks[sample["__key__"]] = _npy(sample["tokens.npy"])
    placements = ds.dataset(sorted(str(p) for p in (out / "lineage").glob("shards-*.parquet"))).to_table().to_pylist()
    pieces = {}
    for p in sorted(placements, key=lambda p: (p["doc_id"], p["block_key"])):
        pieces.setdefault(p["doc_id"], []).extend(blocks[p["block_key"]][p["token_start"] : p["token_end"]].tolist())
    eos = manifest["tokenizer"]["special_ids"]["eos"]
    for doc_id, ids in list(pieces.items())[:25]:
        assert ids[-1] == eos
        assert sp.decode(ids[:-1]) == curated[doc_id]


def test_two_builds_are_identical(build_config, manifest_and_out, tmp_path):
    first, _ = manifest_and_out
    second = run_build(parse_config(build_config), str(tmp_path), "shards", IN_MEMORY)
    assert [s["sha256"] for s in _shards(second)] == [s["sha256"] for s in _shards(first)]
    assert second == first


def test_an_older_manifest_schema_is_refused_clearly(manifest_and_out, tmp_path):
    manifest, _ = manifest_and_out
    (tmp_path / "manifest.json").write_text(json.dumps(dict(manifest, schema_version=0)))
    with pytest.raises(ManifestError, match="schema version 0"):
        Manifest.read(str(tmp_path))


def _wait_for(predicate, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("kill_when", ["curating", "sharding"])
def test_a_killed_build_claims_nothing_and_a_rerun_completes_it(build_config, tmp_path, kill_when):
    config = tmp_path / "build.yaml"
    config.write_text(yaml.safe_dump(build_config))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "strata.cli", "build", str(config), "--out", str(out), "--", *IN_MEMORY]
    # a finished build first: a killed rebuild must not leave its manifest standing
    subprocess.run(command, check=True, capture_output=True)
    assert (out / "manifest.json").exists()
    (out / "lineage" / "part-00000-00000.parquet").unlink()  # so the rebuild has to curate again
    (out / "curate.json").unlink()
    (out / "annotate.json").unlink()
    shutil.rmtree(out / "attributes")
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if kill_when == "curating":
        started = _wait_for(lambda: (out / "attributes").exists())
    else:
        started = _wait_for(lambda: (out / "curate.json").exists() and (out / "tokenizer").exists())
    child.send_signal(signal.SIGKILL)
    assert started and child.wait() == -signal.SIGKILL
    assert not (out / "manifest.json").exists()  # removed first, written last
    subprocess.run(command, check=True, capture_output=True)
    manifest = Manifest.read(str(out))
    for shard in (s for c in manifest.categories.values() for s in c.shards):
        assert hashlib.sha256((out / shard.path).read_bytes()).hexdigest() == shard.sha256
