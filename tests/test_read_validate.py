"""Readers and the validate stage as pure functions: every bad kind has its reason,
every good record before (and after) it is kept."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from strata.config import SourceConfig
from strata.pipeline.read import discover_inputs, docstrings_of, read_records
from strata.pipeline.validate import validate_record

MAX = 1 << 20


def _source(tmp_path, fmt="jsonl", pattern="*.jsonl*", **kw):
    kw.setdefault("category" if "category_field" not in kw else "_", "Web")
    kw.pop("_", None)
    return SourceConfig(name="src", format=fmt, paths=[str(tmp_path / pattern)], **kw)


def _validated(tmp_path, fmt="jsonl", pattern="*.jsonl*", text_field="text", **kw):
    source = _source(tmp_path, fmt, pattern, text_field=text_field, **kw)
    (f,) = discover_inputs([source])
    path = tuple(source.category_path) if source.category_path else None
    return [validate_record(r, fmt, text_field, path, 1000, 64) for r in read_records(f, 4000)]


def _fates(docs):
    return [(d["record_index"], d["reason"]) for d in docs]


LINES = [
    json.dumps({"text": "good zero"}),
    json.dumps({"text": 42}),  # datatrove crashes on this
    json.dumps(["a", "top-level", "array"]),  # and on this
    "{not json",
    json.dumps({"body": "no text field"}),
    json.dumps({"text": "   \n "}),
    json.dumps({"text": "x" * 1001}),
    json.dumps({"text": "lone \ud800 surrogate"}),
    json.dumps({"text": None}),
    json.dumps({"text": "good nine"}),
]


def test_jsonl_malformed_records_each_get_a_reason(tmp_path):
    raw = ("\n".join(LINES) + "\n").encode()
    raw = raw.replace(b"good nine", b"good nine") + b"\xff\xfe broken utf8 line\n" + json.dumps({"text": "good eleven"}).encode() + b"\n"
    (tmp_path / "a.jsonl").write_bytes(raw)
    docs = _validated(tmp_path)
    assert _fates(docs) == [
        (0, None),
        (1, "text_not_string"),
        (2, "not_an_object"),
        (3, "invalid_json"),
        (4, "missing_text"),
        (5, "empty_text"),
        (6, "text_too_large"),
        (7, "invalid_utf8"),
        (8, "missing_text"),
        (9, None),
        (10, "invalid_utf8"),  # one bad byte does not lose the rest of the file
        (11, None),
    ]
    assert [d["text"] for d in docs if d["fate"] is None] == ["good zero", "good nine", "good eleven"]
    bad = docs[3]
    assert bad["fate"] == "quarantined" and bad["raw"] == b"{not json" and bad["stage"] == "validate"


def test_blank_lines_are_not_records_but_keep_line_numbers(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "a"}\n\n   \n{"text": "b"}\n')
    assert _fates(_validated(tmp_path)) == [(0, None), (3, None)]


def test_quarantined_raw_bytes_are_capped(tmp_path):
    (tmp_path / "a.jsonl").write_text("[" + "1," * 500 + "1]\n")
    (doc,) = _validated(tmp_path)
    assert doc["reason"] == "not_an_object" and len(doc["raw"]) == 64 and doc["raw_bytes"] > 1000


def _zst(records, level=3):
    return zstandard.ZstdCompressor(level=level).compress(("\n".join(json.dumps(r) for r in records) + "\n").encode())


def test_truncated_zst_is_reported_and_records_before_the_cut_kept(tmp_path):
    records = [{"text": f"document number {i} " + "word " * 50} for i in range(200)]
    # two frames: the first is whole, the cut falls inside the second
    first, second = _zst(records[:100]), _zst(records[100:])
    (tmp_path / "a.jsonl.zst").write_bytes(first + second[: len(second) // 2])
    docs = _validated(tmp_path)
    kept = [d for d in docs if d["fate"] is None]
    errors = [d for d in docs if d["fate"]]
    assert len(kept) >= 100  # the whole first frame at least
    assert [d["reason"] for d in errors] == ["truncated_compressed_file"]
    assert errors[0]["record_index"] == len(kept)  # the damaged tail is the record after the last good one
    assert [d["record_index"] for d in kept] == list(range(len(kept)))


def test_whole_multiframe_zst_reads_every_record(tmp_path):
    records = [{"text": f"doc {i}"} for i in range(50)]
    (tmp_path / "a.jsonl.zst").write_bytes(_zst(records[:20]) + _zst(records[20:]))
    docs = _validated(tmp_path)
    assert [d["text"] for d in docs] == [r["text"] for r in records]


def test_corrupt_zst_is_reported(tmp_path):
    good = _zst([{"text": "x"}])
    (tmp_path / "a.jsonl.zst").write_bytes(good[:4] + b"\x00garbage" * 10)
    docs = _validated(tmp_path)
    assert [d["reason"] for d in docs] == ["corrupt_compressed_file"]


def test_truncated_gzip_is_reported(tmp_path):
    data = gzip.compress(("\n".join(json.dumps({"text": f"doc {i} " * 40}) for i in range(500)) + "\n").encode())
    (tmp_path / "a.jsonl.gz").write_bytes(data[: len(data) * 2 // 3])
    docs = _validated(tmp_path)
    assert docs[-1]["reason"] == "truncated_compressed_file"
    assert all(d["fate"] is None for d in docs[:-1]) and len(docs) > 10


def test_oversized_line_is_skipped_without_losing_neighbours(tmp_path):
    (tmp_path / "a.jsonl").write_text(
        json.dumps({"text": "before"}) + "\n" + json.dumps({"text": "y" * 10000}) + "\n" + json.dumps({"text": "after"}) + "\n"
    )
    docs = _validated(tmp_path)
    assert _fates(docs) == [(0, None), (1, "record_too_large"), (2, None)]


def test_pile_category_field(tmp_path):
    (tmp_path / "a.jsonl").write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"text": "a", "meta": {"pile_set_name": "ArXiv"}},
                {"text": "b", "meta": {}},
                {"text": "c", "meta": {"pile_set_name": 7}},
            ]
        )
    )
    docs = _validated(tmp_path, fmt="pile", category_field="pile")
    assert [(d["category"], d["reason"]) for d in docs] == [("ArXiv", None), (None, "missing_category"), (None, "missing_category")]


def test_parquet_rows(tmp_path):
    table = pa.table({"content": ["alpha", None, "gamma", ""], "lang": ["en", "en", "fr", "en"]})
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=2)
    docs = _validated(tmp_path, fmt="parquet", pattern="*.parquet", text_field="content")
    assert _fates(docs) == [(0, None), (1, "missing_text"), (2, None), (3, "empty_text")]
    assert docs[2]["text"] == "gamma"


def test_corrupt_parquet_is_reported(tmp_path):
    (tmp_path / "a.parquet").write_bytes(b"PAR1 this is not parquet")
    docs = _validated(tmp_path, fmt="parquet", pattern="*.parquet")
    assert [d["reason"] for d in docs] == ["corrupt_parquet_file"]


def test_text_files_are_one_document_each(tmp_path):
    (tmp_path / "a.txt").write_text("a whole\nfile of text\n")
    (tmp_path / "b.txt").write_bytes(b"bad \xff byte")
    source = _source(tmp_path, fmt="text", pattern="*.txt")
    files = discover_inputs([source])
    assert [f.relpath for f in files] == ["a.txt", "b.txt"]
    docs = [validate_record(r, "text", "text", None, 1000, 64) for f in files for r in read_records(f, 4000)]
    assert [(d["text"], d["reason"]) for d in docs] == [("a whole\nfile of text\n", None), (None, "invalid_utf8")]


def test_doc_ids_are_stable_and_relative_to_the_source_root(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.jsonl").write_text('{"text": "x"}\n')
    first = _validated(tmp_path, pattern="sub/*.jsonl")[0]["doc_id"]
    moved = tmp_path / "elsewhere"
    (moved / "sub").mkdir(parents=True)
    (moved / "sub" / "a.jsonl").write_text('{"text": "different content"}\n')
    assert _validated(moved, pattern="sub/*.jsonl")[0]["doc_id"] == first


def test_unmatched_glob_is_a_config_error(tmp_path):
    from strata.config import ConfigError

    with pytest.raises(ConfigError, match=r"sources\[0\] \(src\)\.paths"):
        discover_inputs([_source(tmp_path, pattern="nothing-*.jsonl")])


def test_stdlib_source_yields_code_and_docstrings():
    source = SourceConfig(name="stdlib", format="stdlib", paths=["json/*.py"])
    files = discover_inputs([source])
    assert {f.relpath for f in files} >= {"json/__init__.py", "json/decoder.py"}
    records = [r for f in files for r in read_records(f, MAX)]
    categories = {r["category"] for r in records}
    assert categories == {"Github", "Docstrings"}
    prose = docstrings_of(b'"""Module doc."""\nclass A:\n    """Class doc."""\n    def f(self):\n        """Func doc."""\n')
    assert prose == "Module doc.\n\nClass doc.\n\nFunc doc."
    assert docstrings_of(b"def broken(:\n") == ""


def test_utf8_size_of_a_long_text_is_counted_in_windows(monkeypatch):
    from strata.pipeline import validate

    monkeypatch.setattr(validate, "SIZE_WINDOW_CHARS", 7)
    text = "añb€c\U0001f600d" * 11
    assert validate.utf8_size(text) == len(text.encode("utf-8"))
    broken = text + "x\ud800y"
    with pytest.raises(UnicodeEncodeError) as caught:
        validate.utf8_size(broken)
    assert caught.value.start == len(text) + 1 and caught.value.object is broken
