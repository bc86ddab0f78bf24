"""The build's console: a status line on a terminal, and Beam's noise kept off stderr.

Beam prints a few lines on every run that say nothing about the user's build: import-time
notices ("apitools not found"), and from each worker process of the DirectRunner "Logging
handler created.", "No semi_persistent_directory found" and "Discarding unparseable args".
The worker processes write to the file descriptor they inherit, so the filter sits there:
while a build runs, file descriptor 2 is a pipe, and a thread copies each line to the real
stderr unless it matches one of NOISE. Every other line (warnings, errors, tracebacks)
goes through unchanged.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

NOISE = re.compile(
    r"apitools not found|No semi_persistent_directory found|Discarding unparseable args"
    r"|Logging handler created\."
)


def is_noise(line: str) -> bool:
    return NOISE.search(line) is not None


class Console:
    """Writes lines to the real stderr; on a terminal, keeps one status line under them."""

    def __init__(self, fd: int):
        self.fd = fd
        self.tty = os.isatty(fd)
        self.status_text = ""
        self.lock = threading.Lock()

    def _write(self, text: str) -> None:
        os.write(self.fd, text.encode("utf-8", "replace"))

    def line(self, text: str) -> None:
        with self.lock:
            if self.tty and self.status_text:
                self._write("\r\x1b[2K" + text.rstrip("\n") + "\n" + self.status_text)
            else:
                self._write(text.rstrip("\n") + "\n")

    def status(self, text: str) -> None:
        """Replace the status line (terminal only; elsewhere a no-op)."""
        if not self.tty:
            return
        with self.lock:
            self.status_text = text
            self._write("\r\x1b[2K" + text)

    def clear_status(self) -> None:
        if self.tty and self.status_text:
            with self.lock:
                self.status_text = ""
                self._write("\r\x1b[2K")


@contextmanager
def filtered_stderr(enabled: bool = True) -> Iterator[Console]:
    """For the duration: file descriptor 2 (this process's and its children's) goes through
    the noise filter; yields the Console that writes to the real stderr. Not `enabled`:
    stderr is left alone, and the Console writes to it."""
    if not enabled:
        yield Console(2)
        return
    sys.stderr.flush()
    real = os.dup(2)
    console = Console(real)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def copy() -> None:
        with os.fdopen(read_end, "r", encoding="utf-8", errors="replace") as pipe:
            for line in pipe:
                if not is_noise(line):
                    console.line(line)
        os.close(real)  # here: a worker process that outlives the build may still hold the pipe

    thread = threading.Thread(target=copy, name="strata-stderr", daemon=True)
    thread.start()
    try:
        yield console
    finally:
        sys.stderr.flush()
        console.clear_status()
        os.dup2(real, 2)  # closes our end of the pipe: the thread ends once children's ends close
        thread.join(timeout=2)
