"""Curate on real Japanese, Chinese, German and Russian man pages (prose, option lines, a
shared English licence footer) and template-heavy English pages: every document is kept
whole or dropped whole with a reason, in its own language, and only true duplicates are
removed, each with its similarity to the survivor it names."""

from __future__ import annotations

import json

import pytest

from strata.config import parse_config
from strata.pipeline.curate import read_lineage
from strata.pipeline.curate_steps import run_curate
from strata.pipeline.languages import mostly_unsegmented

from conftest import IN_MEMORY
from multilingual import CHINESE, GERMAN, JAPANESE, RUSSIAN, TEMPLATED_ENGLISH

LANGUAGE_OF = {"ja": JAPANESE, "zh": CHINESE, "de": GERMAN, "ru": RUSSIAN, "en": TEMPLATED_ENGLISH}
ORIGINALS = [(language, name, text) for language, docs in LANGUAGE_OF.items() for name, text in docs.items()]
NEAR_COPY = GERMAN["touch"].replace("besonders nützlich", "sehr praktisch").replace("frei formulierte", "beliebige")
EXACT_COPY = "  " + JAPANESE["date"].replace("\n\n", "\n  \n")  # same content, other whitespace
RECORDS = [text for _, _, text in ORIGINALS] + [NEAR_COPY, EXACT_COPY]


def shingles(text: str, n: int = 5) -> set:
    """Word 5-grams, or character 5-grams for text without spaces between words (as dedup)."""
    if mostly_unsegmented(text):
        chars = "".join(text.lower().split())
        return {chars[i : i + n] for i in range(len(chars) - n + 1)}
    words = text.lower().split()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    root = tmp_path_factory.mktemp("multilingual")
    (root / "docs.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in RECORDS), encoding="utf-8")
    config = parse_config({
        "sources": [{"name": "man", "format": "jsonl", "paths": [str(root / "docs.jsonl")], "category": "Manuals"}],
        "filters": {"language": {"languages": ["en", "ja", "zh", "de", "ru"]}},
    })
    out = root / "out"
    run_curate(config, str(out), IN_MEMORY)
    lineage = {r["record_index"]: r for r in read_lineage(str(out)).to_pylist()}
    import pyarrow.dataset as ds

    kept_text = dict(zip(*ds.dataset(out / "curated", format="parquet").to_table(columns=["doc_id", "text"]).to_pydict().values()))
    return lineage, kept_text


def test_each_document_is_identified_in_its_own_language(curated):
    lineage, _ = curated
    for index, (language, name, _) in enumerate(ORIGINALS):
        assert lineage[index]["language"] == language, name


def _index(language: str, name: str) -> int:
    return next(i for i, (lang, n, _) in enumerate(ORIGINALS) if (lang, n) == (language, name))


# (original, planted copy, dedup stage): of each pair one is kept (the smaller doc_id).
PAIRS = [(_index("de", "touch"), len(ORIGINALS), "near_dedup"), (_index("ja", "date"), len(ORIGINALS) + 1, "exact_dedup")]


def test_every_document_is_kept_whole_or_is_a_duplicate(curated):
    lineage, kept_text = curated
    copy_of = {copy: original for original, copy, _ in PAIRS} | {original: copy for original, copy, _ in PAIRS}
    for index, text in enumerate(RECORDS):
        row = lineage[index]
        if row["fate"] == "duplicate":
            assert lineage[copy_of[index]]["fate"] == "kept"
            continue
        assert row["fate"] == "kept", (index, row["stage"], row["reason"])
        kept = kept_text[row["doc_id"]]
        assert len(kept) >= 0.5 * len(text), index
        # Every sentence of the prose survives: the lines that end like sentences.
        prose = [line.strip() for line in text.split("\n") if line.endswith(("。", "."))]
        assert prose and all(line in kept for line in prose), index


def test_only_true_duplicates_are_removed_and_say_how_similar(curated):
    lineage, _ = curated
    for original, copy, stage in PAIRS:
        removed, survivor = sorted([lineage[original], lineage[copy]], key=lambda r: r["doc_id"], reverse=True)
        assert (removed["fate"], removed["stage"], removed["duplicate_of"]) == ("duplicate", stage, survivor["doc_id"])
        assert survivor["fate"] == "kept"
        assert removed["similarity"] == 1.0 if stage == "exact_dedup" else removed["similarity"] >= 0.65
    by_id = {r["doc_id"]: (i, r) for i, r in lineage.items()}
    for index, row in lineage.items():
        if row["fate"] == "duplicate":  # as read, a duplicate shares most of its survivor's shingles
            assert jaccard(RECORDS[index], RECORDS[by_id[row["duplicate_of"]][0]]) >= 0.5
    assert sum(r["fate"] == "duplicate" for r in lineage.values()) == 2
