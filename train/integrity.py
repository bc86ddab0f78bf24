"""The shards a training stream reads, checked against the manifest: size once per run,
sha256 once per machine.

When the stream first touches a shard, its size is checked at once (a stat, or a HEAD request
to an object store: bytes appended or cut off are refused before any batch of it is trained
on), and its sha256 is queued for a background thread that reads the shard once from start
to end, overlapped with training, unless the machine's record of verified shards
(train/verified_record.py) holds this very file with the manifest's sha256: a shard is
hashed the first time this machine reads it, and again only once it changed (or with
`verify_every_run`, which uses no record). The hash runs in the process that runs the training loop
(DataLoader workers only read blocks, and check each one's xxh3), on a thread at the lowest
CPU priority: the loader keeps the cores it would have had without the check, and the hash
takes the cycles it leaves idle. A mismatch is raised at the next touch, or by wait() at the
end of the run, as a ShardError naming the shard. Each block is also checked against its
index checksum as it is read (BlockReader); see manifests/checksums.py for who catches what.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from typing import Iterable

from strata.manifests.checksums import stream_sha256
from strata.manifests.manifest import ShardError
from strata.storage import filesystem, is_local, join
from strata.train.verified_record import VerifiedRecord

log = logging.getLogger("strata.integrity")

ATTEMPTS = 3  # whole-shard reads of an object store, retried on transient errors


class ShardVerifier:
    """Checks shards i of a block table as the stream touches them (see the module doc).
    `paths` are relative to `build` and already confined to it; `sizes` and `sha256s` are
    the manifest's. Threads start on the first touch, in the process that touches. With a
    `record`, a shard it holds is not hashed, and one whose hash matches is added to it.
    `hashed` lists the shards hashed so far."""

    def __init__(self, build: str, uris: list[str], paths: list[str], sizes: list[int], sha256s: list[str],
                 record: VerifiedRecord | None = None):
        self.fs, root = filesystem(build)
        self.paths = [join(root, path) for path in paths]
        self.uris, self.sizes, self.sha256s = uris, sizes, sha256s
        self.local = is_local(build)
        self.threads = 1 if self.local else 4  # a local disk reads best in one stream
        self.record = record
        self.hashed: list[int] = []
        self._touched: set[int] = set()
        self._queue: queue.Queue[int] = queue.Queue()
        self._failures: list[ShardError] = []
        self._workers: list[threading.Thread] = []

    def touch(self, shards: Iterable[int]) -> None:
        """Check the size of each shard not touched before and queue its sha256; raise the
        first failure found so far."""
        self.check()
        for i in shards:
            if i in self._touched:
                continue
            self._touched.add(i)
            self._check_size(i)
            self._start()
            self._queue.put(i)

    def check(self) -> None:
        """Raise the first sha256 mismatch found so far (does not wait)."""
        if self._failures:
            raise self._failures[0]

    def wait(self) -> None:
        """Wait for every queued sha256, then raise the first mismatch."""
        self._queue.join()
        self.check()

    def _check_size(self, i: int) -> None:
        try:
            size = self.fs.size(self.paths[i])
        except FileNotFoundError:
            raise ShardError(f"{self.uris[i]}: shard is missing") from None
        if size != self.sizes[i]:
            raise ShardError(
                f"{self.uris[i]}: {size:,} bytes where the manifest has {self.sizes[i]:,} "
                f"({'truncated' if size < self.sizes[i] else 'bytes appended'}); refused"
            )

    def _start(self) -> None:
        while len(self._workers) < self.threads:
            worker = threading.Thread(target=self._work, name="strata-sha256", daemon=True)
            worker.start()
            self._workers.append(worker)

    def _work(self) -> None:
        lower_own_priority()
        while True:
            i = self._queue.get()
            try:
                self._verify(i)
            except ShardError as err:
                self._failures.append(err)
            except Exception as err:  # noqa: BLE001 - whatever stops the check stops the run, named
                self._failures.append(ShardError(f"{self.uris[i]}: cannot read it to check its sha256: {err!r}"))
            finally:
                self._queue.task_done()

    def _verify(self, i: int) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self.fs.open(self.paths[i], "rb") as f:
                    entry = self._record_entry(i, f)
                    if entry and self.record.holds(entry):
                        log.debug("%s: sha256 matched on this machine before, file unchanged", self.uris[i])
                        return
                    size, sha256 = stream_sha256(f)
                break
            except (FileNotFoundError, PermissionError):
                raise
            except (OSError, TimeoutError) as err:
                if attempt == ATTEMPTS:
                    raise
                log.warning("%s: reading it for its sha256 failed (%r); retrying", self.uris[i], err)
                time.sleep(0.5 * attempt)
        self.hashed.append(i)
        if (size, sha256) != (self.sizes[i], self.sha256s[i]):
            raise ShardError(
                f"{self.uris[i]}: sha256 {sha256[:16]}... ({size:,} bytes) is not the manifest's "
                f"{self.sha256s[i][:16]}... ({self.sizes[i]:,} bytes): the shard is damaged or was replaced; refused"
            )
        log.debug("%s: sha256 checked", self.uris[i])
        if entry:
            self.record.add(entry)

    def _record_entry(self, i: int, f) -> dict | None:
        """The record's entry of shard i, open as `f` (None without a record)."""
        if self.record is None:
            return None
        return self.record.entry(f, self.fs, self.paths[i], self.local, self.sha256s[i])


def lower_own_priority() -> None:
    """Give the calling thread the lowest CPU priority (nice 19). Linux gives each thread a
    nice value of its own, set through its thread id; elsewhere the id is not a pid, so
    nothing is changed there."""
    if sys.platform != "linux":
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except OSError as err:  # e.g. a sandbox that forbids it: the check runs all the same
        log.debug("could not lower the sha256 thread's priority: %r", err)
