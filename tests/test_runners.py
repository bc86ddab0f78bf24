"""The same curate pipeline on a real distributed engine: Beam's DaskRunner against a
dask.distributed LocalCluster of worker processes gives the DirectRunner's output."""

import pyarrow.dataset as ds
import pytest

from strata.pipeline.curate import read_lineage, run_curate

distributed = pytest.importorskip("distributed")


def _table(out, folder):
    table = ds.dataset(out / folder, format="parquet").to_table()
    return sorted(table.to_pylist(), key=lambda r: (r["doc_id"], r.get("record_index")))


def test_dask_runner_matches_direct_runner(corpus, built, tmp_path):
    direct_out, _ = built
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        summary = run_curate(
            corpus, str(tmp_path), ["--runner=apache_beam.runners.dask.dask_runner.DaskRunner", f"--dask_client_address={cluster.scheduler_address}"]
        )
        distributed.default_client().close()  # the runner's client, before its cluster goes
    assert summary["fates"]["kept"] == 40
    assert _table(tmp_path, "curated") == _table(direct_out, "curated")
    lineage = sorted(read_lineage(str(tmp_path)).to_pylist(), key=lambda r: r["doc_id"])
    assert lineage == sorted(read_lineage(str(direct_out)).to_pylist(), key=lambda r: r["doc_id"])
