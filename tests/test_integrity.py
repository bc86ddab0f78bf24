"""Integrity on read: `strata train` refuses a shard that is not the manifest's (a byte flipped
inside a token payload with the tar still valid, bytes appended, a byte changed outside any
block), naming it; each block fetched by byte range, from a folder or from S3, is checked
against its checksum in the block index; `strata verify` checks those checksums and the
index's own sha256; `--no-verify` trains on whatever the files hold."""

import json
import os
import re
import shutil
import sys
import tarfile

import pytest
import xxhash

from strata.cli import main
from strata.manifests.manifest import ShardError
from strata.train.data import BatchLoader, StreamingWindows
from strata.train.data.blocks import BlockReader
from strata.train.integrity import ShardVerifier

TRAIN = ["--objective=clm", "--seq-len=64", "--batch-size=8", "--steps=3", "--eval-every=0", "--weights=Books=1"]


@pytest.fixture
def damaged(shard_build, tmp_path):
    """A copy of the build: (OUT, the path of Books' only train shard, its manifest entry)."""
    out, manifest = shard_build
    copy = tmp_path / "build"
    shutil.copytree(out, copy)
    shard = next(s for s in manifest["categories"]["Books"]["shards"] if s["split"] == "train")
    return copy, copy / shard["path"], shard


def flip_a_token_bit(tar_path, block: int = 1) -> str:
    """Flips the lowest bit of the first token of a block: the tar, the npy header and the
    token ids (below an even vocabulary size) all stay valid. Returns the block's key."""
    with tarfile.open(tar_path) as archive:
        member = [m for m in archive.getmembers() if m.name.endswith(".tokens.npy")][block]
    data = bytearray(tar_path.read_bytes())
    npy_header = 10 + int.from_bytes(data[member.offset_data + 8 : member.offset_data + 10], "little")
    data[member.offset_data + npy_header] ^= 0x01
    tar_path.write_bytes(bytes(data))
    return member.name.split(".")[0]


def train(tmp_path, out, *extra) -> int:
    return main(["train", f"--data={out}", f"--out={tmp_path / 'run'}", *TRAIN, *extra])


def refused(capsys, code, tar) -> str:
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"{tar}:" in err and "refused" in err and "Traceback" not in err
    return err


def test_train_refuses_a_shard_with_a_flipped_token_bit(damaged, tmp_path, capsys):
    out, tar, _ = damaged
    flip_a_token_bit(tar)
    err = refused(capsys, train(tmp_path, out), tar)
    assert "do not match the block index's xxh3_64" in err or "sha256" in err
    assert not (tmp_path / "run" / "summary.json").exists()


def test_train_refuses_a_shard_with_bytes_appended(damaged, tmp_path, capsys):
    out, tar, shard = damaged
    with open(tar, "ab") as f:
        f.write(b"\0" * 1024)
    err = refused(capsys, train(tmp_path, out), tar)
    assert f"{shard['bytes'] + 1024:,} bytes where the manifest has {shard['bytes']:,} (bytes appended)" in err


def test_train_refuses_a_shard_changed_outside_its_blocks_by_its_sha256(damaged, tmp_path, capsys):
    out, tar, _ = damaged
    data = bytearray(tar.read_bytes())
    data[-1] = 1  # in the zero blocks that end the tar: every block still matches its checksum
    tar.write_bytes(bytes(data))
    err = refused(capsys, train(tmp_path, out), tar)
    assert re.search(r"sha256 \w+\.\.\. \([\d,]+ bytes\) is not the manifest's", err)
    assert not (tmp_path / "run" / "summary.json").exists()


def test_no_verify_trains_on_a_damaged_shard(damaged, tmp_path, capsys):
    out, tar, _ = damaged
    flip_a_token_bit(tar)
    assert train(tmp_path, out, "--no-verify") == 0
    assert (tmp_path / "run" / "summary.json").exists()


@pytest.mark.parametrize("workers", [0, 2])
def test_the_loader_refuses_a_flipped_block_naming_shard_and_block(damaged, workers):
    out, tar, _ = damaged
    key = flip_a_token_bit(tar, block=0)
    stream = StreamingWindows(str(out), seq_len=100, extra_token=True, global_batch=8, weights={"Books": 1.0},
                              end_step=40)
    with pytest.raises(ShardError) as caught:
        for _ in BatchLoader(stream, num_workers=workers):
            pass
    message = str(caught.value)
    assert message.startswith(f"{tar}: block {key} ") and "Traceback" not in message
    assert message.endswith("is corrupt: its bytes do not match the block index's xxh3_64; refused")


@pytest.mark.parametrize("workers", [0, 2])
def test_the_loader_refuses_a_shard_by_its_sha256_whichever_worker_reads_it(damaged, workers):
    out, tar, _ = damaged
    data = bytearray(tar.read_bytes())
    data[-1] = 1  # outside every block: only the whole shard's sha256 can tell
    tar.write_bytes(bytes(data))
    stream = StreamingWindows(str(out), seq_len=100, extra_token=True, global_batch=8, weights={"Books": 1.0},
                              end_step=40)
    with pytest.raises(ShardError) as caught:
        for _ in BatchLoader(stream, num_workers=workers):
            pass
        stream.finish_checks()
    assert re.fullmatch(rf"{re.escape(str(tar))}: sha256 \w+\.\.\. \([\d,]+ bytes\) is not the manifest's .*; refused",
                        str(caught.value))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own nice value is Linux's")
def test_the_sha256_thread_runs_at_the_lowest_priority_and_checks_each_shard_once(damaged, monkeypatch):
    out, _, _ = damaged
    table = StreamingWindows(str(out), seq_len=100, extra_token=True, global_batch=8).table
    verifier = ShardVerifier(str(out), table.uris, table.paths, table.sizes, table.sha256s)
    hashed, own = [], os.getpriority(os.PRIO_PROCESS, 0)
    monkeypatch.setattr(verifier, "_verify", hashed.append)
    verifier.touch([0, 1])
    verifier.touch([1, 0, 1])
    verifier.wait()
    assert sorted(hashed) == [0, 1]
    assert [os.getpriority(os.PRIO_PROCESS, worker.native_id) for worker in verifier._workers] == [19]
    assert os.getpriority(os.PRIO_PROCESS, 0) == own  # the process itself keeps its priority


def test_a_range_read_of_a_damaged_block_from_s3_is_refused(shard_build, s3, tmp_path):
    out, manifest = shard_build
    s3.put(str(out / "manifest.json"), "strata-test/b/manifest.json")
    s3.put(str(out / "shards"), "strata-test/b/", recursive=True)
    shard = next(s for s in manifest["categories"]["Books"]["shards"] if s["split"] == "train")
    local = tmp_path / "shard.tar"
    shutil.copy(out / shard["path"], local)
    key = flip_a_token_bit(local, block=2)
    s3.pipe(f"strata-test/b/{shard['path']}", local.read_bytes())

    stream = StreamingWindows("s3://strata-test/b", seq_len=100, extra_token=True, global_batch=8,
                              weights={"Books": 1.0})
    reader = BlockReader(stream.build, stream.table, stream.vocab_size, threads=0)
    damaged = stream.table.keys.index(key)
    assert len(reader.get(damaged - 1)) == stream.table.tokens[damaged - 1]  # its neighbour reads fine
    with pytest.raises(ShardError, match=re.escape(f"s3://strata-test/b/{shard['path']}: block {key} (bytes ")
                       + r".*is corrupt: its bytes do not match the block index's xxh3_64"):
        reader.get(damaged)


def test_verify_names_a_block_that_does_not_match_its_checksum(damaged, capsys):
    out, tar, shard = damaged
    key = flip_a_token_bit(tar)
    assert main(["verify", str(out)]) == 1
    text = capsys.readouterr().out
    assert f"BAD {shard['path']}: block {key}: its bytes do not match the block index's xxh3_64 checksum" in text


def test_verify_and_train_refuse_a_block_index_that_is_not_the_manifests(damaged, tmp_path, capsys):
    out, tar, shard = damaged
    index = json.loads((out / shard["index"]).read_text())
    index["blocks"][0]["xxh3_64"] = "0" * 16  # a forged checksum: the index's sha256 changes
    (out / shard["index"]).write_text(json.dumps(index, indent=1))
    assert main(["verify", str(out)]) == 1
    assert f"BAD {shard['path']}: its block index {shard['index']} has sha256 " in capsys.readouterr().out
    err = refused(capsys, train(tmp_path, out), tar)
    assert f"its block index {shard['index']} is not the one the manifest records" in err


def test_block_indexes_carry_a_checksum_per_block(shard_build):
    out, manifest = shard_build
    for category in manifest["categories"].values():
        for shard in category["shards"]:
            blocks = json.loads((out / shard["index"]).read_text())["blocks"]
            data = (out / shard["path"]).read_bytes()
            assert [b["xxh3_64"] for b in blocks] == [
                xxhash.xxh3_64_hexdigest(data[b["offset"] : b["offset"] + b["length"]]) for b in blocks
            ]
