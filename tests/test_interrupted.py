"""SIGKILL inside a write leaves nothing a reader sees, and the rerun (or --resume) removes
what the killed job left: OUT then holds exactly what a clean build holds."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import yaml

from strata.manifests.manifest import Manifest

from conftest import IN_MEMORY, SMALL_SHARDS


def _temporary_files(folders: list[Path], prefixes: tuple[str, ...]) -> list[Path]:
    found = []
    for folder in folders:
        try:
            found += [folder / n for n in os.listdir(folder) if n.startswith(prefixes) and ".tmp-" in n]
        except FileNotFoundError:
            pass
    return found


def kill_inside_write(command: list[str], folders, prefixes: tuple[str, ...], before_retry=lambda: None,
                      attempts: int = 6) -> list[Path]:
    """Run `command` and SIGKILL it while a temporary file named with one of `prefixes`
    exists in one of `folders()`; returns the temporary files the kill left. A write can
    finish between the poll and the kill, so it tries again (a fresh run) up to `attempts` times."""
    for _ in range(attempts):
        before_retry()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while child.poll() is None:
            if _temporary_files(folders(), prefixes):
                child.send_signal(signal.SIGKILL)
                child.wait()
                break
        left = _temporary_files(folders(), prefixes)
        if child.returncode == -signal.SIGKILL and left:
            return left
    raise AssertionError(f"no kill landed inside a write of {prefixes} in {attempts} runs")


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_a_build_killed_inside_each_write_leaves_nothing_behind_after_its_rerun(corpus_config_dict, shard_build, tmp_path):
    clean, clean_manifest = shard_build  # the same config, built once without interruption
    config = tmp_path / "build.yaml"
    config.write_text(yaml.safe_dump(dict(corpus_config_dict, tokenizer={"vocab_size": 400}, shards=SMALL_SHARDS)))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "strata.cli", "build", str(config), "--out", str(out), "--", *IN_MEMORY]

    def redo_curate():
        (out / "curate.json").unlink(missing_ok=True)

    curate_folders = lambda: [out / "lineage", *(out / "curated").glob("*")]  # noqa: E731
    shard_folders = lambda: [out / "lineage", *(out / "shards").glob("*")]  # noqa: E731
    left = [
        # curate's part files, then the shard stage's tars, block indexes and shard lineage
        *kill_inside_write(command, curate_folders, (".part-",), redo_curate),
        *kill_inside_write(command, shard_folders, (".train-", ".val-", ".shards-")),
    ]
    assert left
    subprocess.run(command, check=True, capture_output=True)
    assert _files(out) == _files(clean)
    assert not any(p.exists() for p in left)
    assert Manifest.read(str(out)).to_dict()["categories"] == clean_manifest["categories"]  # byte-identical shards
    lineage = ds.dataset(out / "lineage").to_table()  # the README's way to query lineage
    assert lineage.num_rows == ds.dataset(clean / "lineage").to_table().num_rows


def test_a_run_killed_while_writing_its_consumed_lineage_is_cleaned_up_by_resume(shard_build, tmp_path):
    out, _ = shard_build
    run = tmp_path / "run"
    settings = tmp_path / "run.yaml"
    settings.write_text(yaml.safe_dump({
        "data": str(out), "out": str(run), "objective": "clm", "model": "tiny", "seq_len": 32, "batch_size": 2,
        "steps": 20, "eval_every": 0, "save_every": 5, "log_every": 50, "consumed_flush_every": 1,
    }))
    command = [sys.executable, "-m", "strata.cli", "train", "--config", str(settings)]

    def fresh_run():
        subprocess.run(["rm", "-rf", str(run)], check=True)

    left = kill_inside_write(command, lambda: [run / "consumed"], (".part-r",), fresh_run)
    subprocess.run([*command, "--resume"], check=True, capture_output=True)
    assert not any(p.exists() for p in left)
    assert not [n for n in os.listdir(run / "consumed") if n.startswith(".")]
    steps = ds.dataset(run / "consumed", format="parquet").to_table().column("step").to_pylist()
    assert sorted(set(steps)) == list(range(20))
