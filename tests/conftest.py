import json
import random
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from moto import server as moto_server

from strata.config import parse_config
from strata.pipeline.curate_steps import run_curate

from corpus import FRENCH, GERMAN, perturb, prose, word_ngram_jaccard

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """STRATA_CACHE_DIR for the fixtures of wider scope than a test (those that train):
    no test reads or writes the user's ~/.cache/strata."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STRATA_CACHE_DIR", str(tmp_path_factory.mktemp("strata-cache")))
        yield


@pytest.fixture(autouse=True)
def verified_record(tmp_path_factory, monkeypatch):
    """Each test's own record of verified shards (train/verified_record.py), empty at its start."""
    folder = tmp_path_factory.mktemp("strata-cache")
    monkeypatch.setenv("STRATA_CACHE_DIR", str(folder))
    return folder / "verified"


# --------------------------------------------------------------------------- a curated corpus

IN_MEMORY = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]

MALFORMED = {
    "text_not_string": json.dumps({"text": 12, "meta": {"pile_set_name": "Pile-CC"}}),
    "not_an_object": json.dumps(["a", "b"]),
    "invalid_json": '{"text": "unterminated',
    "missing_text": json.dumps({"meta": {"pile_set_name": "Pile-CC"}}),
    "empty_text": json.dumps({"text": "  ", "meta": {"pile_set_name": "Pile-CC"}}),
    "missing_category": json.dumps({"text": "no category here at all"}),
}
JUNK = [
    "$$$ ### @@@ !!! %%% " * 30,  # symbols, not words
    "too short.",
    "\n".join(["Buy cheap watches now and save money today."] * 30),  # repetition
]


def _pile(text, category="Pile-CC"):
    return {"text": text, "meta": {"pile_set_name": category}}


def _zst(lines):
    return zstandard.ZstdCompressor().compress(("\n".join(lines) + "\n").encode())


@pytest.fixture(scope="session")
def corpus(corpus_config_dict):
    return parse_config(corpus_config_dict)


@pytest.fixture(scope="session")
def corpus_config_dict(planted_corpus):
    return planted_corpus[0]


@pytest.fixture(scope="session")
def planted(planted_corpus):
    """What the generator put in the corpus, for tests that work out every figure of a build
    on their own: "documents", every well-formed English record (source, relpath,
    record_index, category, text), and "copies", the planted duplicates (kind "exact" or
    "near", and the (relpath, record_index) of the original and of the copy). The junk, the
    two foreign-language records and the malformed ones (MALFORMED, an invalid UTF-8 line,
    a truncated zstd frame) come on top."""
    return planted_corpus[1]


@pytest.fixture(scope="session")
def planted_corpus(tmp_path_factory):
    rng = random.Random(7)
    root = tmp_path_factory.mktemp("corpus")
    (root / "pile").mkdir()
    a = [prose(rng) for _ in range(20)]
    b = [prose(rng) for _ in range(10)]
    near = [perturb(rng, a[i], 0.01) for i in (3, 4)]
    assert all(word_ngram_jaccard(a[i], n) >= 0.8 for i, n in zip((3, 4), near))
    records_a = [_pile(t, "Pile-CC" if i % 2 else "ArXiv") for i, t in enumerate(a)]
    lines_a = [json.dumps(r) for r in records_a]
    lines_a[5:5] = list(MALFORMED.values())
    index_a = [i if i < 5 else i + len(MALFORMED) for i in range(len(a))]
    raw_a = ("\n".join(lines_a) + "\n").encode() + b'{"text": "bad \xff byte", "meta": {"pile_set_name": "ArXiv"}}\n'
    (root / "pile" / "a.jsonl").write_bytes(raw_a)
    records_b = [_pile(t) for t in b] + [records_a[i] for i in (0, 1, 2)] + [_pile(t) for t in near]  # exact copies, near copies
    lines_b = (
        [json.dumps(r) for r in records_b]
        + [json.dumps(_pile(t)) for t in JUNK]
        + [json.dumps(_pile(FRENCH)), json.dumps(_pile(GERMAN))]
    )
    (root / "pile" / "b.jsonl.zst").write_bytes(_zst(lines_b))
    records_c = [_pile(prose(rng), "ArXiv") for _ in range(5)]
    whole = _zst([json.dumps(r) for r in records_c])
    cut = _zst([json.dumps(_pile(prose(rng)))])[:40]  # a second frame, cut before its line ends
    (root / "pile" / "c.jsonl.zst").write_bytes(whole + cut)
    books = [prose(rng, 15) for _ in range(5)]
    pq.write_table(pa.table({"text": books}), root / "books.parquet")
    documents = (
        [_planted("pile", "a.jsonl", i, r) for i, r in zip(index_a, records_a)]
        + [_planted("pile", "b.jsonl.zst", i, r) for i, r in enumerate(records_b)]
        + [_planted("pile", "c.jsonl.zst", i, r) for i, r in enumerate(records_c)]
        + [_planted("books", "books.parquet", i, _pile(t, "Books")) for i, t in enumerate(books)]
    )
    copies = [
        (kind, ("a.jsonl", index_a[original]), ("b.jsonl.zst", len(b) + k))
        for k, (kind, original) in enumerate([("exact", 0), ("exact", 1), ("exact", 2), ("near", 3), ("near", 4)])
    ]
    config = {
        "sources": [
            {"name": "pile", "format": "pile", "paths": [str(root / "pile" / "*")], "category_field": "pile"},
            {"name": "books", "format": "parquet", "paths": [str(root / "books.parquet")], "category": "Books"},
        ],
        "categories": {"Pile-CC": {"weight": 0.4}, "ArXiv": {"weight": 0.3}, "Books": {"epochs": 2}},
        # English stop words would drop the French and German documents before language ID
        "filters": {"gopher_quality": {"min_words": 20, "min_stop_words": 0}},
    }
    return config, {"documents": documents, "copies": copies}


def _planted(source, relpath, record_index, record):
    return {"source": source, "relpath": relpath, "record_index": record_index,
            "category": record["meta"]["pile_set_name"], "text": record["text"]}


@pytest.fixture(scope="session")
def shard_build(corpus_config_dict, tmp_path_factory):
    """The corpus built to shards with a small vocabulary and small blocks and shards, so
    every category has several shards and windows span blocks: (OUT, manifest)."""
    from strata.pipeline.build import run_build

    out = tmp_path_factory.mktemp("shard-build")
    config = dict(corpus_config_dict, tokenizer={"vocab_size": 400}, shards=SMALL_SHARDS)
    manifest = run_build(parse_config(config), str(out), "shards", IN_MEMORY)
    assert any(len([s for s in c["shards"] if s["split"] == "train"]) > 1 for c in manifest["categories"].values())
    return out, manifest


SMALL_SHARDS = {"block_tokens": 64, "val_fraction": 0.1, "target_bytes": 1000}


@pytest.fixture(scope="session")
def code_build(tmp_path_factory):
    """Real text with structure a tiny model can learn in seconds: a few standard-library
    packages (code and docstrings), a 512-piece tokenizer, 256-token blocks: (OUT, manifest)."""
    from strata.pipeline.build import run_build

    everything = {"gopher_quality": {"enabled": False}, "gopher_repetition": {"enabled": False},
                  "c4": {"enabled": False}, "language": {"enabled": False}}
    config = {
        "sources": [{"name": "stdlib", "format": "stdlib",
                     "paths": ["json/*.py", "email/*.py", "collections/*.py", "logging/*.py", "http/*.py"]}],
        "categories": {"Github": {"weight": 0.8}, "Docstrings": {"epochs": 1}},
        "filters": {"per_category": {"Github": everything, "Docstrings": everything}},
        "tokenizer": {"vocab_size": 512},
        "shards": {"block_tokens": 256, "target_bytes": 100_000, "val_fraction": 0.05},
    }
    out = tmp_path_factory.mktemp("code-build")
    return out, run_build(parse_config(config), str(out), "shards", IN_MEMORY)


@pytest.fixture(scope="session")
def objective_build(code_build, tmp_path_factory):
    """code_build as `tokenizer.objective_specials: true` would make it: the same shards (the
    specials are control pieces appended to the vocabulary, so no text encodes differently),
    a tokenizer with <cls>, <sep>, the UL2 mode tokens and 100 sentinels: (OUT, manifest)."""
    import hashlib
    import shutil

    from strata.manifests.manifest import Manifest
    from strata.tokenize.specials import objective_pieces, with_control_pieces
    from strata.tokenize.trainer import special_ids

    src, manifest = code_build
    out = tmp_path_factory.mktemp("objective-build")
    shutil.copytree(src / "shards", out / "shards")
    model = with_control_pieces((src / "tokenizer" / "tokenizer.model").read_bytes(), objective_pieces(100))
    (out / "tokenizer").mkdir()
    (out / "tokenizer" / "tokenizer.model").write_bytes(model)
    ids = special_ids(str(out / "tokenizer" / "tokenizer.model"))
    tokenizer = {**manifest["tokenizer"], "sha256": hashlib.sha256(model).hexdigest(),
                 "vocab_size": ids["sentinels"][0] + 100, "special_ids": ids}
    manifest = {**manifest, "tokenizer": tokenizer}
    Manifest.model_validate(manifest).write(str(out))
    return out, manifest


@pytest.fixture(scope="session")
def built(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    summary = run_curate(corpus, str(out), IN_MEMORY)
    return out, summary




# --------------------------------------------------------------------------- object storage


@pytest.fixture
def s3(monkeypatch):
    """A real S3 endpoint (moto's server) on 127.0.0.1 with bucket `strata-test`, reached
    through the real clients with credentials from the environment. Cleaned up after:
    moto's buckets outlive its server, and fsspec's cached S3 filesystems keep the
    endpoint they were made with."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir("strata-test")
    yield fs
    fs.rm("strata-test", recursive=True)
    type(fs).clear_instance_cache()
    server.stop()
