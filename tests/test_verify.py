"""`strata verify`: a sound build passes; a flipped byte, a truncated shard, a missing shard
and a damaged block index are each named, locally and on S3 (copies of the build: the
session's build is never touched)."""

import json
import re
import shutil
import tarfile

import pytest

from strata.cli import main


@pytest.fixture
def build(shard_build, tmp_path):
    """A copy of the build: (OUT, manifest)."""
    out, manifest = shard_build
    copy = tmp_path / "build"
    shutil.copytree(out, copy)
    return copy, manifest


def shards(manifest) -> list[dict]:
    return [s for c in manifest["categories"].values() for s in c["shards"]]


def verify(capsys, out, *extra) -> tuple[int, str]:
    code = main(["verify", str(out), *extra])
    return code, capsys.readouterr().out


def bad_lines(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path, problem in re.findall(r"^BAD (\S+): (.*)$", text, re.M):
        found.setdefault(path, []).append(problem)
    return found


def flip_byte_in_tokens(tar_path) -> str:
    """Flips the high byte of the first token of the tar's second block; returns its key."""
    with tarfile.open(tar_path) as archive:
        member = [m for m in archive.getmembers() if m.name.endswith(".tokens.npy")][1]
    data = bytearray(tar_path.read_bytes())
    npy_header = 10 + int.from_bytes(data[member.offset_data + 8 : member.offset_data + 10], "little")
    data[member.offset_data + npy_header + 1] ^= 0xFF  # token id >= vocabulary size
    tar_path.write_bytes(bytes(data))
    return member.name.split(".")[0]


def test_a_sound_build_verifies(build, capsys):
    out, manifest = build
    code, text = verify(capsys, out)
    assert code == 0
    blocks = sum(s["blocks"] for s in shards(manifest))
    checked = f"{len(shards(manifest))} shards ({blocks:,} blocks) and the tokenizer"
    assert text.strip() == f"{out}: {checked} checked against the manifest: all good"
    code, text = verify(capsys, out, "--json")
    result = json.loads(text)
    assert code == 0 and result["ok"] and all(s["ok"] and s["problems"] == [] for s in result["shards"])
    assert result["tokenizer"] == {"path": "tokenizer/tokenizer.model", "ok": True, "problems": []}


def test_a_flipped_byte_a_truncated_and_a_missing_shard_are_each_named(build, capsys):
    out, manifest = build
    flipped, truncated, missing, *sound = [s["path"] for s in shards(manifest) if s["split"] == "train"]
    key = flip_byte_in_tokens(out / flipped)
    (out / truncated).write_bytes((out / truncated).read_bytes()[:-3000])
    (out / missing).unlink()

    code, text = verify(capsys, out)
    assert code == 1
    bad = bad_lines(text)
    assert sorted(bad) == sorted([flipped, truncated, missing])
    assert any(p.startswith("sha256 ") for p in bad[flipped])
    assert any(p.startswith(f"block {key}: token id ") for p in bad[flipped])
    assert any(p.endswith("(truncated)") for p in bad[truncated])
    assert bad[missing] == ["missing"]
    assert f"3 bad shards ({', '.join(sorted([flipped, truncated, missing]))})" in text
    assert all(path not in text for path in sound)

    result = json.loads(verify(capsys, out, "--json")[1])
    assert not result["ok"]
    assert sorted(s["path"] for s in result["shards"] if not s["ok"]) == sorted([flipped, truncated, missing])


def test_a_byte_flipped_in_a_tar_header_names_the_block(build, capsys):
    out, manifest = build
    path = shards(manifest)[0]["path"]
    data = bytearray((out / path).read_bytes())
    data[5] ^= 0x20  # in the first member's name
    (out / path).write_bytes(bytes(data))
    code, text = verify(capsys, out)
    key = json.loads((out / shards(manifest)[0]["index"]).read_text())["blocks"][0]["key"]
    assert code == 1 and any(p.startswith(f"block {key}: does not parse") for p in bad_lines(text)[path])


def test_a_block_index_that_disagrees_with_the_manifest_is_named(build, capsys):
    out, manifest = build
    shard = shards(manifest)[-1]
    index = json.loads((out / shard["index"]).read_text())
    index["blocks"][0]["tokens"] += 1
    (out / shard["index"]).write_text(json.dumps(index))
    block = index["blocks"][0]
    code, text = verify(capsys, out)
    assert code == 1 and bad_lines(text)[shard["path"]] == [
        f"its block index {shard['index']} does not match the manifest: tokens {shard['tokens'] + 1} "
        f"(manifest {shard['tokens']})",
        f"block {block['key']}: {block['tokens'] - 1} tokens where the index has {block['tokens']}",
    ]
    (out / shard["index"]).unlink()
    code, text = verify(capsys, out)
    assert code == 1 and bad_lines(text)[shard["path"]] == [f"its block index {shard['index']} is missing"]


def test_a_damaged_tokenizer_is_named(build, capsys):
    out, _ = build
    model = out / "tokenizer" / "tokenizer.model"
    model.write_bytes(model.read_bytes()[:-1])
    code, text = verify(capsys, out)
    assert code == 1 and list(bad_lines(text)) == ["tokenizer/tokenizer.model"]
    assert text.rstrip().endswith("no bad shard, a bad tokenizer")


def test_verify_reads_a_build_on_s3(shard_build, s3, capsys):
    out, manifest = shard_build
    s3.put(str(out / "manifest.json"), "strata-test/b/manifest.json")
    s3.put(str(out / "tokenizer"), "strata-test/b/", recursive=True)
    s3.put(str(out / "shards"), "strata-test/b/", recursive=True)
    code, text = verify(capsys, "s3://strata-test/b")
    assert code == 0 and text.endswith("all good\n")

    damaged = shards(manifest)[1]["path"]
    data = bytearray((out / damaged).read_bytes())
    data[len(data) // 2] ^= 0x01
    s3.pipe(f"strata-test/b/{damaged}", bytes(data))
    s3.rm(f"strata-test/b/{shards(manifest)[2]['path']}")
    code, text = verify(capsys, "s3://strata-test/b")
    assert code == 1
    bad = bad_lines(text)
    assert sorted(bad) == sorted([damaged, shards(manifest)[2]["path"]])
    assert any(p.startswith("sha256 ") for p in bad[damaged])
