"""The same build on a real distributed engine: Beam's DaskRunner against a dask.distributed
scheduler and two worker processes, each started by its own `dask` command as a separate OS
process (as on a cluster, bound to 127.0.0.1 here), gives the DirectRunner's output."""

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from strata.config import parse_config
from strata.pipeline.build import run_build
from strata.pipeline.curate import read_lineage

distributed = pytest.importorskip("distributed")

DASK = str(Path(sys.executable).with_name("dask"))


def _table(out, folder):
    table = ds.dataset(out / folder, format="parquet").to_table()
    return sorted(table.to_pylist(), key=lambda r: (r["doc_id"], r.get("record_index")))


@pytest.fixture
def dask_cluster(tmp_path):
    """`dask scheduler` and two `dask worker` processes (no nanny: one OS process each);
    yields the scheduler's address."""
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    common = ["--no-dashboard", "--host", "127.0.0.1"]
    processes = [
        subprocess.Popen([DASK, "scheduler", "--port", "0", "--scheduler-file", str(scheduler_file), *common], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ]
    try:
        with distributed.Client(scheduler_file=str(scheduler_file), timeout=120) as client:
            for n in range(2):
                processes.append(
                    subprocess.Popen(
                        [DASK, "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1", "--no-nanny",
                         "--local-directory", str(tmp_path / f"worker-{n}"), *common],
                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    )
                )
            client.wait_for_workers(2, timeout=120)
            pids = client.run(os.getpid)  # worker address -> its process id
            assert sorted(pids.values()) == sorted(p.pid for p in processes[1:])
            yield client.scheduler.address
    finally:
        for process in reversed(processes):  # workers first, then the scheduler
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_dask_cluster_build_matches_direct_runner_build(corpus_config_dict, shard_build, dask_cluster, tmp_path):
    direct_out, direct = shard_build
    config = parse_config(dict(corpus_config_dict, tokenizer={"vocab_size": 400}, shards=direct["config"]["shards"]))
    out = tmp_path / "dask-out"
    runner = ["--runner=apache_beam.runners.dask.dask_runner.DaskRunner", f"--dask_client_address={dask_cluster}"]
    try:
        manifest = run_build(config, str(out), "shards", runner)
    finally:
        distributed.default_client().close()  # the runner's client, before the cluster goes

    def shards(m):
        return {c: sorted((s["path"], s["sha256"], s["bytes"]) for s in cat["shards"]) for c, cat in m["categories"].items()}

    assert shards(manifest) == shards(direct) and sum(len(v) for v in shards(direct).values()) > 3
    assert manifest["tokenizer"]["sha256"] == direct["tokenizer"]["sha256"]
    assert _table(out, "curated") == _table(direct_out, "curated")
    lineage = sorted(read_lineage(str(out)).to_pylist(), key=lambda r: r["doc_id"])
    assert lineage == sorted(read_lineage(str(direct_out)).to_pylist(), key=lambda r: r["doc_id"])
