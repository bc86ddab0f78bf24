"""manifests/ is the contract between the stages: the block codec, the layout and the
schemas, imported by pipeline/, tokenize/ and train/ and importing none of them."""

import ast
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from strata.manifests import layout
from strata.manifests.block_codec import BlockFormatError, decode_block, encode_block, index_mismatches, token_dtype
from strata.manifests.block_index import decode_index, encode_index, index_disagreements
from strata.manifests.checksums import sha256_hex
from strata.manifests.manifest import SCHEMA_VERSION, Manifest, ManifestError, ShardRecord

from conftest import REPO

KEY = "Pile-CC_train_000000_000003"
META = {"category": "Pile-CC", "split": "train", "shard": 0, "block": 3, "doc_ids": ["a", "b"],
        "first_continues": False, "last_continues": False}


def block_bytes(tokens: np.ndarray, offsets=(0, 2)) -> bytes:
    return b"".join(encode_block(KEY, META, tokens, np.array(offsets, dtype=np.int64)))


@pytest.mark.parametrize("vocab_size, dtype", [(300, np.uint16), (65_535, np.uint16), (65_536, np.uint16),
                                               (65_537, np.uint32), (256_000, np.uint32)])
def test_tokens_are_uint16_exactly_when_every_id_fits(vocab_size, dtype):
    assert token_dtype(vocab_size) == dtype


@pytest.mark.parametrize("vocab_size", [65_536, 65_537])
def test_a_block_with_the_largest_id_of_its_vocabulary_round_trips(vocab_size):
    top = vocab_size - 1  # 65,535 fits a uint16; 65,536 does not
    tokens = np.array([5, top, 3, 7, top, 3], dtype=token_dtype(vocab_size))
    decoded = decode_block(block_bytes(tokens), KEY)
    assert decoded.tokens.dtype == token_dtype(vocab_size) and decoded.tokens.tolist() == tokens.tolist()
    assert decoded.offsets.tolist() == [0, 2] and json.loads(bytes(decoded.meta)) == META
    assert index_mismatches(decoded, tokens=6, docs=2, vocab_size=vocab_size) == []
    assert index_mismatches(decoded, tokens=6, docs=2, vocab_size=top) == [
        f"token id {top} is not below the vocabulary size {top}"
    ]


def test_an_encoded_block_is_what_stock_tarfile_and_numpy_read():
    tokens = np.arange(10, dtype=np.uint16)
    with tarfile.open(fileobj=io.BytesIO(block_bytes(tokens) + bytes(1024))) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == [KEY + ".json", KEY + ".offsets.npy", KEY + ".tokens.npy"]
        assert all((m.mtime, m.uid, m.gid, m.uname, m.mode) == (0, 0, 0, "", 0o644) for m in members)
        loaded = np.load(io.BytesIO(tar.extractfile(members[2]).read()), allow_pickle=False)
    assert loaded.dtype == np.uint16 and loaded.tolist() == list(range(10))


def test_the_writer_and_the_decoder_refuse_offsets_out_of_order():
    tokens = np.arange(10, dtype=np.uint16)
    for offsets in [(1, 4), (0, 4, 4), (0, 10)]:
        with pytest.raises(BlockFormatError, match="offsets out of order or out of range"):
            block_bytes(tokens, offsets)
    data = bytearray(block_bytes(tokens, (0, 4)))
    npy = data.index(b"\x93NUMPY")  # the offsets member's data: an npy header, then little-endian int64s
    second = npy + 10 + int.from_bytes(data[npy + 8 : npy + 10], "little") + 8
    assert data[second] == 4
    data[second] = 40
    with pytest.raises(BlockFormatError, match="offsets out of order or out of range"):
        decode_block(bytes(data), KEY)


def test_the_decoder_names_what_is_off():
    data = block_bytes(np.arange(10, dtype=np.uint16))
    with pytest.raises(BlockFormatError, match="bytes after the block's last member"):
        decode_block(data + bytes(512), KEY)
    with pytest.raises(BlockFormatError, match="ends inside"):
        decode_block(data[:-600], KEY)
    with pytest.raises(BlockFormatError, match="where 'other.json' belongs"):
        decode_block(data, "other")
    with pytest.raises(BlockFormatError, match="tokens must be unsigned"):
        encode_block(KEY, META, np.arange(3, dtype=np.int32), np.array([0], dtype=np.int64))


def test_the_contract_imports_nothing_of_the_stages():
    for path in sorted((REPO / "manifests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(("strata.pipeline", "strata.tokenize", "strata.train")), f"{path.name}: {name}"


def test_the_layout_module_imports_nothing_of_strata():
    tree = ast.parse(Path(layout.__file__).read_text())
    modules = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in modules if m and m.startswith("strata")]


def test_layout_names_round_trip():
    part = layout.consumed_part(3, 100, 199)
    assert part == "consumed/part-r00003-000000100-000000199.parquet"
    assert layout.consumed_part_steps("s3://b/run/" + part) == (3, 100, 199)
    leftover = layout.temporary_name(part.split("/")[1], "0a1b2c3d")
    assert layout.is_temporary(leftover) and layout.consumed_leftover_rank(leftover) == 3
    assert layout.consumed_leftover_rank(layout.temporary_name("manifest.json", "x")) is None
    assert not layout.is_temporary("part-r00003-000000100-000000199.parquet")
    tar = layout.shard_path("Books", "val", 2)
    assert (tar, layout.index_path(tar)) == ("shards/Books/val-000002.tar", "shards/Books/val-000002.idx.json")
    assert layout.block_key(layout.key_prefix("v1.2", "train", 0), 7) == "v1-2_train_000000_000007"


def test_a_block_index_round_trips_and_names_what_disagrees_with_the_manifest():
    blocks = [{"key": KEY, "offset": 0, "length": 2048, "tokens": 10, "docs": 2, "xxh3_64": "0" * 16}]
    raw = encode_index("shards/Books/train-000000.tar", "ab" * 32, 3072, blocks)
    index = decode_index(raw)
    shard = ShardRecord(category="Books", split="train", shard=0, path="shards/Books/train-000000.tar",
                        index="shards/Books/train-000000.idx.json", index_sha256=sha256_hex(raw), sha256="ab" * 32,
                        bytes=3072, blocks=1, tokens=10, docs=2)
    assert index["blocks"] == blocks and index_disagreements(index, shard) is None
    other = shard.model_copy(update={"tokens": 11, "bytes": 3584})
    assert index_disagreements(index, other) == "bytes 3072 (manifest 3584), tokens 10 (manifest 11)"
    with pytest.raises(ValueError, match="damaged: .*a block without xxh3_64"):
        decode_index(encode_index("x.tar", "ab", 1, [{k: v for k, v in blocks[0].items() if k != "xxh3_64"}]))
    with pytest.raises(ValueError, match="damaged"):
        decode_index(raw[:-5])


def test_the_manifest_reads_back_to_the_same_bytes_and_a_damaged_field_is_named(shard_build, tmp_path):
    out, _ = shard_build
    manifest = Manifest.read(str(out))
    assert manifest.schema_version == SCHEMA_VERSION and manifest.categories and manifest.tokenizer.vocab_size > 0
    manifest.write(str(tmp_path))
    assert (tmp_path / "manifest.json").read_bytes() == (out / "manifest.json").read_bytes()

    data = json.loads((out / "manifest.json").read_text())
    category = sorted(data["categories"])[0]
    data["categories"][category]["shards"][0]["bytes"] = "many"
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=rf"damaged manifest: categories\.{category}\.shards\.0\.bytes: "):
        Manifest.read(str(tmp_path))
    data["schema_version"] = SCHEMA_VERSION + 1
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=f"manifest schema version {SCHEMA_VERSION + 1}; .* reads version {SCHEMA_VERSION}"):
        Manifest.read(str(tmp_path))
