"""Build progress: counters from the workers, shown by the process that runs the build.

Workers add to a `ProgressReport` (documents, bytes, fates, tokens); every half second
it writes its totals to a small JSON file of its own in the stage's report folder, a
local folder the build made. The build's `Progress` adds the files up and shows a status
line on a terminal (counts, docs/s, MB/s, ETA when the input size is known), and one
line per stage when it ends, on a terminal or not. Workers that cannot see the folder
(another machine: Flink, Spark, Dataflow) report nothing, and the stage line still comes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import apache_beam as beam
import fsspec
import zstandard

from strata.pipeline.console import Console
from strata.manifests.schemas import FATE_DROPPED, FATE_QUARANTINED

REPORT_SECONDS = 0.5


class ProgressReport:
    """One worker's counters, written to `folder`/<process>-<thread>.json now and then."""

    def __init__(self, folder: str | None):
        self.counts: dict[str, int] = {}
        self.path = None
        if folder and os.path.isdir(folder):
            self.path = os.path.join(folder, f"{os.getpid()}-{threading.get_ident()}.json")
        self.last = 0.0

    def add(self, **counts: int) -> None:
        for name, value in counts.items():
            self.counts[name] = self.counts.get(name, 0) + value
        if self.path and time.monotonic() - self.last >= REPORT_SECONDS:
            self.flush()

    def flush(self) -> None:
        if not self.path:
            return
        self.last = time.monotonic()
        scratch = self.path + ".tmp"
        try:
            with open(scratch, "w") as f:
                json.dump(self.counts, f)
            os.replace(scratch, self.path)
        except OSError:  # the build is over and has removed the folder
            self.path = None


class CountDocuments(beam.DoFn):
    """Counts the batches of documents going by, after the per-document stages."""

    def __init__(self, folder: str | None):
        self.folder = folder

    def setup(self):
        self.report = ProgressReport(self.folder)

    def process(self, batch):
        docs = batch["docs"]
        fates = [d["fate"] for d in docs]
        self.report.add(
            docs=len(docs),
            bytes=sum(d["raw_bytes"] or 0 for d in docs),
            quarantined=fates.count(FATE_QUARANTINED),
            dropped=fates.count(FATE_DROPPED),
        )
        yield batch

    def finish_bundle(self):
        self.report.flush()


def read_reports(folder: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for name in os.listdir(folder):
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(folder, name)) as f:
                counts = json.load(f)
        except (OSError, ValueError):  # being replaced
            continue
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
    return totals


def uncompressed_size(uri: str, size: int) -> int | None:
    """The bytes a jsonl/text input expands to, when the file says so: its size when plain,
    a zstd frame's declared content size, gzip's ISIZE trailer (files under 4 GiB)."""
    try:
        if uri.endswith((".zst", ".zstd")):
            with fsspec.open(uri, "rb") as f:
                declared = zstandard.frame_content_size(f.read(18))
            return declared if declared >= 0 else None
        if uri.endswith(".gz"):
            with fsspec.open(uri, "rb") as f:
                f.seek(max(0, size - 4))
                return int.from_bytes(f.read(4), "little")
    except (OSError, ValueError, zstandard.ZstdError):
        return None
    return size


def expected_bytes(files) -> int | None:
    """Total uncompressed input bytes of InputFiles, or None when one of them is unknown."""
    total = 0
    for f in files:
        known = uncompressed_size(f.uri, f.size) if f.format in ("pile", "jsonl", "text") else None
        if known is None:
            return None
        total += known
    return total


def _count(n: float) -> str:
    return f"{n:,.0f}"


def _eta(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def live_line(stage: str, counts: dict[str, int], seconds: float, total_bytes: int | None) -> str:
    """The status line of a running stage."""
    done = counts.get("bytes", 0)
    parts = [f"{stage}: {_count(counts.get('docs', 0))} docs, {done / 1e6:,.1f} MB"]
    if "quarantined" in counts:
        parts.append(f"{_count(counts['dropped'])} dropped, {_count(counts['quarantined'])} quarantined")
    if "tokens" in counts:
        parts.append(f"{_count(counts['tokens'])} tokens")
    if seconds > 0:
        parts.append(f"{counts.get('docs', 0) / seconds:,.0f} docs/s, {done / seconds / 1e6:,.1f} MB/s")
    if total_bytes and done and seconds > 0:
        parts.append(f"{min(done / total_bytes, 1):.0%}, ETA {_eta(max(total_bytes - done, 0) * seconds / done)}")
    return " | ".join(parts)


class Progress:
    """What a build shows on `console` while it runs."""

    def __init__(self, console: Console):
        self.console = console

    @contextmanager
    def stage(self, name: str, total_bytes: int | None = None) -> Iterator[str]:
        """Yields the stage's report folder; on a terminal, refreshes the status line."""
        folder = tempfile.mkdtemp(prefix=f"strata-progress-{name}-")
        started, stop = time.monotonic(), threading.Event()

        def refresh() -> None:
            while not stop.wait(REPORT_SECONDS):
                self.console.status(live_line(name, read_reports(folder), time.monotonic() - started, total_bytes))

        thread = threading.Thread(target=refresh, name=f"strata-progress-{name}", daemon=True)
        if self.console.tty:
            thread.start()
        try:
            yield folder
        finally:
            stop.set()
            if thread.is_alive():
                thread.join()
            self.console.clear_status()
            shutil.rmtree(folder, ignore_errors=True)

    def line(self, text: str) -> None:
        self.console.line(text)


# --------------------------------------------------------------------------- one line per stage


def curate_line(summary: dict) -> str:
    stages, fates, seconds = summary["stages"], summary["fates"], summary["seconds"]
    read_bytes = stages["validate"]["bytes_in"] if "validate" in stages else 0
    records = summary["records"]
    return (
        f"curate: {records:,} records ({read_bytes / 1e6:,.1f} MB) read, {fates['kept']:,} kept, "
        f"{fates['dropped']:,} dropped, {fates['duplicate']:,} duplicates, {fates['quarantined']:,} quarantined"
        f" | {records / max(seconds, 1e-9):,.0f} docs/s, {read_bytes / max(seconds, 1e-9) / 1e6:,.1f} MB/s, {seconds:,.1f} s"
    )


def reuse_line(reused: list[str], stages: tuple[str, ...]) -> str:
    """Which of the build's `stages` a previous run's output was kept for, and which ran."""
    ran = [stage for stage in stages if stage not in reused]
    return f"stages reused: {', '.join(reused) or 'none'} | ran: {', '.join(ran) or 'none'}"


def tokenizer_line(record: dict, seconds: float) -> str:
    how = f"trained on {record['sample']['bytes'] / 1e6:,.1f} MB" if record.get("trained") else "given"
    return f"tokenizer: {record['model_type']}, {record['vocab_size']:,} pieces, {how} | {seconds:,.1f} s"


def shards_line(records: list, seconds: float) -> str:
    """The shard stage's summary line from its ShardRecords."""
    tokens = sum(r.tokens for r in records)
    return (
        f"shards: {len(records):,} tars, {sum(r.docs for r in records):,} docs, {tokens:,} tokens, "
        f"{sum(r.bytes for r in records) / 1e6:,.1f} MB | {tokens / max(seconds, 1e-9):,.0f} tokens/s, {seconds:,.1f} s"
    )
