"""A shard's sha256 once per machine (train/verified_record.py): a later stream over the same
files does not hash them again; a shard rewritten in place (same size, mtime put back) is
hashed again and refused; a damaged, foreign or oversized record entry is ignored; from S3
the record keys on the object's ETag and holds no credentials; `verify_every_run` (and
`strata train --verify-every-run`) hashes every shard every run and records nothing."""

import json
import os

import pytest

from strata.cli import main
from strata.manifests.manifest import ShardError
from strata.train import verified_record as record_module
from strata.train.data import BatchLoader, StreamingWindows

from test_integrity import TRAIN, damaged  # noqa: F401 - damaged is a fixture: a copy of the build


def stream(build, **options) -> StreamingWindows:
    """One pass of 40 steps over Books' train shards, every sha256 waited for."""
    windows = StreamingWindows(str(build), seq_len=100, extra_token=True, global_batch=8, weights={"Books": 1.0},
                               end_step=40, **options)
    for _ in BatchLoader(windows, num_workers=0):
        pass
    windows.finish_checks()
    return windows


def entries(record) -> list[dict]:
    return [json.loads(f.read_text()) for f in sorted(record.glob("*.json"))] if record.exists() else []


def test_a_second_stream_over_the_same_build_does_not_hash_again(shard_build, verified_record):
    out, _ = shard_build
    first = stream(out)
    assert first.shards_hashed  # an empty record: every shard touched is hashed
    recorded = entries(verified_record)
    assert sorted(e["shard"] for e in recorded) == sorted(f"file:{os.path.realpath(out / p)}" for p in first.shards_hashed)
    assert all(e["identity"]["size"] == os.stat(e["shard"][5:]).st_size for e in recorded)
    assert stream(out).shards_hashed == []
    assert entries(verified_record) == recorded  # nothing added: one entry per shard


def test_a_shard_rewritten_in_place_with_its_size_and_mtime_is_hashed_again_and_refused(damaged, verified_record):
    out, tar, _ = damaged
    assert stream(out).shards_hashed == ["shards/Books/train-000000.tar"]
    assert len(entries(verified_record)) == 1
    before = os.stat(tar)
    with open(tar, "r+b") as f:  # the same inode, the same size: a byte in the tar's closing zeros
        f.seek(-1, os.SEEK_END)
        f.write(b"\x01")
    os.utime(tar, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(tar)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    with pytest.raises(ShardError, match=r"sha256 \w+\.\.\. .* is not the manifest's"):
        stream(out)
    assert len(entries(verified_record)) == 1  # the mismatch was not recorded


@pytest.mark.parametrize("damage", ["garbage", "another sha256", "another inode", "oversized", "fifo"])
def test_a_damaged_or_foreign_record_entry_is_ignored(shard_build, verified_record, damage):
    out, _ = shard_build
    hashed = stream(out).shards_hashed
    for path in verified_record.glob("*.json"):
        entry = json.loads(path.read_text())
        path.unlink()
        if damage == "garbage":
            path.write_bytes(b"\x80\x00{not json")
        elif damage == "another sha256":
            path.write_text(json.dumps({**entry, "sha256": "0" * 64}))
        elif damage == "another inode":
            path.write_text(json.dumps({**entry, "identity": {**entry["identity"], "ino": 1}}))
        elif damage == "oversized":  # what this entry would be, padded past what the record ever writes
            path.write_text(json.dumps(entry) + " " * record_module.MAX_ENTRY)
        else:
            os.mkfifo(path)  # opened without blocking, and not a regular file
    assert stream(out).shards_hashed == hashed
    assert stream(out).shards_hashed == []  # the entries were written anew


def test_a_shard_changed_within_the_clock_tick_is_hashed_but_not_recorded(shard_build, verified_record, monkeypatch):
    out, _ = shard_build
    monkeypatch.setattr(record_module, "_coarse_now_ns", lambda: 0)  # every ctime is in the current tick
    assert stream(out).shards_hashed
    assert entries(verified_record) == []


def test_an_unwritable_record_costs_only_the_hash(shard_build, tmp_path, monkeypatch, caplog):
    out, _ = shard_build
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("STRATA_CACHE_DIR", str(blocked))
    hashed = stream(out).shards_hashed
    assert hashed and stream(out).shards_hashed == hashed
    assert "cannot write the record of verified shards" in caplog.text


def test_verify_every_run_hashes_every_shard_every_run(shard_build, verified_record):
    out, _ = shard_build
    hashed = stream(out, verify_every_run=True).shards_hashed
    assert hashed and stream(out, verify_every_run=True).shards_hashed == hashed
    assert entries(verified_record) == []


def test_from_s3_the_record_keys_on_the_etag_and_holds_no_credentials(shard_build, s3, verified_record):
    out, manifest = shard_build
    s3.put(str(out / "manifest.json"), "strata-test/b/manifest.json")
    s3.put(str(out / "shards"), "strata-test/b/", recursive=True)
    url = "s3://testing:testing-secret@strata-test/b"
    assert stream(url).shards_hashed == ["shards/Books/train-000000.tar"]
    recorded = entries(verified_record)
    assert [e["shard"] for e in recorded] == ["s3://strata-test/b/shards/Books/train-000000.tar"]
    assert recorded[0]["identity"]["ETag"] == s3.info("strata-test/b/shards/Books/train-000000.tar")["ETag"]
    assert not any("testing" in f.read_text() for f in verified_record.iterdir())
    assert stream(url).shards_hashed == []

    data = bytearray(s3.cat("strata-test/b/shards/Books/train-000000.tar"))
    data[-1] = 1  # replaced by an object of the same size: a new ETag
    s3.pipe("strata-test/b/shards/Books/train-000000.tar", bytes(data))
    s3.invalidate_cache()
    with pytest.raises(ShardError, match=r"train-000000\.tar: sha256 .* is not the manifest's"):
        stream(url)


def test_train_records_verified_shards_unless_verify_every_run(damaged, tmp_path, verified_record):
    out, _, _ = damaged
    assert main(["train", f"--data={out}", f"--out={tmp_path / 'every'}", *TRAIN, "--verify-every-run"]) == 0
    assert entries(verified_record) == []
    assert main(["train", f"--data={out}", f"--out={tmp_path / 'once'}", *TRAIN]) == 0
    assert [e["shard"] for e in entries(verified_record)] == [f"file:{os.path.realpath(out / 'shards/Books/train-000000.tar')}"]
