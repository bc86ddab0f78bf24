"""One writer at a time: `strata build` holds OUT/build.lock and `strata train` RUN/train.lock
while they run.

The lock file holds its owner: {pid, host, started, token}. It is created atomically: with
O_CREAT | O_EXCL in a local folder; on S3 with a conditional put (If-None-Match: *); on
other object stores by the single-writer rule: put if absent, read it back a second later,
and the job whose token is there holds it. A second job finds the file and stops with
`OUT ... is locked by pid N on HOST since T`.

Stale locks: a lock whose owner ran on this host (same host name) and whose pid is no longer
a live process (a job killed by SIGKILL, or the machine rebooted) is taken over, with a
warning. A lock from another host is never taken over: remove the file by hand once that
job is known to be gone. The lock is removed when the job ends: success, error or Ctrl-C.

No reader looks at the lock files: audit, verify, trace and train read the manifest, the
shards and the lineage folders, and a lock file is none of them.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import socket
import time
import uuid

from strata.errors import StrataError
from strata.manifests.layout import temporary_name
from strata.storage import filesystem, is_local, join

log = logging.getLogger("strata.lock")

READ_TRIES = 20  # a lock read while its owner is still writing it: retried every 50 ms
SETTLE_S = 1.0  # single-writer rule: how long a put must stay ours before we hold the lock


class LockedError(StrataError):
    """The folder is locked by another job; the message names it."""


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


class FolderLock:
    """The lock file `name` in `folder` (a local folder or an object-store prefix); `what`
    names the folder in messages (OUT, RUN). A context manager: held inside the block."""

    def __init__(self, folder: str, name: str, what: str):
        self.folder, self.what = folder.rstrip("/"), what
        self.uri = join(self.folder, name)
        self.fs, self.path = filesystem(self.uri)
        self.local = is_local(self.uri)
        self.owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "token": uuid.uuid4().hex,
        }

    def __enter__(self) -> "FolderLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        data = (json.dumps(self.owner) + "\n").encode()
        for _ in range(5):
            if self._create(data):
                return
            holder = self._holder()
            if holder is None:
                continue  # released meanwhile
            if not self._stale(holder):
                raise LockedError(
                    f"{self.what} {self.folder} is locked by pid {holder.get('pid')} on {holder.get('host')} "
                    f"since {holder.get('started')} ({self.uri}; delete it if that job is gone)"
                )
            self._take_over(holder)
        raise LockedError(f"{self.what} {self.folder}: other jobs keep taking {self.uri}; try again")

    def release(self) -> None:
        """Remove the lock file if it is still ours."""
        holder = self._holder(tries=1)
        if holder is not None and holder.get("token") == self.owner["token"]:
            self.fs.rm(self.path)

    def _create(self, data: bytes) -> bool:
        """Create the lock file holding `data` unless it exists; whether we did."""
        if self.local:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            return True
        try:
            self.fs.pipe_file(self.path, data, mode="create")  # a conditional put on S3
            return "s3" in self.fs.protocol or self._still_ours()
        except FileExistsError:
            return False
        except OSError as err:
            if "PreconditionFailed" in repr(err) or "412" in repr(err):
                return False
            raise
        except (TypeError, NotImplementedError, ValueError):
            return self._create_single_writer(data)

    def _create_single_writer(self, data: bytes) -> bool:
        """Stores without conditional puts: put if absent, then check that it stays ours."""
        if self.fs.exists(self.path):
            return False
        self.fs.pipe_file(self.path, data)
        return self._still_ours()

    def _still_ours(self) -> bool:
        """The single-writer check: after SETTLE_S, is our token still the one stored?"""
        time.sleep(SETTLE_S)
        holder = self._holder(tries=1)
        return holder is not None and holder.get("token") == self.owner["token"]

    def _holder(self, tries: int = READ_TRIES) -> dict | None:
        """The lock file's owner; None if there is none. A file still being written is
        read again; one that never parses is held by an unknown job."""
        for attempt in range(tries):
            try:
                return json.loads(self.fs.cat_file(self.path))
            except FileNotFoundError:
                return None
            except ValueError:
                if attempt + 1 < tries:
                    time.sleep(0.05)
        return {"pid": "?", "host": "?", "started": "? (its lock file does not parse)"}

    def _stale(self, holder: dict) -> bool:
        pid = holder.get("pid")
        return holder.get("host") == self.owner["host"] and isinstance(pid, int) and not pid_alive(pid)

    def _take_over(self, holder: dict) -> None:
        """Remove a stale lock, unless another job has just taken it over itself."""
        if self.local:
            folder, name = os.path.split(self.path)
            aside = os.path.join(folder, temporary_name(name, uuid.uuid4().hex[:8]))  # a leftover if killed here
            try:
                os.rename(self.path, aside)  # atomic: of two jobs taking over, one moves it
            except FileNotFoundError:
                return
            with open(aside, "rb") as f:
                moved = f.read()
            if _token(moved) != holder.get("token"):  # the other job's fresh lock: put it back
                try:
                    os.link(aside, self.path)
                except FileExistsError:
                    pass
            os.remove(aside)
        else:
            self.fs.rm(self.path)
        log.warning("%s: took over the lock of pid %s on %s (started %s): that process is gone",
                    self.uri, holder.get("pid"), holder.get("host"), holder.get("started"))


def _token(data: bytes) -> str | None:
    try:
        return json.loads(data).get("token")
    except (ValueError, AttributeError):
        return None
