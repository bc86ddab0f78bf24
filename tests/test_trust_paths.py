"""Paths recorded in a build stay inside it: a manifest or block index naming a shard outside
the build (`..`, an absolute path, file://, another bucket or host, `%2e%2e`) is refused by
`strata verify` and `strata train` with an error naming the entry, before anything outside
is read; and `strata train --data` with an unsupported scheme creates nothing."""

import json
import shutil

import pytest

from strata.cli import main
from strata.manifests.paths import PathOutsideBuild, resolve_inside

HOSTILE = {
    "dotdot": "../../../../../../etc/passwd",
    "inner-dotdot": "shards/../../outside.tar",
    "absolute": "/etc/passwd",
    "file-url": "file:///etc/passwd",
    "other-bucket": "s3://other-bucket/shards/x.tar",
    "other-host": "http://attacker.example/x.tar",
    "scheme-relative": "//attacker.example/x.tar",
    "percent-encoded": "shards/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "backslash": "shards\\..\\..\\etc\\passwd",
    "pipe": "pipe:cat /etc/passwd",
}
TRAIN = ["--objective=clm", "--seq-len=64", "--batch-size=8", "--steps=3", "--eval-every=0"]


@pytest.mark.parametrize("root", ["/data/build", "s3://bucket/build", "gs://bucket/build", "https://host/build"])
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_resolve_inside_refuses_every_way_out_of_the_root(root, name):
    with pytest.raises(PathOutsideBuild, match="some entry: .* refused"):
        resolve_inside(root, HOSTILE[name], "some entry")


@pytest.mark.parametrize("root", ["/data/build", "s3://bucket/build/", "https://host/build"])
def test_resolve_inside_joins_what_strata_writes(root):
    assert resolve_inside(root, "shards/Pile-CC/train-000000.tar", "x") == root.rstrip("/") + "/shards/Pile-CC/train-000000.tar"
    for name in ("", None, 3, "shards//x.tar", "./shards/x.tar", "shards/x.tar/"):
        with pytest.raises(PathOutsideBuild):
            resolve_inside(root, name, "x")


@pytest.fixture
def build(shard_build, tmp_path):
    """A copy of the build with a secret file beside it, outside the build."""
    out, manifest = shard_build
    copy = tmp_path / "nested" / "build"
    shutil.copytree(out, copy)
    (tmp_path / "outside.tar").write_bytes((out / train_shard(manifest)["path"]).read_bytes())
    return copy, manifest


def train_shard(manifest) -> dict:
    return next(s for c in manifest["categories"].values() for s in c["shards"] if s["split"] == "train")


def point_shard_at(out, manifest, field: str, target: str) -> dict:
    """Rewrites the first train shard's `field` (path or index) in the manifest, and the
    index's own path to match, as a hostile build would; returns that shard's entry."""
    shard = train_shard(manifest)
    data = json.loads((out / "manifest.json").read_text())
    entry = next(s for s in data["categories"][shard["category"]]["shards"] if s["path"] == shard["path"])
    index = json.loads((out / entry["index"]).read_text())
    entry[field] = target
    if field == "path":
        index["path"] = target
        (out / shard["index"]).write_text(json.dumps(index))
    (out / "manifest.json").write_text(json.dumps(data))
    return entry


@pytest.mark.parametrize("field", ["path", "index"])
@pytest.mark.parametrize("name", ["dotdot", "inner-dotdot", "absolute", "file-url", "other-host", "percent-encoded"])
def test_verify_refuses_a_shard_outside_the_build(build, capsys, name, field):
    out, manifest = build
    entry = point_shard_at(out, manifest, field, HOSTILE[name])
    assert main(["verify", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"manifest entry {entry['category']}/train shard {entry['shard']}, {field}" in err
    assert repr(HOSTILE[name]) in err and "refused" in err


def test_verify_refuses_a_tokenizer_outside_the_build(build, capsys):
    out, _ = build
    data = json.loads((out / "manifest.json").read_text())
    data["tokenizer"]["path"] = "../../outside.tar"
    (out / "manifest.json").write_text(json.dumps(data))
    assert main(["verify", str(out)]) == 1
    assert "manifest tokenizer path: '../../outside.tar'" in capsys.readouterr().err


@pytest.mark.parametrize("field", ["path", "index"])
@pytest.mark.parametrize("name", ["dotdot", "inner-dotdot", "absolute", "file-url", "other-bucket", "percent-encoded"])
def test_train_refuses_a_shard_outside_the_build(build, tmp_path, capsys, name, field):
    out, manifest = build
    entry = point_shard_at(out, manifest, field, HOSTILE[name])
    code = main(["train", f"--data={out}", f"--out={tmp_path / 'run'}", *TRAIN, f"--weights={entry['category']}=1"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"manifest entry {entry['category']}/train shard {entry['shard']}, {field}: {HOSTILE[name]!r}" in err
    assert "Traceback" not in err
    assert not (tmp_path / "run" / "consumed").exists()


def test_a_curate_record_pointing_outside_the_build_is_refused(tmp_path):
    from strata.pipeline.shard import shard_inputs

    (tmp_path / "curate.json").write_text(json.dumps({"categories": {"Web": {"folder": "../../home"}}}))
    with pytest.raises(PathOutsideBuild, match="curate.json Web: folder: '../../home'"):
        shard_inputs(str(tmp_path))


@pytest.mark.parametrize("data", ["pipe:cat /etc/passwd", "pipe://cat", "ftp://host/build", "memory://build"])
def test_train_refuses_an_unsupported_scheme_before_creating_the_run(tmp_path, capsys, data):
    run = tmp_path / "run"
    code = main(["train", f"--data={data}", f"--out={run}", *TRAIN])
    err = capsys.readouterr().err
    assert code == 2 and f"data: unsupported scheme '{data.split(':')[0]}:'" in err
    assert "Traceback" not in err and "/etc/passwd" not in err
    assert not run.exists()


@pytest.mark.parametrize("command", ["verify", "audit"])
def test_readers_refuse_an_unsupported_scheme(capsys, command):
    assert main([command, "pipe:cat /etc/passwd"]) == 1
    assert "unsupported scheme 'pipe:'" in capsys.readouterr().err
