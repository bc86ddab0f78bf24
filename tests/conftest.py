import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from strata.config import parse_config
from strata.pipeline.curate import run_curate

from corpus import FRENCH, GERMAN, perturb, prose, word_ngram_jaccard

REPO = Path(__file__).resolve().parent.parent


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
def corpus_config_dict(tmp_path_factory):
    rng = random.Random(7)
    root = tmp_path_factory.mktemp("corpus")
    (root / "pile").mkdir()
    a = [prose(rng) for _ in range(20)]
    b = [prose(rng) for _ in range(10)]
    near = [perturb(rng, a[i], 0.01) for i in (3, 4)]
    assert all(word_ngram_jaccard(a[i], n) >= 0.8 for i, n in zip((3, 4), near))
    lines_a = [json.dumps(_pile(t, "Pile-CC" if i % 2 else "ArXiv")) for i, t in enumerate(a)]
    lines_a[5:5] = list(MALFORMED.values())
    raw_a = ("\n".join(lines_a) + "\n").encode() + b'{"text": "bad \xff byte", "meta": {"pile_set_name": "ArXiv"}}\n'
    (root / "pile" / "a.jsonl").write_bytes(raw_a)
    lines_b = (
        [json.dumps(_pile(t)) for t in b]
        + [json.dumps(_pile(a[i], "Pile-CC" if i % 2 else "ArXiv")) for i in (0, 1, 2)]  # exact copies
        + [json.dumps(_pile(t)) for t in near]
        + [json.dumps(_pile(t)) for t in JUNK]
        + [json.dumps(_pile(FRENCH)), json.dumps(_pile(GERMAN))]
    )
    (root / "pile" / "b.jsonl.zst").write_bytes(_zst(lines_b))
    c = [json.dumps(_pile(prose(rng), "ArXiv")) for _ in range(5)]
    whole = _zst(c)
    cut = _zst([json.dumps(_pile(prose(rng)))])[:40]  # a second frame, cut before its line ends
    (root / "pile" / "c.jsonl.zst").write_bytes(whole + cut)
    books = [prose(rng, 15) for _ in range(5)]
    pq.write_table(pa.table({"text": books}), root / "books.parquet")
    return (
        {
            "sources": [
                {"name": "pile", "format": "pile", "paths": [str(root / "pile" / "*")], "category_field": "pile"},
                {"name": "books", "format": "parquet", "paths": [str(root / "books.parquet")], "category": "Books"},
            ],
            "categories": {"Pile-CC": {"weight": 0.4}, "ArXiv": {"weight": 0.3}, "Books": {"epochs": 2}},
            # English stop words would drop the French and German documents before language ID
            "filters": {"gopher_quality": {"min_words": 20, "min_stop_words": 0}},
        }
    )


@pytest.fixture(scope="session")
def built(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    summary = run_curate(corpus, str(out), IN_MEMORY)
    return out, summary


