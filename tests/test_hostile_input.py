"""Inputs built to hurt: decompression bombs, over-long lines, paths that are not regular
files. Memory stays bounded, each gets its reason, and the rest of the input is read."""

import gzip
import io
import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import yaml
import zstandard

from strata.config import SourceConfig
from strata.pipeline.decompress import OUTPUT_CHUNK, ExpansionLimit, decompressed_chunks
from strata.pipeline.read import discover_inputs, read_records

from strata_command import strata

MIB = 1 << 20


def _zstd_bomb(size: int, line: bytes = b"") -> bytes:
    """`line` then `size` zero bytes, as one zstd frame of a few KB."""
    out = io.BytesIO()
    with zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False) as writer:
        writer.write(line)
        for _ in range(size // MIB):
            writer.write(bytes(MIB))
    return out.getvalue()


def _gzip_bomb(size: int, line: bytes = b"") -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0) as writer:
        writer.write(line)
        for _ in range(size // MIB):
            writer.write(bytes(MIB))
    return out.getvalue()


@pytest.mark.parametrize("suffix, bomb", [(".zst", _zstd_bomb), (".gz", _gzip_bomb)])
def test_a_bomb_decompresses_in_bounded_chunks(suffix, bomb):
    data = bomb(48 * MIB)
    assert len(data) < MIB // 8  # a ratio far above any real text's
    sizes = [len(c) for c in decompressed_chunks("bomb.jsonl" + suffix, io.BytesIO(data), ExpansionLimit())]
    assert sum(sizes) == 48 * MIB
    assert max(sizes) <= OUTPUT_CHUNK


def _source(tmp_path, pattern="*"):
    return SourceConfig(name="src", format="jsonl", paths=[str(tmp_path / pattern)], category="Web")


def test_a_file_past_the_expansion_limit_is_cut_with_decompression_limit(tmp_path):
    good = "".join(json.dumps({"text": f"record {i}"}) + "\n" for i in range(3)).encode()
    (tmp_path / "bomb.jsonl.zst").write_bytes(_zstd_bomb(32 * MIB, good))
    (f,) = discover_inputs([_source(tmp_path)])
    records = list(read_records(f, 64 * MIB, ExpansionLimit(ratio=8)))
    assert [r["raw"] for r in records[:3]] == good.splitlines()
    assert [(r["error"], r["record_index"]) for r in records[3:]] == [("decompression_limit", 3)]
    # a plain limit on the decompressed size, too; and none by default
    records = list(read_records(f, 64 * MIB, ExpansionLimit(max_bytes=4 * MIB)))
    assert records[-1]["error"] == "decompression_limit"
    records = list(read_records(f, 16 * MIB))
    assert [r["error"] for r in records[3:]] == ["record_too_large"]


def test_the_expansion_limit_is_a_documented_config_key_with_a_default():
    from strata.config import ValidateConfig

    assert ValidateConfig().max_expansion_ratio == 200 and ValidateConfig().max_decompressed_bytes is None


BOUNDED_READ = textwrap.dedent(
    """
    import resource, sys
    from strata.config import SourceConfig
    from strata.pipeline.decompress import ExpansionLimit
    from strata.pipeline.read import discover_inputs, read_records

    (f,) = discover_inputs([SourceConfig(name="s", format="jsonl", paths=[sys.argv[1]], category="Web")])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reasons = [r["error"] or "ok" for r in read_records(f, 4 << 20, ExpansionLimit())]
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(grew // 1024, " ".join(reasons))
    """
)


@pytest.mark.parametrize("suffix, bomb", [(".zst", _zstd_bomb), (".gz", _gzip_bomb)])
def test_reading_a_bomb_with_no_expansion_limit_keeps_memory_bounded(tmp_path, suffix, bomb):
    """256 MiB of decompressed output, one line, read with a 4 MiB record limit and no
    expansion limit: the reader's peak memory grows by a few MiB, not by the output."""
    path = tmp_path / f"bomb.jsonl{suffix}"
    path.write_bytes(bomb(256 * MIB, json.dumps({"text": "first"}).encode() + b"\n"))
    result = subprocess.run([sys.executable, "-c", BOUNDED_READ, str(path)], capture_output=True, text=True, check=True)
    grew_mib, reasons = result.stdout.split(maxsplit=1)
    assert reasons.split() == ["ok", "record_too_large"]
    assert int(grew_mib) < 64, result.stdout


def test_an_over_long_line_is_quarantined_and_the_lines_after_it_are_read(tmp_path):
    lines = [json.dumps({"text": "before"}), json.dumps({"text": "x" * 50_000}), json.dumps({"text": "after"})]
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    (f,) = discover_inputs([_source(tmp_path)])
    records = list(read_records(f, 10_000))
    assert [(r["record_index"], r["error"], r["raw"]) for r in records] == [
        (0, None, lines[0].encode()), (1, "record_too_large", None), (2, None, lines[2].encode())
    ]


def test_non_regular_files_matched_by_a_glob_are_skipped_with_their_reason(tmp_path):
    os.mkfifo(tmp_path / "fifo.jsonl")
    (tmp_path / "zero.jsonl").symlink_to("/dev/zero")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "sock.jsonl"))
    (tmp_path / "good.jsonl").write_text(json.dumps({"text": "a fine record"}) + "\n")
    files = discover_inputs([_source(tmp_path, "*.jsonl")])
    read = {f.relpath: [(r["error"], r["detail"]) for r in read_records(f, 4096)] for f in files}
    server.close()
    assert read == {
        "fifo.jsonl": [("not_a_regular_file", "a FIFO, not read")],
        "good.jsonl": [(None, None)],
        "sock.jsonl": [("not_a_regular_file", "a socket, not read")],
        "zero.jsonl": [("not_a_regular_file", "a character device, not read")],
    }


def test_a_build_whose_glob_matches_a_fifo_finishes_and_reports_it(tmp_path):
    import pyarrow.dataset as ds

    inputs = tmp_path / "in"
    inputs.mkdir()
    os.mkfifo(inputs / "pipe.jsonl")
    (inputs / "good.jsonl").write_text(json.dumps({"text": "A fine record of plain words."}) + "\n")
    config = tmp_path / "build.yaml"
    config.write_text(yaml.safe_dump({
        "sources": [{"name": "web", "format": "jsonl", "paths": [str(inputs / "*.jsonl")], "category": "Web"}],
        "filters": {"gopher_quality": {"enabled": False}, "c4": {"enabled": False}, "language": {"enabled": False}},
    }))
    out = tmp_path / "out"
    # a reader that opened the FIFO would wait for a writer for ever: the timeout ends such a test
    result = strata("build", str(config), "--out", str(out), "--until", "curate", beam=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    quarantine = ds.dataset(out / "quarantine").to_table().to_pylist()
    assert [(q["uri"], q["reason"]) for q in quarantine] == [(str(inputs / "pipe.jsonl"), "not_a_regular_file")]
    summary = json.loads((out / "curate.json").read_text())
    assert summary["stages"]["validate"]["dropped"] == {"not_a_regular_file": 1}
