"""Paths that may be local folders or object-store prefixes (s3://, gs://, ...), via fsspec.

Writes are atomic where the store allows it: a local file is written under a temporary
name and renamed; an object-store PUT is already all-or-nothing, so it is written in place.
A temporary file is hidden beside its target (`.NAME.tmp-XXXXXXXX`): no reader's glob
matches it (pyarrow datasets skip names starting with "." or "_"), and
`remove_leftovers` deletes those a killed job left.

Credentials come from the environment (or the store's usual config files); an `s3://`
URL may also carry them as userinfo (`s3://KEY:SECRET@bucket/...`), which `filesystem`
hands to the client as options, so no request or error ever sees them in a bucket name.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from typing import Callable, IO, Iterator
from urllib.parse import unquote

import fsspec

from strata.manifests.layout import is_temporary, temporary_name

_S3_USERINFO = re.compile(r"^(?P<scheme>s3a?://)(?P<key>[^:@/]*):(?P<secret>[^@/]*)@(?P<rest>.*)$", re.S)


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
    """The fsspec filesystem of `uri` and the path inside it."""
    s3 = _S3_USERINFO.match(uri)
    if s3:
        options = {"key": unquote(s3["key"]), "secret": unquote(s3["secret"])}
        return fsspec.core.url_to_fs(s3["scheme"] + s3["rest"], **options)
    return fsspec.core.url_to_fs(uri)


def open_file(uri: str, mode: str = "rb"):
    """A file of a path or URL (credentials in an s3:// URL handled as in `filesystem`)."""
    fs, path = filesystem(uri)
    return fs.open(path, mode)


def userinfo(uri: str) -> str:
    """The `user:password@` part of a URL ("" if none), to carry over to URLs found under it."""
    scheme, sep, rest = uri.partition("://")
    authority = rest.split("/", 1)[0]
    return authority.rsplit("@", 1)[0] + "@" if sep and "@" in authority else ""


def with_userinfo(uri: str, info: str) -> str:
    """`uri` with `info` (from `userinfo`) put back, if it has none of its own."""
    scheme, sep, rest = uri.partition("://")
    if not sep or not info or "@" in rest.split("/", 1)[0]:
        return uri
    return f"{scheme}://{info}{rest}"


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


@contextlib.contextmanager
def atomic_output(uri: str, durable: bool = True) -> Iterator[IO[bytes]]:
    """A binary file to write that appears at `uri` only once the block exits without error
    (locally: a hidden temporary renamed into place, fsync'd first if `durable`; an object
    store's put is atomic). A file that is only a cache, checked when read, need not be
    durable: after a power loss it is at worst unreadable, never half-written and trusted."""
    fs, path = filesystem(uri)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        fs.makedirs(parent, exist_ok=True)
    if not is_local(uri):
        with fs.open(path, "wb") as f:
            yield f
        return
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, temporary_name(name, uuid.uuid4().hex[:8]))
    try:
        with open(tmp, "wb") as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_atomic(uri: str, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write(f)` on a binary file that appears at `uri` only once complete."""
    with atomic_output(uri) as f:
        write(f)


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
    return [with_userinfo(fs.unstrip_protocol(p), userinfo(uri_pattern)) for p in found]


def remove_leftovers(root: str, owned: Callable[[str], bool] = lambda name: True) -> list[str]:
    """Delete the temporary files and folders a killed job left under a local `root`
    (`is_temporary` names: write_atomic's files, checkpoint folders) for which
    `owned(name)` holds; returns their paths. Object stores have none: an interrupted PUT
    leaves nothing."""
    if not is_local(root):
        return []
    removed = []
    for folder, dirs, files in os.walk(root.removeprefix("file://")):
        for name in [*files, *dirs]:
            if is_temporary(name) and owned(name):
                path = os.path.join(folder, name)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)
                removed.append(path)
        dirs[:] = [d for d in dirs if not is_temporary(d)]
    return removed
