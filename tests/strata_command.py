"""Running the real `strata` command in a subprocess, and what a clear error looks like."""

from __future__ import annotations

import subprocess
import sys

from conftest import IN_MEMORY


def strata(*args: str, beam: bool = False, timeout: float = 600) -> subprocess.CompletedProcess:
    """`strata ARGS` in a fresh process (Beam in one in-memory worker if `beam`)."""
    command = [sys.executable, "-m", "strata.cli", *args, *(["--", *IN_MEMORY] if beam else [])]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def assert_clear_error(result: subprocess.CompletedProcess, code: int, *phrases: str, only_lines: bool = True) -> str:
    """Exit `code`, no traceback, a message of one to three `strata:` lines holding every
    phrase (and, if `only_lines`, nothing else on stderr). Returns the message."""
    err = result.stderr
    assert result.returncode == code, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    lines = err.strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("strata: "))
    message = lines[start:]
    assert 1 <= len(message) <= 3, err[-3000:]
    if only_lines:
        assert start == 0, err[-3000:]
    text = "\n".join(message)
    for phrase in phrases:
        assert phrase in text, text
    return text
