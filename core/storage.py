"""Paths that may be local folders or object-store prefixes (s3://, gs://, ...), via fsspec.

Writes are atomic where the store allows it: a local file is written under a temporary
name and renamed; an object-store PUT is already all-or-nothing, so it is written in place.
Credentials come from the environment (or the store's usual config files), never from
strata's config or manifest.
"""

from __future__ import annotations

import os
import re
import uuid
from typing import Callable, IO

import fsspec


# Where a build can be read from: a local folder, or these fsspec protocols.
READ_SCHEMES = ("file", "s3", "gs", "gcs", "http", "https")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def scheme_of(uri: str) -> str | None:
    """The URL scheme of `uri` (`s3`, `pipe`, ...), or None for a plain local path."""
    found = _SCHEME.match(uri)
    return found[1].lower() if found else None


def unreadable_scheme(uri: str) -> str | None:
    """Why strata will not read a build at `uri` (an unsupported scheme, e.g. `pipe:`);
    None for a local path or a supported object store."""
    scheme = scheme_of(uri)
    if scheme is None or (scheme in READ_SCHEMES and uri[len(scheme) + 1 :].startswith("//")):
        return None
    return (
        f"unsupported scheme '{uri.split(':', 1)[0]}:' (give a folder, ./NAME for a local name with a colon, "
        f"or a {', '.join(s + '://' for s in READ_SCHEMES)} URL)"
    )


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def write_atomic(uri: str, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write(f)` on a binary file that appears at `uri` only once complete."""
    fs, path = filesystem(uri)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        fs.makedirs(parent, exist_ok=True)
    if not is_local(uri):
        with fs.open(path, "wb") as f:
            write(f)
        return
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_bytes_atomic(uri: str, data: bytes) -> None:
    write_atomic(uri, lambda f: f.write(data))


def remove(uri: str) -> None:
    """Remove a file or a folder tree if it exists."""
    fs, path = filesystem(uri)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return fs.exists(path)


def glob(uri_pattern: str) -> list[str]:
    """Matching paths, as URIs of the same kind as the pattern, sorted."""
    fs, pattern = filesystem(uri_pattern)
    found = sorted(fs.glob(pattern))
    if is_local(uri_pattern):
        return found
    return [fs.unstrip_protocol(p) for p in found]
