"""The machine's record of shards whose sha256 matched the manifest, so that a shard is
hashed once per machine rather than once per run (as Mosaic Streaming trusts a shard once
its hash matched in the local cache, and HF datasets checks checksums once on download).

An entry says: the file with this identity had this sha256. The identity is read from the
open file the hash then reads, so it describes the bytes hashed:

    local file     realpath, st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns. Any write
                   by a non-root user moves ctime (utime cannot set it back) and a
                   replacement by rename is another inode, so a changed shard is hashed
                   again. A file changed in the current tick of the kernel's coarse clock
                   could change again with the same ctime ("racy", as git calls it): it is
                   hashed but not recorded.
    object store   the URL without credentials, its size, and the store's version of the
                   object (S3 VersionId and ETag, GCS generation, an HTTP ETag). s3fs pins
                   its reads to that ETag (If-Match). A store that gives no version: not
                   recorded, hashed every run.

One JSON file per shard location (named by the sha256 of the location), replaced
atomically: the record grows with the shards seen, not with runs or rewrites. An entry is
trusted only if it is a regular file owned by this user whose JSON equals, field by field,
the entry this shard and the manifest's sha256 would get; anything else (damaged, hostile,
another sha256) is ignored and the shard hashed. Damage that changes no stat field (a
flipped bit on the medium) is still caught by each block's xxh3 on every read
(manifests/checksums.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import sys
import time
from pathlib import Path

from strata.redact import redact_url
from strata.storage import write_bytes_atomic

log = logging.getLogger("strata.integrity")

CACHE_ENV = "STRATA_CACHE_DIR"  # strata's per-machine cache; default $XDG_CACHE_HOME/strata
MAX_ENTRY = 4096  # bytes; a larger file is not an entry this module wrote
LINUX_CLOCK_REALTIME_COARSE = 5  # <linux/time.h>
VERSION_FIELDS = ("VersionId", "ETag", "generation", "etag")  # as s3fs, gcsfs and fsspec's http give them


def cache_dir() -> Path:
    given = os.environ.get(CACHE_ENV)
    if given:
        return Path(given)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "strata"


class VerifiedRecord:
    """The record in `folder` (default: `cache_dir()/verified`). Entries come from
    `entry()`; `holds` and `add` never raise: the record only saves work."""

    def __init__(self, folder: str | os.PathLike | None = None):
        self.folder = Path(folder) if folder is not None else cache_dir() / "verified"
        self._warned = False

    @staticmethod
    def entry(f, fs, path: str, local: bool, sha256: str) -> dict | None:
        """The entry of the shard open as `f` (`path` of the filesystem `fs`) with the
        manifest's `sha256`; None if its identity cannot be pinned."""
        identity = _local_identity(f) if local else _store_identity(f)
        if identity is None:
            return None
        location = "file:" + os.path.realpath(path) if local else redact_url(fs.unstrip_protocol(path))
        return {"shard": location, "identity": identity, "sha256": sha256}

    def holds(self, entry: dict) -> bool:
        try:
            fd = os.open(self._file(entry), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            return False
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_ENTRY or st.st_uid != os.geteuid():
                return False
            return json.loads(os.read(fd, MAX_ENTRY + 1)) == entry
        except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            return False
        finally:
            os.close(fd)

    def add(self, entry: dict) -> None:
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_bytes_atomic(str(self._file(entry)), json.dumps(entry, sort_keys=True).encode())
        except OSError as err:
            if not self._warned:
                log.warning("cannot write the record of verified shards in %s (%r): shards will be hashed "
                            "again next run", self.folder, err)
                self._warned = True

    def _file(self, entry: dict) -> Path:
        return self.folder / (hashlib.sha256(entry["shard"].encode()).hexdigest()[:32] + ".json")


def _local_identity(f) -> dict | None:
    st = os.fstat(f.fileno())
    if st.st_ctime_ns >= _coarse_now_ns():
        return None  # racy: see the module doc
    return {"dev": st.st_dev, "ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "ctime_ns": st.st_ctime_ns}


def _store_identity(f) -> dict | None:
    details = getattr(f, "details", None) or {}
    version = {name: str(details[name]) for name in VERSION_FIELDS if details.get(name)}
    if not version or "size" not in details:
        return None
    return {"size": int(details["size"]), **version}


def _coarse_now_ns() -> int:
    """Now, by the clock the kernel stamps files with (Linux: CLOCK_REALTIME_COARSE, which
    the time module does not name); elsewhere a second ago, so that a file changed in the
    last second counts as racy."""
    if sys.platform == "linux":
        return time.clock_gettime_ns(LINUX_CLOCK_REALTIME_COARSE)
    return time.time_ns() - 10**9
