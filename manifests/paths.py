"""Paths read from a build's records (manifest, block index, curate record) are data, and
data is untrusted: each must name a file inside the build it belongs to.

`resolve_inside(root, relative, what)` is the one place a recorded path is joined to its
root, for local folders and object stores (s3://, gs://, http(s)://) alike. It accepts only
what strata writes: a relative POSIX path of plain names, already normalized. Refused, with
an error naming the entry: an absolute path, a URL or any `scheme:` prefix (another bucket
or host, file://, pipe:), `..` or `.` or empty components, backslashes, control characters,
and percent-escapes (`%2e%2e` is `..` to an HTTP server or an object store's URL decoder).
"""

from __future__ import annotations

import re

from strata.manifests.manifest import ManifestError, ShardRecord
from strata.storage import join

# A name strata writes: no separators, no percent-escapes, no control characters.
_NAME = re.compile(r"[^/\\%\x00-\x1f\x7f]+")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class PathOutsideBuild(ManifestError):
    """A path recorded in a build that does not name a file inside that build."""


def unsafe_reason(relative: object) -> str | None:
    """Why `relative` is not a safe path inside a build; None if it is one."""
    if not isinstance(relative, str) or not relative:
        return "not a non-empty string"
    if _SCHEME.match(relative):
        return "a URL or scheme, not a path relative to the build"
    if relative.startswith(("/", "\\")):
        return "an absolute path"
    for name in relative.split("/"):
        if name in ("", ".", ".."):
            return "not a normalized relative path (empty, '.' or '..' components)"
        if not _NAME.fullmatch(name):
            return "a name with a backslash, a percent-escape or a control character"
    return None


def resolve_inside(root: str, relative: object, what: str) -> str:
    """`root`/`relative` if `relative` is a safe path inside the build at `root`; else
    PathOutsideBuild naming `what` (the entry it came from) and the path."""
    reason = unsafe_reason(relative)
    if reason is not None:
        raise PathOutsideBuild(f"{what}: {relative!r} is {reason}; refused (paths in a build stay inside {root})")
    return join(root, relative)


def shard_files(root: str, shard: ShardRecord) -> tuple[str, str]:
    """(the tar's URI, its block index's URI) of a manifest shard entry, both confined to `root`."""
    entry = f"manifest entry {shard.category}/{shard.split} shard {shard.shard}"
    return resolve_inside(root, shard.path, f"{entry}, path"), resolve_inside(root, shard.index, f"{entry}, index")
