"""A small build pinned byte for byte: refactors must not change what a build writes.

The expected digests were taken from a build of the planted test corpus; a change that
alters them changes the output of `strata build` and must say so (and update them) on
purpose. The manifest fingerprint covers every field except the ones that name where,
when and by which checkout the build ran.
"""

import hashlib
import json
from pathlib import Path

from strata.config import parse_config
from strata.pipeline.build import run_build

from conftest import IN_MEMORY

SMALL = {"tokenizer": {"vocab_size": 400}, "shards": {"block_tokens": 256, "val_fraction": 0.1, "target_bytes": 20000}}

PINNED_SHARDS = {
    "shards/ArXiv/train-000000.tar": "9aa081727d0fea9df8c89f61ecba3a44d37cd6aafa77ecdcfee5d87b360b9f69",
    "shards/ArXiv/val-000000.tar": "3cd6463b36ba0fd9e5a59c2c528a7d1781f3e23f91abe6a2d282fc849309a6cf",
    "shards/Books/train-000000.tar": "30396f50e27fbdad247e5df38032120c430b2eed3bd080198eec94cd6b3b0885",
    "shards/Pile-CC/train-000000.tar": "44f61aaa1ec887b3537dbb351924df9aafef3f3a1a51cc3371279193a9691916",
    "shards/Pile-CC/val-000000.tar": "720fec1cb2a05ece41f782212e3c19e34d0a1db1fc1851142defeca6c84de397",
}
PINNED_MANIFEST = "6883c2d18c01a0be495e6adb2e2facfbbdd6231640a2b3014d457ef4bbebae6b"


def manifest_fingerprint(manifest: dict, corpus_root: str) -> str:
    """sha256 of the manifest as canonical JSON, without what names the checkout
    (strata_commit, strata_version) or the temporary corpus folder (its path, replaced by a
    marker; config_hash, a hash over that path; the inputs' mtime fingerprints)."""
    stable = {k: v for k, v in manifest.items() if k not in ("strata_commit", "strata_version", "config_hash")}
    stable["inputs"] = [{k: v for k, v in entry.items() if k != "fingerprint"} for entry in manifest["inputs"]]
    text = json.dumps(stable, sort_keys=True).replace(corpus_root, "<corpus>")
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_small_build_is_byte_identical_to_the_pinned_one(planted_corpus, tmp_path):
    config, _ = planted_corpus
    corpus_root = str(Path(config["sources"][1]["paths"][0]).parent)
    manifest = run_build(parse_config(dict(config, **SMALL)), str(tmp_path / "out"), "shards", IN_MEMORY)
    shards = {s["path"]: s["sha256"] for c in manifest["categories"].values() for s in c["shards"]}
    for path, sha256 in shards.items():
        assert hashlib.sha256((tmp_path / "out" / path).read_bytes()).hexdigest() == sha256, path
    fingerprint = manifest_fingerprint(manifest, corpus_root)
    assert shards == PINNED_SHARDS, f"shards changed: {json.dumps(shards, indent=1)}"
    assert fingerprint == PINNED_MANIFEST, f"manifest fingerprint changed: {fingerprint}"
