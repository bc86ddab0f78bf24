"""The shard stage on tiny curated Parquet and a tiny sentencepiece model trained inline."""

import hashlib
import io
import json
import random
import shutil
import subprocess
import tarfile
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import sentencepiece as spm
import webdataset as wds

from strata.config import parse_config
from strata.manifests.layout import category_folder
from strata.manifests.schemas import CURATED_SCHEMA
from strata.pipeline.schema import make_doc_id
from strata.pipeline.shard import plan_shards, run_shards, split_of
from strata.pipeline.shard_tar import BlockPacker

from corpus import prose

IN_MEMORY = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
DEFAULT_THREADS = []  # the stage's default: DirectRunner, one thread per core
TWO_PROCESSES = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
BLOCK_TOKENS = 1024
VAL_FRACTION = 0.2
EOS = 3
CONFIG = parse_config(
    {
        "sources": [{"name": "web", "format": "jsonl", "paths": ["unused/*.jsonl"], "category": "Web"}],
        # the 3 Pile-CC files (~3.2-3.7 kB of estimated tar each) make 2 shards
        "shards": {"block_tokens": BLOCK_TOKENS, "target_bytes": 7_000, "val_fraction": VAL_FRACTION},
    }
)


def _doc_id(rng, first_digit=""):
    return (first_digit + "%032x" % rng.getrandbits(128))[:32]


def _curated_docs(rng):
    """category -> files -> [(doc_id, text)]."""
    pile = [[(_doc_id(rng), prose(rng, rng.randint(1, 12))) for _ in range(12)] for _ in range(3)]
    pile[1].append((_doc_id(rng), "Short: naïve café, 東京 ☃."))  # byte fallback
    # doc_ids from 0xf...: all train, so the category writes no val tar; the second
    # document is several blocks long
    books = [[(_doc_id(rng, "f"), text) for text in (prose(rng), prose(rng, 120), "Tiny.")]]
    return {"Pile-CC": pile, "Books v1.2": books}


def _write_curated(out, docs):
    for category, files in docs.items():
        folder = out / "curated" / category_folder(category)
        folder.mkdir(parents=True)
        for i, rows in enumerate(files):
            table = pa.Table.from_pylist(
                [{"doc_id": d, "text": t, "category": category, "record_index": r} for r, (d, t) in enumerate(rows)],
                schema=CURATED_SCHEMA,
            )
            pq.write_table(table, folder / f"part-{i:05d}-00000.parquet")
    summary = {"categories": {c: {"folder": f"curated/{category_folder(c)}"} for c in docs}}
    (out / "curate.json").write_text(json.dumps(summary))


def _train_model(path, texts):
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(line for t in texts for line in t.splitlines()),
        model_prefix=str(path),
        vocab_size=300,
        model_type="bpe",
        byte_fallback=True,
        character_coverage=1.0,
        # lossless: newlines and repeated spaces survive encode + decode
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        pad_id=0, unk_id=1, bos_id=2, eos_id=3,
        num_threads=1,
        minloglevel=2,
    )
    return f"{path}.model"


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    root = tmp_path_factory.mktemp("shard")
    docs = _curated_docs(random.Random(3))
    out = root / "out"
    _write_curated(out, docs)
    texts = {d: t for files in docs.values() for rows in files for d, t in rows}
    model = _train_model(root / "sp", [prose(random.Random(5), 12) for _ in range(200)])
    records = [r.to_dict() for r in run_shards(CONFIG, str(out), model, IN_MEMORY)]
    return out, records, texts, spm.SentencePieceProcessor(model_file=model)


def _samples(out, record):
    """Every block of a shard as read by stock WebDataset, .npy decoded without pickles."""
    samples = []
    for sample in wds.WebDataset(str(out / record["path"]), shardshuffle=False):
        samples.append(
            {
                "key": sample["__key__"],
                "tokens": np.load(io.BytesIO(sample["tokens.npy"]), allow_pickle=False),
                "offsets": np.load(io.BytesIO(sample["offsets.npy"]), allow_pickle=False),
                "meta": json.loads(sample["json"]),
            }
        )
    return samples


# --------------------------------------------------------------------------- units


def test_plan_groups_each_categorys_files_in_name_order():
    curated = {"B": [("b/part-2", 40), ("b/part-1", 60), ("b/part-3", 30)], "A": [("a/part-1", 500)]}
    plans = plan_shards(curated, target_bytes=50)  # estimates: 30, 20, 15 and 250 bytes
    assert [tuple(p) for p in plans] == [
        ("A", 0, ["a/part-1"]),  # a file larger than the target makes a shard of its own
        ("B", 0, ["b/part-1", "b/part-2"]),
        ("B", 1, ["b/part-3"]),
    ]


def test_packer_keeps_documents_whole_unless_longer_than_a_block():
    packer = BlockPacker(8, "k")
    blocks = []
    for doc_id, length in [("a", 3), ("b", 3), ("c", 5), ("d", 19), ("e", 2), ("f", 8)]:
        blocks += packer.add(doc_id, np.arange(length))
    blocks += packer.finish()
    assert [(b.doc_ids, b.size, b.first_continues, b.last_continues) for b in blocks] == [
        (["a", "b"], 6, False, False),  # c does not fit: the block closes early
        (["c"], 5, False, False),
        (["d"], 8, False, True),
        (["d"], 8, True, True),
        (["d", "e"], 5, True, False),
        (["f"], 8, False, False),
    ]
    assert [b.key for b in blocks] == [f"k_{i:06d}" for i in range(6)]
    assert list(blocks[4].placements()) == [("d", 0, 3), ("e", 3, 5)]


def test_val_split_is_a_pure_function_of_doc_id_and_roughly_honoured():
    doc_ids = [make_doc_id("src", "file.jsonl", i) for i in range(20_000)]
    val = [d for d in doc_ids if split_of(d, 0.05) == "val"]
    assert 0.045 < len(val) / len(doc_ids) < 0.055
    assert all(split_of(d, 0.05) == "val" for d in val)
    assert all(split_of(d, 0.0) == "train" for d in doc_ids[:100])


# --------------------------------------------------------------------------- the stage


def test_records_describe_the_files_written(sharded):
    out, records, _, _ = sharded
    assert [(r["category"], r["split"], r["shard"]) for r in records] == [
        ("Books v1.2", "train", 0),  # no val tar: no doc of the category hashes into val
        ("Pile-CC", "train", 0), ("Pile-CC", "train", 1), ("Pile-CC", "val", 0), ("Pile-CC", "val", 1),
    ]
    assert sorted(p.relative_to(out).as_posix() for p in (out / "shards").rglob("*.tar")) == sorted(
        r["path"] for r in records
    )
    for r in records:
        data = (out / r["path"]).read_bytes()
        assert r["bytes"] == len(data) and r["sha256"] == hashlib.sha256(data).hexdigest()
        assert r["path"] == f"shards/{category_folder(r['category'])}/{r['split']}-{r['shard']:06d}.tar"
        assert r["index"] == r["path"].removesuffix(".tar") + ".idx.json"
    assert json.loads((out / "shards.json").read_text())["shards"] == records


def test_webdataset_reads_every_shard_and_counts_match(sharded):
    out, records, texts, _ = sharded
    for r in records:
        samples = _samples(out, r)
        assert len(samples) == r["blocks"]
        assert sum(len(s["tokens"]) for s in samples) == r["tokens"]
        assert sum(len(s["meta"]["doc_ids"]) - s["meta"]["first_continues"] for s in samples) == r["docs"]
        for block, s in enumerate(samples):
            assert "." not in s["key"]
            assert s["key"] == f"{category_folder(r['category']).replace('.', '-')}_{r['split']}_{r['shard']:06d}_{block:06d}"
            assert s["tokens"].dtype == np.uint16 and s["offsets"].dtype == np.int64
            assert 0 < len(s["tokens"]) <= BLOCK_TOKENS
            assert s["meta"] | {"doc_ids": None, "first_continues": None, "last_continues": None} == {
                "category": r["category"], "split": r["split"], "shard": r["shard"], "block": block,
                "doc_ids": None, "first_continues": None, "last_continues": None,
            }
            assert len(s["offsets"]) == len(s["meta"]["doc_ids"]) and s["offsets"][0] == 0
            assert (s["tokens"][s["offsets"][1:] - 1] == EOS).all()  # every piece before the last ends a doc
            assert (s["tokens"][-1] == EOS) != s["meta"]["last_continues"]
        for before, after in zip(samples, samples[1:]):
            assert before["meta"]["last_continues"] == after["meta"]["first_continues"]
    assert sum(r["docs"] for r in records) == len(texts)


def test_tar_tf_lists_the_members_with_fixed_metadata(sharded):
    out, records, _, _ = sharded
    for r in records:
        names = subprocess.run(["tar", "tf", str(out / r["path"])], check=True, capture_output=True, text=True).stdout.split()
        assert names == sorted(names) and len(names) == 3 * r["blocks"]
        keys = {n.split(".", 1)[0] for n in names}
        assert names == [f"{k}.{suffix}" for k in sorted(keys) for suffix in ("json", "offsets.npy", "tokens.npy")]
        with tarfile.open(out / r["path"]) as tar:
            for member in tar.getmembers():
                assert (member.mtime, member.uid, member.gid, member.uname, member.gname, member.mode) == (
                    0, 0, 0, "", "", 0o644
                )
        assert (out / r["path"]).read_bytes()[257:265] == b"ustar\x0000"  # POSIX USTAR magic


def test_placements_reassemble_every_document(sharded):
    out, records, texts, sp = sharded
    lineage = ds.dataset(out / "lineage", format="parquet").to_table().to_pylist()
    assert {p.name for p in (out / "lineage").iterdir()} == {
        f"shards-{category_folder('Books v1.2')}-000000.parquet", "shards-Pile-CC-000000.parquet", "shards-Pile-CC-000001.parquet"
    }
    tokens = {s["key"]: s["tokens"] for r in records for s in _samples(out, r)}
    pieces = defaultdict(list)
    for row in lineage:
        pieces[row["doc_id"]].append(row)
    assert set(pieces) == set(texts)
    for doc_id, rows in pieces.items():
        rows.sort(key=lambda row: (row["shard"], row["block_key"]))
        assert {(row["split"], row["shard"]) for row in rows} <= {(r["split"], r["path"]) for r in records}
        assert {row["split"] for row in rows} == {split_of(doc_id, VAL_FRACTION)}
        ids = np.concatenate([tokens[row["block_key"]][row["token_start"] : row["token_end"]] for row in rows])
        assert ids[-1] == EOS and EOS not in ids[:-1]
        assert sp.decode(ids[:-1].tolist()) == texts[doc_id]
    assert max(len(rows) for rows in pieces.values()) >= 3  # the long document
    assert sum(row["token_end"] - row["token_start"] for row in lineage) == sum(r["tokens"] for r in records)


def test_block_index_seeks_straight_to_each_block(sharded):
    out, records, _, _ = sharded
    for r in records:
        index = json.loads((out / r["index"]).read_text())
        assert (index["path"], index["sha256"], index["bytes"]) == (r["path"], r["sha256"], r["bytes"])
        assert len(index["blocks"]) == r["blocks"] and sum(b["tokens"] for b in index["blocks"]) == r["tokens"]
        samples = {s["key"]: s for s in _samples(out, r)}
        with open(out / r["path"], "rb") as f:
            for entry in index["blocks"]:
                f.seek(entry["offset"])
                with tarfile.open(fileobj=io.BytesIO(f.read(entry["length"]))) as mini:
                    members = {m.name: mini.extractfile(m).read() for m in mini.getmembers()}
                key = entry["key"]
                assert sorted(members) == [f"{key}.json", f"{key}.offsets.npy", f"{key}.tokens.npy"]
                tokens = np.load(io.BytesIO(members[f"{key}.tokens.npy"]), allow_pickle=False)
                assert (tokens == samples[key]["tokens"]).all() and len(tokens) == entry["tokens"]
                assert len(json.loads(members[f"{key}.json"])["doc_ids"]) == entry["docs"]
        ends = [b["offset"] + b["length"] for b in index["blocks"]]
        assert [b["offset"] for b in index["blocks"]] == [0] + ends[:-1]  # contiguous from the start


@pytest.mark.parametrize("beam_args", [DEFAULT_THREADS, TWO_PROCESSES], ids=["threads", "processes"])
def test_another_run_gives_byte_identical_shards(sharded, tmp_path, beam_args):
    out, records, _, _ = sharded
    again = tmp_path / "out"
    shutil.copytree(out / "curated", again / "curated")
    shutil.copy(out / "curate.json", again / "curate.json")
    model = str(next(out.parent.glob("sp.model")))
    assert [r.to_dict() for r in run_shards(CONFIG, str(again), model, beam_args)] == records
    for name in ("lineage/shards-Pile-CC-000001.parquet", records[0]["index"]):
        assert (again / name).read_bytes() == (out / name).read_bytes()


def test_long_documents_are_encoded_in_newline_windows_to_the_same_tokens(tmp_path, monkeypatch):
    """A long document is encoded window by window (bounded memory); with strata's tokenizer
    options ("\\n" a piece of its own) the tokens are exactly the whole document's."""
    import io
    import sysconfig
    from pathlib import Path

    from strata.config import ShardsConfig
    from strata.pipeline import shard
    from strata.tokenize.trainer import trainer_options

    code = "".join(p.read_text(errors="replace") for p in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("a*.py")))
    text = code + "façade, € and 😀 in UTF-8\n" * 300 + "  a last line without a newline " * 50
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(code.splitlines()[:20000]), model_writer=model,
                                   minloglevel=2, **trainer_options(400, "bpe", threads=1))
    (tmp_path / "sp.model").write_bytes(model.getvalue())
    writer = shard.ShardWriter(str(tmp_path), str(tmp_path / "sp.model"), ShardsConfig())
    writer.setup()
    whole = writer.encoder.sp.encode(text, add_eos=True)
    monkeypatch.setattr(shard, "ENCODE_WINDOW_CHARS", 1000)
    assert len(list(shard.newline_windows(text, 1000))) > 100
    assert "".join(shard.newline_windows(text, 1000)) == text
    long, short = writer.encode([text, "short\ntext"])
    assert long.tolist() == whole
    utf8 = memoryview(text.encode())  # as the stage reads a long text: its bytes in Arrow's buffer
    assert "".join(shard.utf8_newline_windows(utf8, 1000)) == text
    assert writer.encode([utf8])[0].tolist() == whole
    assert short.tolist() == writer.encoder.sp.encode("short\ntext", add_eos=True)
