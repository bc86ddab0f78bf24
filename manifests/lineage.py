"""Reading the lineage of a build and of a training run, local or object store, as Arrow
tables of the columns asked for and nothing else (manifests/layout.py names the files,
manifests/schemas.py their columns):

    OUT/lineage/part-*.parquet     curate lineage, one row per input record
    OUT/lineage/shards-*.parquet   placements: each piece of a kept document -> shard, block, token range
    RUN/run.json                   the run's settings: data (the build), shares, seq_len, ...
    RUN/consumed/part-r*.parquet   each piece of every window a step trained on: step, rank,
                                   sample_id, block_key, shard, token_start, token_end
    RUN/metrics.jsonl              train and val rows; a resumed run appends, the last row wins
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from strata.manifests.layout import METRICS, RUN_RECORD
from strata.manifests.manifest import ManifestError
from strata.storage import exists, filesystem, is_local, join, open_file


# Columns with few distinct values: read as dictionaries, so that grouping and filtering
# compare small integers instead of strings.
CATEGORICAL = {"source", "uri", "category", "fate", "stage", "reason", "language", "split", "shard", "block_key"}
# Files read at once. Locally one more than the cores, as a thread often waits for the
# GIL; from an object store many, as requests wait and cores do not.
LOCAL_THREADS = (os.cpu_count() or 1) + 1
REMOTE_THREADS = 16

T = TypeVar("T")


def map_files(root: str, pattern: str, columns: list[str], function: Callable[[pa.Table], T]) -> list[T]:
    """function(table) of every Parquet file `root/pattern`, in name order: the file's
    `columns`, one array each, categorical ones dictionary-encoded. Summaries made file by
    file and then merged keep memory small and spare joining thousands of files' chunks
    (and dictionaries) into one table."""
    dictionaries = sorted(CATEGORICAL & set(columns))
    return _each_file(
        root, pattern, dictionaries, lambda f: function(f.read(columns=columns, use_threads=False).combine_chunks())
    )


def codes(column: pa.ChunkedArray) -> tuple[np.ndarray, list]:
    """(index of each row's value, the values) of a one-chunk dictionary column; a null is
    the last value, None."""
    encoded = column.chunk(0) if column.num_chunks else pa.array([], column.type)
    values = encoded.dictionary.to_pylist() + [None]
    indices = encoded.indices.fill_null(len(values) - 1) if encoded.null_count else encoded.indices
    return indices.to_numpy().astype(np.int64), values


def look_up(root: str, pattern: str, column: str, values: list, columns: list[str]) -> pa.Table:
    """The rows of `root/pattern` whose `column` is one of `values` (few), as plain columns.
    Each file's `column` is read first, and its other `columns` only if it has a match."""
    wanted = pa.array(values)

    def matches(f: pq.ParquetFile) -> pa.Table | None:
        mask = pc.is_in(f.read(columns=[column], use_threads=False).column(0), value_set=wanted)
        return f.read(columns=columns, use_threads=False).filter(mask) if pc.any(mask).as_py() else None

    found = [table for table in _each_file(root, pattern, [], matches) if table is not None]
    return pa.concat_tables(found) if found else _schema(root, pattern).empty_table().select(columns)


def _schema(root: str, pattern: str) -> pa.Schema:
    """The Arrow schema of the first file `root/pattern`."""
    fs, files = _files(root, pattern)
    with fs.open(files[0], "rb") as f:
        return pq.read_schema(f)


def _files(root: str, pattern: str) -> tuple[fsspec.AbstractFileSystem, list[str]]:
    fs, path = filesystem(join(root, pattern))
    files = sorted(fs.glob(path))
    if not files:
        raise ManifestError(f"{join(root, pattern)}: no such files (not a strata build or run, or an incomplete one)")
    return fs, files


def _each_file(root: str, pattern: str, dictionaries: list[str], read: Callable[[pq.ParquetFile], T]) -> list[T]:
    """read(file) of every file `root/pattern`, in name order, a few files at a time: files
    of a few thousand rows (curate writes one per batch) cost more to open than to decode,
    so whole files are the unit of work, not Arrow's row batches."""
    fs, files = _files(root, pattern)
    local = is_local(root)
    native = pafs.LocalFileSystem()

    def one(name: str) -> T:
        with native.open_input_file(name) if local else fs.open(name, "rb") as source:
            return read(pq.ParquetFile(source, read_dictionary=dictionaries, pre_buffer=False))

    with ThreadPoolExecutor(LOCAL_THREADS if local else REMOTE_THREADS) as pool:
        return list(pool.map(one, files))


def is_run(path: str) -> bool:
    return exists(join(path, RUN_RECORD))


def read_run(run: str) -> dict:
    """RUN/run.json."""
    uri = join(run, RUN_RECORD)
    try:
        with open_file(uri, "rb") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        raise ManifestError(f"{uri}: no such file (not a training run)") from None
    except json.JSONDecodeError as err:
        raise ManifestError(f"{uri}: damaged: {err}") from None


def read_metrics(run: str) -> list[dict]:
    """RUN/metrics.jsonl, one row per (kind, step, category): a resumed run may have appended
    rows for steps it had already logged, and the last one wins. Empty if there is none; an
    unfinished last line (a run killed while writing it) is left out."""
    uri = join(run, METRICS)
    if not exists(uri):
        return []
    latest: dict[tuple, dict] = {}
    with open_file(uri, "rt") as f:
        for line in filter(str.strip, f):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                if line.endswith("\n"):
                    raise ManifestError(f"{uri}: damaged line {line[:80]!r}") from None
                continue
            latest[row.get("kind"), row.get("step"), row.get("category")] = row
    return sorted(latest.values(), key=lambda r: (str(r.get("kind")), r.get("step", 0), str(r.get("category"))))
