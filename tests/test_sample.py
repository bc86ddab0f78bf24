"""`strata sample`: documents that met a fate, picked by seed, shown by their first lines as
read from the input."""

from __future__ import annotations

import json

from strata.cli import main
from strata.pipeline.sample import sample_documents


def test_a_reason_shows_its_documents_as_read(built, capsys):
    out, _ = built
    result = sample_documents(str(out), reason="language:low_score")
    assert result["matching"] == 1
    (doc,) = result["documents"]
    assert doc["first_lines"] == ["too short."]
    assert doc["uri"].endswith("b.jsonl.zst") and doc["record_index"] == 16
    assert (doc["fate"], doc["stage"]) == ("dropped", "language")


def test_kept_documents_are_a_seeded_sample_of_the_input_text(built, planted):
    out, summary = built
    first = sample_documents(str(out), kept=True, n=3, seed=1, lines=2)
    assert first == sample_documents(str(out), kept=True, n=3, seed=1, lines=2)
    assert first["matching"] == summary["fates"]["kept"] and len(first["documents"]) == 3
    assert first["documents"] != sample_documents(str(out), kept=True, n=3, seed=2)["documents"]
    texts = {(d["relpath"], d["record_index"]): d["text"] for d in planted["documents"]}
    for doc in first["documents"]:
        text = texts[(doc["uri"].rsplit("/", 1)[-1], doc["record_index"])]
        assert doc["first_lines"] == [line[:200] for line in text.split("\n")[:2]]  # lines cut at 200 characters


def test_cli_prints_json_and_needs_a_filter(built, capsys):
    out, _ = built
    assert main(["sample", str(out), "--category", "Books", "--n", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["matching"] == 5 and [d["category"] for d in result["documents"]] == ["Books", "Books"]
    assert main(["sample", str(out), "--reason", "exact_duplicate"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("3 of 3 matching documents") and "duplicate at exact_dedup: exact_duplicate (of " in text
    assert main(["sample", str(out)]) == 2
