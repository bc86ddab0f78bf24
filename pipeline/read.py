"""Read: find the input files of every source and stream their records.

Files are found when the pipeline is built (so a typo in a path fails before any work
starts) and read inside Beam, one file per element, so the runner spreads files over
workers. Every reader streams: no file is ever loaded whole, and a record larger than
`validate.max_text_bytes` is skipped without being held in memory.

A reader yields raw records (the bytes of one JSON line, a Parquet row, a text file)
and read-level failures (a truncated or corrupt compressed file, an oversized record, a
file that expands past the decompression limit, a path that is not a regular file) as
records with `error` set; the Validate stage turns both into documents or quarantine
entries.

An input file's `uri` (recorded in every output) is its URL with credentials redacted;
`location`, used only to open it, keeps them.
"""

from __future__ import annotations

import ast
import fnmatch
import os
import stat
import sysconfig
from dataclasses import asdict, dataclass, replace
from typing import IO, Iterator, Optional

import apache_beam as beam

from strata.config import ConfigError, SourceConfig
from strata.pipeline.decompress import ExpansionLimit, InputError, decompressed_chunks
from strata.pipeline.schema import make_doc_id
from strata.redact import redact_text, redact_url
from strata.storage import filesystem, is_local, userinfo, with_userinfo

STDLIB_CODE_CATEGORY = "Github"
STDLIB_PROSE_CATEGORY = "Docstrings"


@dataclass(frozen=True)
class InputFile:
    """One input file of one source: what the reader needs and what the manifest records."""

    index: int  # position in the build's sorted file list; names the file's batches
    source: str
    format: str
    uri: str  # credentials redacted: what every output records
    relpath: str  # relative to the source root; part of every doc_id
    size: int
    fingerprint: str  # etag or mtime, for the manifest
    text_field: str
    category: Optional[str]
    category_path: Optional[tuple[str, ...]]
    location: str = ""  # the URL to open, credentials included; never recorded

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- discovery


def stdlib_root() -> str:
    return sysconfig.get_paths()["stdlib"]


def _glob_root(pattern: str) -> str:
    """The folder part of a glob before its first wildcard: relpaths are taken from here."""
    head = pattern
    for i, ch in enumerate(pattern):
        if ch in "*?[":
            head = pattern[:i]
            break
    else:
        return pattern.rsplit("/", 1)[0] if "/" in pattern else ""
    return head.rsplit("/", 1)[0] if "/" in head else ""


def discover_inputs(sources: list[SourceConfig]) -> list[InputFile]:
    """Expand every source's globs into a sorted, de-duplicated list of files."""
    files: list[InputFile] = []
    for i, source in enumerate(sources):
        found: dict[str, InputFile] = {}
        patterns = source.paths or (["*.py"] if source.format == "stdlib" else [])
        for pattern in patterns:
            matches = _expand(source, pattern)
            if not matches:
                raise ConfigError(f"sources[{i}] ({source.name}).paths: {redact_url(pattern)!r} matched no files")
            for f in matches:
                if not any(fnmatch.fnmatchcase(f.relpath, x) for x in source.exclude):
                    found.setdefault(f.uri, f)
        files.extend(sorted(found.values(), key=lambda f: f.relpath))
    return [replace(f, index=i) for i, f in enumerate(files)]


def _expand(source: SourceConfig, pattern: str) -> list[InputFile]:
    if source.format == "stdlib":
        root = stdlib_root()
        pattern = f"{root}/{pattern}"
        protocol_root = root
    else:
        protocol_root = _glob_root(pattern)
    fs, fs_pattern = filesystem(pattern)
    has_glob = any(ch in pattern for ch in "*?[")
    if has_glob:
        paths = fs.glob(fs_pattern, detail=True)
    else:
        paths = {fs_pattern: fs.info(fs_pattern)} if fs.exists(fs_pattern) else {}
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    root = filesystem(protocol_root)[1] if protocol_root else ""
    credentials = userinfo(pattern)
    files = []
    for path, info in paths.items():
        if info.get("type") == "directory":
            continue
        if source.format == "stdlib" and "site-packages" in path:
            continue
        location = path if protocol in ("file", "local") else fs.unstrip_protocol(path)
        if protocol in ("http", "https"):
            location = path
        location = with_userinfo(location, credentials)
        # a signed URL's query is part of its path here: relpaths (and doc_ids) hold it redacted
        shown, shown_root = redact_url(path), redact_url(root)
        rel = shown[len(shown_root):].lstrip("/") if root and shown.startswith(shown_root) else os.path.basename(shown)
        fingerprint = str(info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or "")
        files.append(
            InputFile(
                index=-1,
                source=source.name,
                format=source.format,
                uri=redact_url(location),
                relpath=rel,
                size=int(info.get("size") or 0),
                fingerprint=fingerprint.strip('"'),
                text_field=source.text_field,
                category=source.category,
                category_path=tuple(source.category_path) if source.category_path else None,
                location=location,
            )
        )
    return files


# --------------------------------------------------------------------------- readers


def _raw_record(f: InputFile, index: int, **fields) -> dict:
    record = {
        "doc_id": make_doc_id(f.source, f.relpath, index),
        "source": f.source,
        "uri": f.uri,
        "record_index": index,
        "raw": None,
        "row": None,
        "category": f.category,
        "error": None,
        "detail": None,
        "raw_bytes": 0,
    }
    record.update(fields)
    return record


def _lines(chunks: Iterator[bytes], max_line_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) per non-blank line; (n, None) for a line over the cap, which is
    skipped without being held in memory."""
    pending = bytearray()
    number = 0
    oversized = False
    for chunk in chunks:
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            if nl < 0:
                if not oversized:
                    pending += chunk[start:]
                    if len(pending) > max_line_bytes:
                        oversized, pending = True, bytearray()
                break
            if oversized:
                yield number, None
                oversized = False
            else:
                pending += chunk[start:nl]
                if len(pending) > max_line_bytes:
                    yield number, None
                elif pending.strip():
                    yield number, bytes(pending)
            pending = bytearray()
            number += 1
            start = nl + 1
    if oversized:
        yield number, None
    elif pending.strip():
        yield number, bytes(pending)


def read_jsonl(f: InputFile, raw: IO[bytes], max_record_bytes: int, expansion: ExpansionLimit) -> Iterator[dict]:
    next_index = 0
    try:
        for index, line in _lines(decompressed_chunks(f.uri, raw, expansion), max_record_bytes):
            if line is None:
                yield _raw_record(f, index, error="record_too_large", detail=f"line over {max_record_bytes} bytes")
            else:
                yield _raw_record(f, index, raw=line, raw_bytes=len(line))
            next_index = index + 1
    except InputError as err:
        # The damaged tail is reported as one record; every line before it was kept.
        yield _raw_record(f, next_index, error=err.reason, detail=err.detail)


def read_text(f: InputFile, raw: IO[bytes], max_record_bytes: int, expansion: ExpansionLimit) -> Iterator[dict]:
    """A text file is one document."""
    data = bytearray()
    try:
        for chunk in decompressed_chunks(f.uri, raw, expansion):
            data += chunk
            if len(data) > max_record_bytes:
                yield _raw_record(f, 0, error="record_too_large", detail=f"file over {max_record_bytes} bytes")
                return
    except InputError as err:
        yield _raw_record(f, 0, error=err.reason, detail=err.detail)
        return
    yield _raw_record(f, 0, raw=bytes(data), raw_bytes=len(data))


def read_parquet(f: InputFile, raw: IO[bytes], max_record_bytes: int, expansion: ExpansionLimit) -> Iterator[dict]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(raw)
    except Exception as err:  # pyarrow raises several types for a damaged footer
        yield _raw_record(f, 0, error="corrupt_parquet_file", detail=str(err)[:500])
        return
    names = set(pf.schema_arrow.names)
    columns = [c for c in {f.text_field, (f.category_path or ("",))[0]} if c in names]
    index = 0
    try:
        for batch in pf.iter_batches(batch_size=1024, columns=columns or None):
            for row in batch.to_pylist():
                yield _raw_record(f, index, row=row, raw_bytes=_row_size(row))
                index += 1
    except Exception as err:
        yield _raw_record(f, index, error="corrupt_parquet_file", detail=str(err)[:500])


def _row_size(row: dict) -> int:
    return sum(len(v.encode("utf-8", "surrogatepass")) if isinstance(v, str) else 8 for v in row.values())


def read_stdlib(f: InputFile, raw: IO[bytes], max_record_bytes: int, expansion: ExpansionLimit) -> Iterator[dict]:
    """A standard-library module: record 0 is its source code (category Github), record 1,
    if it parses and has any, its module, class and function docstrings as one prose
    document (category Docstrings)."""
    data = raw.read(max_record_bytes + 1)
    if len(data) > max_record_bytes:
        yield _raw_record(f, 0, category=STDLIB_CODE_CATEGORY, error="record_too_large", detail="file too large")
        return
    yield _raw_record(f, 0, raw=data, raw_bytes=len(data), category=STDLIB_CODE_CATEGORY)
    prose = docstrings_of(data)
    if prose:
        encoded = prose.encode()
        yield _raw_record(f, 1, row={f.text_field: prose}, raw_bytes=len(encoded), category=STDLIB_PROSE_CATEGORY)


def docstrings_of(source: bytes) -> str:
    """Module, class and function docstrings of a Python file, in source order."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ""
    nodes = [tree] + [
        n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    nodes.sort(key=lambda n: getattr(n, "lineno", 0))
    docs = [ast.get_docstring(n) for n in nodes]
    return "\n\n".join(d.strip() for d in docs if d and d.strip())


READERS = {
    "pile": read_jsonl,
    "jsonl": read_jsonl,
    "text": read_text,
    "parquet": read_parquet,
    "stdlib": read_stdlib,
}


def read_records(f: InputFile, max_record_bytes: int, expansion: ExpansionLimit = ExpansionLimit()) -> Iterator[dict]:
    """All raw records of one file, opened through fsspec (local, s3://, gs://, http(s)://).
    A local path that is not a regular file (a FIFO, socket or device) is never opened."""
    location = f.location or f.uri
    try:
        kind = _not_regular(location)
        if kind:
            yield _raw_record(f, 0, error="not_a_regular_file", detail=f"a {kind}, not read")
            return
        fs, path = filesystem(location)
        opened = fs.open(path, "rb")
    except (OSError, ValueError) as err:
        yield _raw_record(f, 0, error="unreadable_file", detail=redact_text(str(err))[:500])
        return
    with opened as raw:
        yield from READERS[f.format](f, raw, max_record_bytes, expansion)


NON_REGULAR = {stat.S_ISFIFO: "FIFO", stat.S_ISSOCK: "socket", stat.S_ISCHR: "character device",
               stat.S_ISBLK: "block device", stat.S_ISDIR: "directory"}


def _not_regular(location: str) -> str | None:
    """What a local path is when it is not a regular file (following symlinks), else None."""
    if not is_local(location):
        return None
    mode = os.stat(location.removeprefix("file://")).st_mode
    return next((kind for test, kind in NON_REGULAR.items() if test(mode)), None)


def read_batches(
    f: InputFile, max_record_bytes: int, batch_docs: int, batch_bytes: int, expansion: ExpansionLimit = ExpansionLimit()
) -> Iterator[dict]:
    """The file's raw records in batches of at most `batch_docs` records or about
    `batch_bytes` bytes. A batch is the unit that flows through the per-document stages and
    is written to OUT/attributes/, so no stage ever holds more than one batch of text."""
    records, size, number = [], 0, 0
    for record in read_records(f, max_record_bytes, expansion):
        records.append(record)
        size += record["raw_bytes"]
        if len(records) >= batch_docs or size >= batch_bytes:
            yield {"batch": batch_key(f.index, number), "docs": records}
            records, size, number = [], 0, number + 1
    if records:
        yield {"batch": batch_key(f.index, number), "docs": records}


def batch_key(file_index: int, number: int) -> str:
    return f"{file_index:05d}-{number:05d}"


class ReadSources(beam.PTransform):
    """Batches of raw records of every input file, one file per work item."""

    def __init__(self, files: list[InputFile], max_record_bytes: int, batch_docs: int, batch_bytes: int,
                 expansion: ExpansionLimit):
        super().__init__()
        self.files = files
        self.limits = (max_record_bytes, batch_docs, batch_bytes, expansion)

    def expand(self, pbegin):
        limits = self.limits
        return (
            pbegin
            | "ListFiles" >> beam.Create([f.to_dict() for f in self.files])
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadFile" >> beam.FlatMap(lambda d: read_batches(_input_file(d), *limits))
        )


def _input_file(d: dict) -> InputFile:
    d = dict(d)
    if d["category_path"] is not None:
        d["category_path"] = tuple(d["category_path"])
    return InputFile(**d)
