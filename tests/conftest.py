import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def write_jsonl():
    def write(path: Path, records, raw_lines=()):
        lines = [json.dumps(r) for r in records] + list(raw_lines)
        path.write_text("\n".join(lines) + "\n")
        return path

    return write
