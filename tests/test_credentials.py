"""Credentials in URLs reach the client that reads, and nothing else: not OUT (curate.json,
manifest.json, lineage, the curated `uri` column), not the settings hashes, not the log."""

import base64
import functools
import http.server
import json
import threading

import pytest
import yaml

from strata.config import parse_config
from strata.manifests.manifest import Manifest
from strata.redact import redact_text, redact_url

from corpus import prose
from strata_command import assert_clear_error, strata
from test_train import RangeServer


@pytest.mark.parametrize("url, shown", [
    ("s3://AKIAKEY:se%2Fcret@bucket/a/*.jsonl", "s3://REDACTED@bucket/a/*.jsonl"),
    ("https://user:pass@host:8443/x.jsonl.zst", "https://REDACTED@host:8443/x.jsonl.zst"),
    ("https://host/x?X-Amz-Credential=AK%2F1&X-Amz-Signature=abc&X-Amz-Security-Token=t&part=2",
     "https://host/x?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED&part=2"),
    ("https://acct.blob.core.windows.net/c/f?sv=2024&sig=abc%3D#top", "https://acct.blob.core.windows.net/c/f?sv=2024&sig=REDACTED#top"),
    ("http://h/p?token=t&access_token=a&KEY=k&page=1", "http://h/p?token=REDACTED&access_token=REDACTED&KEY=REDACTED&page=1"),
    ("gs://bucket/plain/*.parquet", "gs://bucket/plain/*.parquet"),
    ("/data/user:pass@x.jsonl", "/data/user:pass@x.jsonl"),
])
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_redact_text_finds_every_url_in_a_message():
    message = 'Invalid bucket "s3://K:S3CRET@b/x" (also http://u:PW@h/?sig=SIG)'
    assert redact_text(message) == 'Invalid bucket "s3://REDACTED@b/x" (also http://REDACTED@h/?sig=REDACTED)'


def test_the_recorded_and_hashed_config_holds_no_secret():
    base = {"sources": [{"name": "w", "format": "jsonl", "category": "Web", "paths": ["s3://K:SECRET1@b/*.jsonl"]}]}
    other = {"sources": [{"name": "w", "format": "jsonl", "category": "Web", "paths": ["s3://K:SECRET2@b/*.jsonl"]}]}
    config = parse_config(base)
    assert "SECRET1" not in json.dumps(config.to_dict())
    assert config.config_hash == parse_config(other).config_hash  # the hash cannot be a test of the secret


class BasicAuthServer(RangeServer):
    """RangeServer that answers only requests with the right Basic credentials."""

    credentials = ""

    def _authorized(self) -> bool:
        wanted = "Basic " + base64.b64encode(self.credentials.encode()).decode()
        if self.headers.get("Authorization") == wanted:
            return True
        self.send_error(401)
        return False

    def do_GET(self):
        self.path = self.path.split("?", 1)[0]
        if self._authorized():
            super().do_GET()

    def do_HEAD(self):
        self.path = self.path.split("?", 1)[0]
        if self._authorized():
            super().do_HEAD()


def _grep_tree(root, secrets):
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [(str(path), s) for s in secrets if s.encode() in data]
    return hits


def _config(tmp_path, paths):
    config = {
        "sources": [{"name": "web", "format": "jsonl", "paths": paths, "category": "Web"}],
        "filters": {"gopher_quality": {"min_words": 20, "min_stop_words": 0}, "language": {"enabled": False}},
        "tokenizer": {"vocab_size": 400},
        "shards": {"block_tokens": 256, "target_bytes": 20000},
    }
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_http_credentials_are_used_to_read_and_never_written_or_printed(tmp_path):
    import random

    rng = random.Random(5)
    served = tmp_path / "served"
    served.mkdir()
    (served / "docs.jsonl").write_text("".join(json.dumps({"text": prose(rng)}) + "\n" for _ in range(30)))
    handler = type("Handler", (BasicAuthServer,), {"credentials": "reader:PASSWORD-HTTP"})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secrets = ["PASSWORD-HTTP", "SIGNATURE-HTTP"]
    url = f"http://reader:PASSWORD-HTTP@127.0.0.1:{server.server_address[1]}/docs.jsonl?sig=SIGNATURE-HTTP"
    out = tmp_path / "out"
    try:
        result = strata("-v", "build", str(_config(tmp_path, [url])), "--out", str(out), beam=True)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = Manifest.read(str(out))
    assert manifest.fates["kept"] > 0  # the credentials got the build its data
    assert [i["uri"] for i in manifest.inputs] == [redact_url(url)]
    assert _grep_tree(out, secrets) == []
    assert not any(s in result.stderr + result.stdout for s in secrets)


def test_s3_credentials_in_a_url_are_used_and_never_written_or_printed(s3, tmp_path):
    import random

    rng = random.Random(6)
    s3.pipe("strata-test/in/docs.jsonl", "".join(json.dumps({"text": prose(rng)}) + "\n" for _ in range(30)).encode())
    secrets = ["SECRET-S3-KEY"]
    out = tmp_path / "out"
    url = "s3://AKIATESTKEY:SECRET-S3-KEY@strata-test/in/*.jsonl"
    result = strata("-v", "build", str(_config(tmp_path, [url])), "--out", str(out), "--until", "curate", beam=True)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "curate.json").read_text())
    assert summary["fates"]["kept"] > 0
    assert [i["uri"] for i in summary["inputs"]] == ["s3://REDACTED@strata-test/in/docs.jsonl"]
    assert _grep_tree(out, secrets) == [] and not any(s in result.stderr for s in secrets)

    # errors that name the URL, from build and train, print it redacted
    missing = "s3://AKIATESTKEY:SECRET-S3-KEY@strata-test/nothing/*.jsonl"
    failed = strata("build", str(_config(tmp_path, [missing])), "--out", str(tmp_path / "o2"), beam=True)
    assert_clear_error(failed, 2, "s3://REDACTED@strata-test/nothing/*.jsonl", "matched no files")
    failed = strata("train", "--data", "s3://AKIATESTKEY:SECRET-S3-KEY@strata-test/no-build", "--out",
                    str(tmp_path / "run"), "--objective", "clm", "--steps", "1")
    assert_clear_error(failed, 1, "s3://REDACTED@strata-test/no-build")
    assert "SECRET-S3-KEY" not in failed.stderr
