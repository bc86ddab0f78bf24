"""Run a benchmark under strata's venv when strata is not importable from the Python that
started it (`python tests/bench/bench_x.py` with the system Python). Imports nothing heavy."""

from __future__ import annotations

import os
import sys
from pathlib import Path

STRATA_VENV = Path(os.environ.get("STRATA_VENV", Path(__file__).resolve().parents[2] / ".venv"))


def run_in_strata_venv(script: str) -> None:
    """Re-executes `script` (with this process's arguments) under strata's venv if needed."""
    try:
        import strata  # noqa: F401
    except ImportError:
        python = STRATA_VENV / "bin" / "python"
        if not python.exists() or Path(sys.prefix).resolve() == STRATA_VENV.resolve():
            raise SystemExit("bench: strata is not installed (run `make setup`, or use strata's venv)")
        os.execv(str(python), [str(python), str(Path(script).resolve()), *sys.argv[1:]])
