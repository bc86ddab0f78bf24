"""Peak memory of `strata build` on one 50 MB document, against the same build on a
small document (the runtime's own baseline).

    python tests/bench/bench_big_doc.py [--mb 50]

The document is real text (the Python standard library's sources, concatenated until
it is big enough) in a code category, so that it goes through every stage that reads
all of it: language ID, content hash, MinHash, the spool and the curated writer. A
prose copy goes through the Gopher filters, which must reject it cheaply (too many
words). Prints the peak RSS of the largest single process and of the whole tree.
"""

from __future__ import annotations

import argparse
import json
import sys
import sysconfig
from pathlib import Path

from procmon import run_monitored

REPO = Path(__file__).resolve().parents[2]
STRATA = REPO / ".venv" / "bin" / "strata"
MODES = {
    "default": [],
    "1proc": ["--", "--direct_running_mode=in_memory", "--direct_num_workers=1"],
}


def real_text(size: int) -> str:
    """`size` characters of standard-library source, cycled if the library is smaller."""
    parts, total = [], 0
    paths = [p for p in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")) if "site-packages" not in p.parts]
    while total < size:
        for path in paths:
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            parts.append(text)
            total += len(text)
            if total >= size:
                break
    return "".join(parts)[:size]


def write_inputs(folder: Path, mb: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    big = real_text(int(mb * 2**20))
    small = big[: 2**16]
    for name, text in (("big", big), ("small", small)):
        with open(folder / f"{name}.jsonl", "w") as f:
            for category in ("Github", "Prose"):
                f.write(json.dumps({"text": text, "meta": {"pile_set_name": category}}) + "\n")
        (folder / f"{name}.yaml").write_text(
            json.dumps(
                {
                    "sources": [{"name": name, "format": "pile", "paths": [f"{name}.jsonl"], "category_field": "pile"}],
                    "filters": {
                        "per_category": {
                            "Github": {
                                "gopher_quality": {"enabled": False},
                                "gopher_repetition": {"enabled": False},
                                "c4": {"enabled": False},
                                "language": {"enabled": False},
                            }
                        }
                    },
                }
            )
        )
    return folder


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=50)
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench" / "big-doc")
    args = ap.parse_args(argv)
    inputs = write_inputs(args.out / "inputs", args.mb)
    failed = 0
    for mode, extra in MODES.items():
        peaks = {}
        for name in ("small", "big"):
            out = args.out / f"{mode}-{name}"
            cmd = [str(STRATA), "build", str(inputs / f"{name}.yaml"), "--out", str(out), "--until", "curate", *extra]
            with open(args.out / f"{mode}-{name}.log", "w") as log:
                result = run_monitored(cmd, stdout=log, stderr=log)
            failed |= result.returncode != 0
            summary = json.loads((out / "curate.json").read_text()) if result.returncode == 0 else {}
            peaks[name] = result
            print(
                f"big-doc {mode:<8} {name:<6} exit={result.returncode} wall={result.wall_s:.1f}s "
                f"peak_rss_single={result.peak_single_mb:.0f} MB ({result.peak_single_name.split()[-1]}) "
                f"peak_rss_total={result.peak_total_mb:.0f} MB fates={summary.get('fates')}"
            )
        growth = peaks["big"].peak_single_mb - peaks["small"].peak_single_mb
        print(f"big-doc {mode:<8} a {args.mb:g} MB document adds {growth:.0f} MB to the largest process")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
