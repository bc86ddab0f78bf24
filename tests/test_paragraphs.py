"""Paragraph-level dedup: hashing after normalization, removal, and the Beam transform that
keeps a boilerplate paragraph in the first document only, whatever the input order."""

from __future__ import annotations

import random

from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
import apache_beam as beam

from strata.config import ParagraphDedupConfig
from strata.pipeline.paragraphs import BoilerplateParagraphs, paragraph_hash, paragraph_hashes, remove_paragraphs

LICENCE = "This program is free software; you can redistribute it\nunder the terms of the GNU GPL."
COOKIES = "We use cookies to improve your experience on this site."


def test_paragraph_hashes_normalize_case_and_whitespace():
    assert paragraph_hash(LICENCE) == paragraph_hash("  " + LICENCE.upper().replace(" ", "   ") + "\n")
    text = f"First paragraph of the page.\n\n{LICENCE}\n  \n{LICENCE}\n\nok"
    assert paragraph_hashes(text, min_chars=5) == [paragraph_hash("First paragraph of the page."), paragraph_hash(LICENCE)]


def test_remove_paragraphs_counts_what_went():
    text = f"{COOKIES}\n\nThe article itself starts here.\n\n{LICENCE}"
    assert remove_paragraphs(text, [paragraph_hash(COOKIES), paragraph_hash(LICENCE)]) == (
        "The article itself starts here.", 2)
    assert remove_paragraphs(text, [paragraph_hash("absent")]) == (text, 0)


def test_boilerplate_stays_in_the_first_document_only():
    boiler, shared_by_two = paragraph_hash(LICENCE), paragraph_hash("A quotation two pages share.")
    docs = [(f"doc-{i}", [paragraph_hash(f"own text {i}"), boiler]) for i in range(5)]
    docs[1][1].append(shared_by_two)
    docs[3][1].append(shared_by_two)
    random.Random(1).shuffle(docs)
    with BeamTestPipeline() as pipeline:
        removals = pipeline | beam.Create(docs) | BoilerplateParagraphs(ParagraphDedupConfig(enabled=True, max_documents=2))
        # in 5 documents: removed from all but doc-0; in 2: not boilerplate
        assert_that(removals, equal_to([(f"doc-{i}", [boiler]) for i in range(1, 5)]))


def test_curate_removes_boilerplate_and_says_how_many_paragraphs_went(tmp_path):
    import json

    import pyarrow.dataset as ds

    from conftest import IN_MEMORY
    from corpus import prose
    from strata.config import parse_config
    from strata.pipeline.curate import read_lineage
    from strata.pipeline.curate_steps import run_curate

    rng = random.Random(5)
    texts = [f"{prose(rng)}\n\n{COOKIES}\n\n{LICENCE}" for _ in range(4)] + [f"Short page text.\n\n{COOKIES}\n\n{LICENCE}"]
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    config = parse_config({
        "sources": [{"name": "web", "format": "jsonl", "paths": [str(tmp_path / "docs.jsonl")], "category": "Web"}],
        "filters": {"gopher_quality": {"enabled": False}, "gopher_repetition": {"enabled": False},
                    "c4": {"enabled": False}, "language": {"enabled": False}},
        "dedup": {"paragraph": {"enabled": True, "max_documents": 2, "min_chars": 100}},
    })
    summary = run_curate(config, str(tmp_path / "out"), IN_MEMORY)
    lineage = sorted(read_lineage(str(tmp_path / "out")).to_pylist(), key=lambda r: r["doc_id"])
    first, rest = lineage[0], lineage[1:]
    assert first["fate"] == "kept" and first["paragraphs_removed"] is None
    assert [r["paragraphs_removed"] for r in rest] == [2] * 4
    assert first["record_index"] == 0  # the smallest doc_id of the five
    short = next(r for r in lineage if r["record_index"] == 4)
    assert (short["fate"], short["stage"], short["reason"]) == ("dropped", "paragraph_dedup", "paragraph_dedup:too_short")
    kept = {r["doc_id"]: r["text"] for r in ds.dataset(tmp_path / "out" / "curated").to_table().to_pylist()}
    assert COOKIES in kept[first["doc_id"]]
    for row in rest:
        if row["fate"] == "kept":
            assert kept[row["doc_id"]] == texts[row["record_index"]].split("\n\n")[0]
            assert row["text_bytes"] == len(kept[row["doc_id"]].encode())
    assert summary["paragraph_dedup"] == {"documents_shortened": 4, "paragraphs_removed": 8}
    assert summary["stages"]["paragraph_dedup"]["dropped"] == {"paragraph_dedup:too_short": 1}
