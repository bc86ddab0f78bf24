"""A private temporary folder for the length of a build.

Beam's runners put folders in the temporary directory (beam-temp-*, beam-requirements-cache,
tmp*: staging, artifacts, worker state) and do not always remove them, least of all when a
run fails or is interrupted. Pointing TMPDIR (this process, and the worker processes it
starts, which inherit the environment) at one fresh folder, removed on the way out whatever
happened, leaves the temporary directory as it was found.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def private_tempdir(prefix: str = "strata-build-") -> Iterator[str]:
    path = tempfile.mkdtemp(prefix=prefix)
    saved_env, saved_module = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"], tempfile.tempdir = path, path
    try:
        yield path
    finally:
        tempfile.tempdir = saved_module
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(path, ignore_errors=True)
