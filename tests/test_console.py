"""What `strata build` prints and leaves behind: one line per stage, none of Beam's noise,
nothing in the temporary directory after a successful, failed or interrupted run."""

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from strata.pipeline.console import Console, is_noise
from strata.pipeline.progress import ProgressReport, live_line, read_reports, uncompressed_size

BEAM_NOISE = ("apitools not found", "semi_persistent_directory", "Discarding unparseable args", "Logging handler created")


def _strata(config_dict, tmp_path, *args, tmpdir):
    config = tmp_path / "build.yaml"
    config.write_text(yaml.safe_dump(config_dict))
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    cmd = [sys.executable, "-m", "strata.cli", "build", str(config), "--out", str(tmp_path / "out"), *args]
    return cmd, env


def _fresh_tmpdir(tmp_path):
    folder = tmp_path / "tmp"
    folder.mkdir()
    return folder


def test_build_prints_a_line_per_stage_no_beam_noise_and_leaves_no_temp_files(corpus_config_dict, tmp_path):
    tmpdir = _fresh_tmpdir(tmp_path)
    # worker processes: where most of Beam's noise comes from
    cmd, env = _strata(corpus_config_dict, tmp_path, "--", "--direct_running_mode=multi_processing", tmpdir=tmpdir)
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert not [n for n in BEAM_NOISE if n in result.stderr], result.stderr
    stage_lines = [line for line in result.stderr.splitlines() if line.startswith(("curate:", "tokenizer:", "shards:"))]
    assert [line.split(":")[0] for line in stage_lines] == ["curate", "tokenizer", "shards"]
    assert "records" in stage_lines[0] and "kept" in stage_lines[0] and "quarantined" in stage_lines[0]
    assert "tokens/s" in stage_lines[2]
    assert os.listdir(tmpdir) == []


def test_quiet_build_prints_no_progress(corpus_config_dict, tmp_path):
    tmpdir = _fresh_tmpdir(tmp_path)
    cmd, env = _strata(
        corpus_config_dict, tmp_path, "--quiet", "--until", "curate", "--",
        "--direct_running_mode=in_memory", "--direct_num_workers=1", tmpdir=tmpdir,
    )
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "curated" in result.stdout  # the command's result still prints
    assert os.listdir(tmpdir) == []


def test_failed_build_leaves_no_temp_files(corpus_config_dict, tmp_path):
    tmpdir = _fresh_tmpdir(tmp_path)
    # curate runs on Beam and keeps nothing: the build fails after it
    config = {**corpus_config_dict, "filters": {"gopher_quality": {"min_words": 20, "min_stop_words": 10**6}}}
    cmd, env = _strata(config, tmp_path, "--", "--direct_running_mode=in_memory", "--direct_num_workers=1", tmpdir=tmpdir)
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert "no usable records" in result.stderr
    assert (tmp_path / "out" / "curate.json").exists()
    assert os.listdir(tmpdir) == []


def test_interrupted_build_leaves_no_temp_files(corpus_config_dict, tmp_path):
    tmpdir = _fresh_tmpdir(tmp_path)
    # worker processes too: the harder case to clean up after
    cmd, env = _strata(corpus_config_dict, tmp_path, "--", "--direct_running_mode=multi_processing", tmpdir=tmpdir)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    # Beam's worker processes are up once they have made their folders in the build's temp dir
    while time.monotonic() < deadline and not any(
        entry for build in tmpdir.glob("strata-build-*") for entry in build.iterdir() if entry.name.startswith("beam")
    ):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "strata: interrupted" in err
    assert not (tmp_path / "out" / "manifest.json").exists()
    assert os.listdir(tmpdir) == []


# --------------------------------------------------------------------------- the parts


def test_noise_filter_drops_beam_notices_only():
    assert is_noise("WARNING:root:apitools not found, and bigquery client libraries are not available")
    assert is_noise("WARNING:apache_beam.options.pipeline_options:Discarding unparseable args: ['--x']")
    assert not is_noise("WARNING:apache_beam.io.filesystem:Could not delete gs://bucket/x: permission denied")
    assert not is_noise("Traceback (most recent call last):")


def test_console_keeps_the_status_line_below_other_lines(tmp_path):
    path = tmp_path / "console"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    console = Console(fd)
    console.tty = True
    console.status("curate: 10 docs")
    console.line("a warning")
    console.clear_status()
    os.close(fd)
    assert path.read_bytes() == b"\r\x1b[2Kcurate: 10 docs\r\x1b[2Ka warning\ncurate: 10 docs\r\x1b[2K"


def test_progress_reports_add_up_across_workers(tmp_path):
    one, two = ProgressReport(str(tmp_path)), ProgressReport(str(tmp_path))
    two.path = str(tmp_path / "other-worker.json")
    one.add(docs=3, bytes=300)
    two.add(docs=2, bytes=100, quarantined=1)
    one.flush(), two.flush()
    assert read_reports(str(tmp_path)) == {"docs": 5, "bytes": 400, "quarantined": 1}
    assert ProgressReport(str(tmp_path / "absent")).path is None  # a worker on another machine: no-op


def test_live_line_shows_rates_and_eta():
    line = live_line("curate", {"docs": 100, "bytes": 2_000_000, "dropped": 5, "quarantined": 1}, 10.0, 8_000_000)
    assert line == "curate: 100 docs, 2.0 MB | 5 dropped, 1 quarantined | 10 docs/s, 0.2 MB/s | 25%, ETA 0:00:30"
    assert "ETA" not in live_line("shards", {"docs": 1, "bytes": 5, "tokens": 2}, 1.0, None)


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.zst", ".jsonl.gz"])
def test_uncompressed_size_from_the_file(tmp_path, suffix):
    import gzip

    import zstandard

    data = b'{"text": "hello"}\n' * 1000
    packed = {".jsonl": data, ".jsonl.zst": zstandard.ZstdCompressor().compress(data), ".jsonl.gz": gzip.compress(data)}
    path = tmp_path / f"in{suffix}"
    path.write_bytes(packed[suffix])
    assert uncompressed_size(str(path), path.stat().st_size) == len(data)
