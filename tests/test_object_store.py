"""OUT as an s3:// prefix, end to end, against a real S3 HTTP endpoint on 127.0.0.1
(moto's server) reached with the real clients (s3fs, botocore); credentials only from
the environment."""

from strata.config import parse_config
from strata.manifests.manifest import Manifest
from strata.pipeline.build import run_build

from conftest import IN_MEMORY


def test_build_into_s3_and_read_back(s3, tmp_path, corpus_config_dict):
    config = parse_config(dict(corpus_config_dict, tokenizer={"vocab_size": 400}, shards={"block_tokens": 256, "val_fraction": 0.1}))
    manifest = run_build(config, "s3://strata-test/builds/one", "shards", IN_MEMORY)
    listing = s3.find("strata-test/builds/one")
    assert "strata-test/builds/one/manifest.json" in listing
    assert not any("_spool" in p or ".tmp" in p for p in listing)
    on_store = Manifest.read("s3://strata-test/builds/one")
    assert on_store.to_dict()["categories"] == manifest["categories"]
    for category in manifest["categories"].values():
        for shard in category["shards"]:
            info = s3.info(f"strata-test/builds/one/{shard['path']}")
            assert info["size"] == shard["bytes"]
    text = s3.cat_file("strata-test/builds/one/manifest.json").decode()
    assert "testing-secret" not in text and "AWS_" not in text
