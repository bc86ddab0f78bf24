"""Curate benchmark: strata against DataTrove on the same real-text corpus, in one run.

    python tests/bench/bench_curate.py [--mb 60] [--only strata|strata-2proc|datatrove]

1. makes the corpus (tests/bench/make_corpus.py) unless it is there already;
2. runs `strata build CORPUS/strata.yaml --out OUT/strata --until curate`;
3. runs the same work through DataTrove (tests/bench/datatrove_curate.py, own venv);
4. prints, for each: docs in, docs kept, wall seconds, docs/s, MB/s (uncompressed jsonl
   input), peak RSS of the whole process tree and of its largest single process; the
   strata/datatrove ratios; and near-dup quality against the planted pairs.

Near-dup quality. A planted pair (or exact-dup group) is *eligible* when all its records
reached dedup (passed the filters and language ID); it is *found* when exactly one of them
survives dedup. false merges = records removed by dedup that belong to no planted pair or
group, over the eligible records that belong to none; how many of those are nonetheless
near-copies in the corpus (true word-5-gram Jaccard >= 0.5 with the record they were merged
into, or with some member of their cluster for DataTrove) is printed beside it.

Results also go to OUT/results.json. Exit status: 0 when every system asked for ran,
3 when the strata CLI is not usable yet, 1 on any other failure.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
STRATA_VENV = Path(os.environ.get("STRATA_VENV", REPO / ".venv"))


def _reexec_in_strata_venv() -> None:
    """psutil, pyarrow and zstandard live in strata's venv: run there if they are missing here."""
    try:
        import psutil  # noqa: F401
        import pyarrow  # noqa: F401
        import zstandard  # noqa: F401
    except ImportError:
        py = STRATA_VENV / "bin" / "python"
        if py.exists() and Path(sys.prefix).resolve() != STRATA_VENV.resolve() and not os.environ.get("_BENCH_REEXEC"):
            os.environ["_BENCH_REEXEC"] = "1"
            os.execv(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]])
        raise SystemExit("bench: needs psutil, pyarrow and zstandard (run `make setup`, or use strata's venv)")


if __name__ == "__main__":
    _reexec_in_strata_venv()

sys.path.insert(0, str(HERE))

import datatrove_curate  # noqa: E402
import make_corpus  # noqa: E402
from procmon import run_monitored  # noqa: E402

EXIT_STRATA_NOT_READY = 3
# strata's default (the DirectRunner, one worker process per core) and a single process
STRATA_MODES = {
    "strata": [],  # the default: one process
    "strata-2proc": ["--", "--direct_running_mode=multi_processing", "--direct_num_workers=2"],
}
SIMILAR = 0.5  # a "false" merge whose true Jaccard reaches this is a natural near-copy


# --------------------------------------------------------------------------- corpus


def load_corpus(corpus: Path):
    """(docs.tsv rows by id, {(file, record_index): id}, planted.json, corpus.json)."""
    rows, by_loc = {}, {}
    lines = (corpus / "docs.tsv").read_text().splitlines()
    for line in lines[1:]:
        did, fname, idx, cat, nbytes = line.split("\t")
        rows[did] = {"file": fname, "index": int(idx), "category": cat, "bytes": int(nbytes)}
        by_loc[(fname, int(idx))] = did
    planted = json.loads((corpus / "planted.json").read_text())
    summary = json.loads((corpus / "corpus.json").read_text())
    return rows, by_loc, planted, summary


def load_texts(corpus: Path, wanted: set[str]) -> dict[str, str]:
    import zstandard

    out = {}
    if not wanted:
        return out
    for f in sorted(corpus.glob("part-*.jsonl.zst")):
        with open(f, "rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as r:
            for line in io.TextIOWrapper(r, encoding="utf-8"):
                d = json.loads(line)
                if d["id"] in wanted:
                    out[d["id"]] = d["text"]
    return out


# --------------------------------------------------------------------------- quality


def near_dup_quality(planted: dict, reached: set[str], kept: set[str], removed: set[str], all_ids) -> dict:
    """Recall per bucket and for exact groups, and false merges, from sets of ids.

    reached: ids that reached dedup; kept: ids that survived it; removed: ids dedup removed.
    """
    res = {}
    for bucket in planted["buckets"]:
        pairs = [p for p in planted["near_pairs"] if p["bucket"] == bucket]
        elig = found = both_kept = both_gone = 0
        for p in pairs:
            a, b = p["a"]["id"], p["b"]["id"]
            if a in reached and b in reached:
                elig += 1
                n = (a in kept) + (b in kept)
                found += n == 1
                both_kept += n == 2
                both_gone += n == 0
        res[bucket] = {"pairs": len(pairs), "eligible": elig, "found": found, "both_kept": both_kept,
                       "both_removed": both_gone, "recall": found / elig if elig else None}
    elig = found = 0
    for group in planted["exact_groups"]:
        ids = [m["id"] for m in group]
        if all(i in reached for i in ids):
            elig += 1
            found += sum(i in kept for i in ids) == 1
    res["exact"] = {"groups": len(planted["exact_groups"]), "eligible": elig, "found": found,
                    "recall": found / elig if elig else None}
    in_plant = {p[k]["id"] for p in planted["near_pairs"] for k in ("a", "b")}
    in_plant |= {m["id"] for g in planted["exact_groups"] for m in g}
    unrelated = [i for i in all_ids if i in reached and i not in in_plant]
    false = sorted(i for i in removed if i not in in_plant)
    res["false_merges"] = {"removed": len(false), "unrelated_reached": len(unrelated),
                           "rate": len(false) / len(unrelated) if unrelated else None, "ids": false}
    return res


def natural_copies(false_ids: list[str], partners: dict[str, list[str]], corpus: Path) -> tuple[int, list]:
    """How many 'false' merges have a true Jaccard >= SIMILAR with a partner, and the values."""
    wanted = set(false_ids) | {p for i in false_ids for p in partners.get(i, [])}
    texts = load_texts(corpus, wanted)
    similar, values = 0, []
    for i in false_ids:
        best = max((make_corpus.jaccard(texts[i], texts[p]) for p in partners.get(i, []) if p in texts and p != i),
                   default=None)
        values.append(best)
        if best is not None and best >= SIMILAR:
            similar += 1
    return similar, values


# --------------------------------------------------------------------------- strata


def strata_ready(strata: Path) -> tuple[bool, str]:
    if not strata.exists():
        return False, f"{strata} does not exist (run `make setup`)"
    try:
        r = subprocess.run([str(strata), "--help"], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return False, "`strata --help` did not answer within 300 s"
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        return False, f"`strata --help` exited {r.returncode}: {last}"
    if "build" not in r.stdout:
        return False, "`strata --help` lists no `build` command"
    return True, ""


def run_strata(strata: Path, config: Path, out: Path, log: Path, extra_args: list[str]):
    if out.exists():
        shutil.rmtree(out)
    cmd = [str(strata), "build", str(config), "--out", str(out), "--until", "curate", *extra_args]
    print(f"bench: {' '.join(cmd)}", file=sys.stderr, flush=True)
    with open(log, "w") as fh:
        return run_monitored(cmd, stdout=fh, stderr=subprocess.STDOUT), cmd


def analyze_strata(out: Path, rows: dict, by_loc: dict) -> dict:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    files = sorted((out / "lineage").glob("*.parquet"))
    if not files:
        raise RuntimeError(f"no lineage files under {out / 'lineage'}")
    cols = ["doc_id", "uri", "record_index", "fate", "stage", "reason", "duplicate_of", "cluster_id", "category"]
    table = pq.read_table([str(f) for f in files], columns=cols) if len(files) > 1 else pq.read_table(files[0], columns=cols)
    lin = table.to_pylist()
    notes = []
    # record_index: 0-based per the schema; accept 1-based with a note
    idx = pc.min(table["record_index"]).as_py()
    shift = 0
    if idx == 1:
        shift = 1
        notes.append("lineage record_index looks 1-based; shifted to 0-based")
    by_doc, unknown = {}, 0
    fate_rank = {"kept": 0, "duplicate": 1, "dropped": 2, "quarantined": 3}
    for r in lin:
        key = (Path(str(r["uri"]).split("://")[-1]).name, int(r["record_index"]) - shift)
        bid = by_loc.get(key)
        if bid is None:
            unknown += 1
            continue
        r["bench_id"] = bid
        prev = by_doc.get(r["doc_id"])
        if prev is None or fate_rank.get(r["fate"], 9) > fate_rank.get(prev["fate"], 9):
            by_doc[r["doc_id"]] = r  # several rows for one record: the final (non-kept) fate wins
    if unknown:
        notes.append(f"{unknown} lineage rows match no corpus record (uri, record_index)")
    if len(by_doc) != len(lin) - unknown:
        notes.append(f"{len(lin) - unknown - len(by_doc)} extra lineage rows for the same doc_id")
    if len(by_doc) != len(rows):
        notes.append(f"lineage covers {len(by_doc)} of {len(rows)} corpus records")
    doc_to_bench = {d: r["bench_id"] for d, r in by_doc.items()}
    kept = {r["bench_id"] for r in by_doc.values() if r["fate"] == "kept"}
    dup = [r for r in by_doc.values() if r["fate"] == "duplicate"]
    removed = {r["bench_id"] for r in dup}
    reached = kept | removed
    partners = {r["bench_id"]: [doc_to_bench[r["duplicate_of"]]] for r in dup if r.get("duplicate_of") in doc_to_bench}
    stages = {}
    for r in by_doc.values():
        key = r["fate"] if r["fate"] == "kept" else f"{r['fate']}:{r['stage']}"
        stages[key] = stages.get(key, 0) + 1
    curated = sum(pq.ParquetFile(f).metadata.num_rows for f in (out / "curated").rglob("*.parquet"))
    if curated != len(kept):
        notes.append(f"curated parquet rows {curated} != lineage kept {len(kept)}")
    return {"docs_in": len(by_doc), "docs_kept": len(kept), "reached": reached, "kept": kept, "removed": removed,
            "partners": partners, "fates": dict(sorted(stages.items())), "curated_rows": curated, "notes": notes,
            "near_removed": sum(r["stage"] == "near_dedup" for r in dup),
            "exact_removed": sum(r["stage"] == "exact_dedup" for r in dup)}


# --------------------------------------------------------------------------- datatrove


def run_datatrove(corpus: Path, out: Path, log: Path, tasks: int, workers: int):
    datatrove_curate.ensure_venv()
    cmd = datatrove_curate.inner_command(corpus, out, tasks, workers)
    print(f"bench: {' '.join(cmd)}", file=sys.stderr, flush=True)
    with open(log, "w") as fh:
        return run_monitored(cmd, stdout=fh, stderr=subprocess.STDOUT), cmd


def analyze_datatrove(out: Path) -> dict:
    s = json.loads((out / "summary.json").read_text())
    kept = set(s["kept_ids"])
    removed = {i for i, _ in s["removed"]}
    clusters: dict[int, list[str]] = {}
    for i, c in s["kept"] + s["removed"]:
        if c != -1:
            clusters.setdefault(c, []).append(i)
    partners = {i: [j for j in clusters.get(c, []) if j != i] for i, c in s["removed"]}
    return {"docs_in": s["docs_in"], "docs_kept": len(kept), "reached": set(s["filtered_ids"]), "kept": kept,
            "removed": removed, "partners": partners, "summary": s, "notes": [],
            "fates": {"kept": len(kept), "dropped:filters": s["docs_in"] - s["docs_after_filters"],
                      "duplicate:minhash": len(removed)}}


# --------------------------------------------------------------------------- report


def fmt_ratio(a, b):
    return f"{a / b:.2f}" if a and b else "n/a"


def pct(x):
    return "n/a" if x is None else f"{100 * x:.1f}%"


def perf_line(name: str, r: dict) -> str:
    return (f"{name:<10} docs_in={r['docs_in']}  kept={r['docs_kept']}  wall={r['wall_s']:.1f}s  "
            f"docs/s={r['docs_per_s']:.1f}  MB/s={r['mb_per_s']:.2f}  "
            f"peak_rss_total={r['peak_total_mb']:.0f} MB  peak_rss_single={r['peak_single_mb']:.0f} MB  "
            f"procs<={r['peak_procs']}")


def quality_line(name: str, q: dict) -> str:
    parts = []
    for bucket, label in (("0.7-0.8", "[0.7,0.8)"), ("0.8-1.0", "[0.8,1.0]")):
        b = q[bucket]
        parts.append(f"recall{label}={b['found']}/{b['eligible']} ({pct(b['recall'])})")
    e = q["exact"]
    parts.append(f"exact={e['found']}/{e['eligible']} ({pct(e['recall'])})")
    f = q["false_merges"]
    unrelated = f["removed"] - f.get("natural", 0)
    rate = unrelated / f["unrelated_reached"] if f["unrelated_reached"] else None
    parts.append(f"unplanted_merged={f['removed']}/{f['unrelated_reached']} "
                 f"({f.get('natural', 0)} natural near-copies with true J>={SIMILAR})")
    parts.append(f"unrelated_merged={unrelated}/{f['unrelated_reached']} ({pct(rate)})")
    return f"{'near-dup':<10} {name:<10} " + "  ".join(parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=60, help="corpus size (default 60)")
    ap.add_argument("--corpus", type=Path, default=None, help="corpus folder (default out/bench/corpus-<MB>mb)")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench" / "run", help="work and result folder")
    ap.add_argument("--only", choices=(*STRATA_MODES, "datatrove"), default=None)
    ap.add_argument("--strata", type=Path, default=STRATA_VENV / "bin" / "strata", help="strata executable")
    ap.add_argument("--strata-arg", action="append", default=[], help="extra argument for `strata build` (repeatable)")
    ap.add_argument("--tasks", type=int, default=2, help="DataTrove tasks per stage (default 2)")
    ap.add_argument("--workers", type=int, default=2, help="DataTrove worker processes (default 2)")
    args = ap.parse_args(argv)

    corpus = (args.corpus or make_corpus.default_out(args.mb)).resolve()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not make_corpus.corpus_ready(corpus):
        print(f"bench: making the corpus at {corpus}", file=sys.stderr, flush=True)
        rc = make_corpus.main(["--mb", f"{args.mb:g}", "--out", str(corpus), "--quiet"])
        if rc:
            return rc
    rows, by_loc, planted, csum = load_corpus(corpus)
    mb_in = csum["jsonl_mb"]
    print(f"corpus     {corpus}: docs={csum['docs']}  jsonl={mb_in} MB  zst={csum['zst_mb']} MB  "
          f"files={csum['files']}  planted near pairs={csum['near_pairs']}  exact groups={csum['exact_groups']}")

    results, status = {}, 0
    systems = [args.only] if args.only else [*STRATA_MODES, "datatrove"]
    for system in systems:
        log = out / f"{system}.log"
        try:
            if system in STRATA_MODES:
                ok, why = strata_ready(args.strata)
                if not ok:
                    print(f"strata     NOT RUN: the strata CLI is not usable yet: {why}")
                    status = status or EXIT_STRATA_NOT_READY
                    continue
                extra = [*args.strata_arg, *STRATA_MODES[system]]
                res, cmd = run_strata(args.strata, corpus / "strata.yaml", out / system, log, extra)
            else:
                res, cmd = run_datatrove(corpus, out / "datatrove", log, args.tasks, args.workers)
            if res.returncode != 0:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                print(f"{system:<10} FAILED (exit {res.returncode}) after {res.wall_s:.1f}s; log {log}:\n{tail}")
                status = 1
                continue
            a = analyze_strata(out / system, rows, by_loc) if system in STRATA_MODES else analyze_datatrove(out / "datatrove")
        except Exception as err:  # report and go on with the other system
            print(f"{system:<10} FAILED: {type(err).__name__}: {err} (log {log})")
            status = 1
            continue
        q = near_dup_quality(planted, a["reached"], a["kept"], a["removed"], rows)
        natural, values = natural_copies(q["false_merges"]["ids"], a["partners"], corpus)
        q["false_merges"]["natural"] = natural
        q["false_merges"]["true_jaccard"] = values
        r = {
            "command": cmd, "docs_in": a["docs_in"], "docs_kept": a["docs_kept"], "wall_s": res.wall_s,
            "docs_per_s": a["docs_in"] / res.wall_s, "mb_per_s": mb_in / res.wall_s,
            "peak_total_mb": res.peak_total_mb, "peak_single_mb": res.peak_single_mb,
            "peak_single_process": res.peak_single_name, "peak_procs": res.peak_procs,
            "fates": a["fates"], "quality": q, "notes": a["notes"], "log": str(log),
        }
        if system == "datatrove":
            r["stage_seconds"] = a["summary"]["stage_seconds"]
            r["datatrove_version"] = a["summary"]["datatrove_version"]
        results[system] = r

    print()
    for system, r in results.items():
        print(perf_line(system, r))
    if "datatrove" in results and "stage_seconds" in results["datatrove"]:
        st = results["datatrove"]["stage_seconds"]
        print(f"{'datatrove':<10} stages: " + "  ".join(f"{k}={v:.1f}s" for k, v in st.items()))
    d = results.get("datatrove")
    for system in STRATA_MODES:
        if d and system in results:
            s = results[system]
            print(f"ratio {system}/datatrove docs/s = {fmt_ratio(s['docs_per_s'], d['docs_per_s'])}  "
                  f"peak_rss_total = {fmt_ratio(s['peak_total_mb'], d['peak_total_mb'])}  "
                  f"peak_rss_single = {fmt_ratio(s['peak_single_mb'], d['peak_single_mb'])}")
    for system, r in results.items():
        print(quality_line(system, r["quality"]))
    for system, r in results.items():
        print(f"{'fates':<10} {system:<10} " + "  ".join(f"{k}={v}" for k, v in r["fates"].items()))
        for n in r["notes"]:
            print(f"{'note':<10} {system:<10} {n}")

    for r in results.values():
        r["quality"]["false_merges"].pop("ids", None)
    (out / "results.json").write_text(json.dumps({"corpus": str(corpus), "corpus_summary": csum,
                                                  "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                                  "results": results}, indent=1, default=str))
    print(f"\nresults: {out / 'results.json'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
