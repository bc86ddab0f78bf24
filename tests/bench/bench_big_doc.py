"""Peak memory of `strata build` on one 50 MB document, against the same build on a
small document (the runtime's own baseline), through curate and through shards.

    python tests/bench/bench_big_doc.py [--mb 50]

Each build runs as two commands, measured apart: `--until curate`, then the rest (the
tokenizer is the one trained on the small build, given by path, so that the figure is the
shard stage's: encoding, packing, tar writing). Target: every peak under 500 MB.

The document is real text (the Python standard library's sources, concatenated until
it is big enough) in a code category, so that it goes through every stage that reads
all of it: language ID, content hash, MinHash, the spool and the curated writer. A
prose copy goes through the Gopher filters, which must reject it cheaply (too many
words). Prints the peak RSS of the largest single process and of the whole tree.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import sysconfig
from pathlib import Path

from procmon import run_monitored

REPO = Path(__file__).resolve().parents[2]
STRATA = REPO / ".venv" / "bin" / "strata"
MODES = {"default": []}


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


def write_inputs(folder: Path, mb: float, tokenizer: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    big = real_text(int(mb * 2**20))
    small = big[: 2**16]
    for name, text in (("big", big), ("kept", big), ("small", small)):
        with open(folder / f"{name}.jsonl", "w") as f:
            for category in ("Github", "Prose"):
                f.write(json.dumps({"text": text, "meta": {"pile_set_name": category}}) + "\n")
            # a small code document too: a build whose every record is quarantined stops after curate
            f.write(json.dumps({"text": small, "meta": {"pile_set_name": "Github"}}) + "\n")
        (folder / f"{name}.yaml").write_text(
            json.dumps(
                {
                    "sources": [{"name": name, "format": "pile", "paths": [f"{name}.jsonl"], "category_field": "pile"}],
                    "tokenizer": {"vocab_size": 4000} if name == "small" else {"model": str(tokenizer)},
                    # "kept": the size rule raised, so the document goes through every stage
                    **({"validate": {"max_text_bytes": 2 * len(text)}} if name == "kept" else {}),
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
    failed = 0
    for mode, extra in MODES.items():
        inputs = write_inputs(args.out / "inputs", args.mb, args.out / f"{mode}-small" / "tokenizer" / "tokenizer.model")
        peaks = {}
        for name in ("small", "big", "kept"):
            out = args.out / f"{mode}-{name}"
            shutil.rmtree(out, ignore_errors=True)
            for stage in ("curate", "shards"):
                cmd = [str(STRATA), "build", str(inputs / f"{name}.yaml"), "--out", str(out), "--until", stage, *extra]
                with open(args.out / f"{mode}-{name}-{stage}.log", "w") as log:
                    result = run_monitored(cmd, stdout=log, stderr=log)
                failed |= result.returncode != 0
                summary = json.loads((out / "curate.json").read_text()) if result.returncode == 0 else {}
                peaks[name, stage] = result
                print(
                    f"big-doc {mode:<8} {name:<6} {stage:<7} exit={result.returncode} wall={result.wall_s:.1f}s "
                    f"peak_rss_single={result.peak_single_mb:.0f} MB ({result.peak_single_name.split()[-1]}) "
                    f"peak_rss_total={result.peak_total_mb:.0f} MB"
                    + (f" fates={summary.get('fates')}" if stage == "curate" else "")
                )
        for name, what in (("big", "quarantined by validate.max_text_bytes"), ("kept", "kept (rule raised)")):
            for stage in ("curate", "shards"):
                big, small = peaks[name, stage], peaks["small", stage]
                print(f"big-doc {mode:<8} {stage:<7} a {args.mb:g} MB document {what}: peak {big.peak_total_mb:.0f} MB "
                      f"(target < 500), {big.peak_total_mb - small.peak_total_mb:+.0f} MB over a small document's build")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
