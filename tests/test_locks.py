"""One writer per OUT and per RUN: a second `strata build` on an OUT (or `strata train` on a
RUN) that another running job holds stops with a clear error naming pid, host and start
time; a stale lock (same host, its process gone) is taken over; the lock goes away when the
job ends (success, error, Ctrl-C); readers of a build ignore it."""

import functools
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from strata.cli import main
from strata.manifests.layout import BUILD_LOCK, RUN_LOCK
from strata.manifests.lock import FolderLock, LockedError, pid_alive

from conftest import IN_MEMORY, REPO
from corpus import prose
from test_train import RangeServer

TRAIN = ["--objective=clm", "--seq-len=64", "--batch-size=8", "--steps=3", "--eval-every=0"]


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(done.stdout)
    assert not pid_alive(pid)
    return pid


def write_lock(folder: Path, name: str, pid: int, host: str | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    owner = {"pid": pid, "host": host or socket.gethostname(), "started": "2026-01-02T03:04:05+00:00", "token": "t"}
    (folder / name).write_text(json.dumps(owner))


# --------------------------------------------------------------------------- the lock itself


def test_a_second_holder_is_refused_until_the_first_releases(tmp_path):
    first = FolderLock(str(tmp_path / "out"), BUILD_LOCK, "OUT")
    with first:
        owner = json.loads((tmp_path / "out" / BUILD_LOCK).read_text())
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
        with pytest.raises(LockedError) as caught:
            FolderLock(str(tmp_path / "out"), BUILD_LOCK, "OUT").acquire()
        assert str(caught.value).startswith(
            f"OUT {tmp_path / 'out'} is locked by pid {os.getpid()} on {socket.gethostname()} since {owner['started']}"
        )
    assert not (tmp_path / "out" / BUILD_LOCK).exists()
    with FolderLock(str(tmp_path / "out"), BUILD_LOCK, "OUT"):
        pass


def test_a_stale_lock_on_this_host_is_taken_over_and_one_of_another_host_is_not(tmp_path, caplog):
    pid = dead_pid()
    write_lock(tmp_path, BUILD_LOCK, pid)
    with FolderLock(str(tmp_path), BUILD_LOCK, "OUT"):
        assert json.loads((tmp_path / BUILD_LOCK).read_text())["pid"] == os.getpid()
    assert f"took over the lock of pid {pid} on {socket.gethostname()}" in caplog.text
    assert not (tmp_path / BUILD_LOCK).exists() and not list(tmp_path.iterdir())

    write_lock(tmp_path, BUILD_LOCK, pid, host="another-host")
    with pytest.raises(LockedError, match=f"locked by pid {pid} on another-host since 2026-01-02T03:04:05"):
        FolderLock(str(tmp_path), BUILD_LOCK, "OUT").acquire()
    write_lock(tmp_path, BUILD_LOCK, os.getppid())  # alive, on this host
    with pytest.raises(LockedError, match=f"locked by pid {os.getppid()} "):
        FolderLock(str(tmp_path), BUILD_LOCK, "OUT").acquire()


def test_a_lock_on_s3_is_a_conditional_put(s3):
    with FolderLock("s3://strata-test/out", BUILD_LOCK, "OUT"):
        assert json.loads(s3.cat_file(f"strata-test/out/{BUILD_LOCK}"))["pid"] == os.getpid()
        with pytest.raises(LockedError, match=f"OUT s3://strata-test/out is locked by pid {os.getpid()} "):
            FolderLock("s3://strata-test/out", BUILD_LOCK, "OUT").acquire()
    assert not s3.exists(f"strata-test/out/{BUILD_LOCK}")


# --------------------------------------------------------------------------- through the commands


def test_build_and_train_refuse_a_live_lock_and_take_over_a_stale_one(shard_build, corpus_config_dict, tmp_path,
                                                                        capsys):
    built, _ = shard_build
    out = tmp_path / "out"
    shutil.copytree(built, out)
    write_lock(out, BUILD_LOCK, os.getppid())
    config = tmp_path / "build.yaml"
    config.write_text(yaml.safe_dump(dict(corpus_config_dict, tokenizer={"vocab_size": 400})))
    assert main(["build", str(config), "--out", str(out), "--", *IN_MEMORY]) == 1
    err = capsys.readouterr().err
    assert f"OUT {out} is locked by pid {os.getppid()} on {socket.gethostname()} since 2026-01-02" in err
    assert "Traceback" not in err and (out / "manifest.json").exists()  # the build there is untouched

    # readers of the build are not confused by a lock file in it
    assert main(["verify", str(out)]) == 0 and main(["audit", str(out)]) == 0
    run = tmp_path / "run"
    write_lock(run, RUN_LOCK, dead_pid())
    assert main(["train", f"--data={out}", f"--out={run}", *TRAIN]) == 0
    assert not (run / RUN_LOCK).exists() and (run / "summary.json").exists()
    write_lock(run, RUN_LOCK, os.getppid())
    assert main(["train", f"--data={out}", f"--out={run}", *TRAIN, "--resume"]) == 1
    assert f"RUN {run} is locked by pid {os.getppid()}" in capsys.readouterr().err


def test_the_lock_is_released_when_a_run_fails(shard_build, tmp_path, capsys):
    out, manifest = shard_build
    copy = tmp_path / "build"
    shutil.copytree(out, copy)
    for shard in (s for c in manifest["categories"].values() for s in c["shards"]):
        (copy / shard["path"]).unlink()
    assert main(["train", f"--data={copy}", f"--out={tmp_path / 'run'}", *TRAIN]) == 1
    assert "shard is missing" in capsys.readouterr().err
    assert not (tmp_path / "run" / RUN_LOCK).exists()


# --------------------------------------------------------------------------- two real processes


class GatedServer(RangeServer):
    """Static files whose reads by byte range wait until `gate` is set (whole-file GETs and
    HEADs, which look-ups and checks before any work use, do not): a job reading its data
    from it stays in the middle of its work, holding its lock, for as long as a test needs."""

    gate = threading.Event()

    def do_GET(self):
        if self.headers.get("Range"):
            self.gate.wait(120)
        super().do_GET()


@pytest.fixture
def gated(tmp_path):
    """(folder served, its URL): GETs wait for GatedServer.gate."""
    folder = tmp_path / "served"
    folder.mkdir()
    GatedServer.gate.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(GatedServer, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    GatedServer.gate.set()
    server.shutdown()


def strata(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO / "tests"))
    return subprocess.Popen([sys.executable, "-m", "strata.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_for(path: Path, process: subprocess.Popen) -> None:
    while not path.exists():
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)


def test_two_builds_on_one_out(gated, tmp_path):
    import random

    folder, url = gated
    rng = random.Random(1)
    (folder / "web.jsonl").write_text("".join(json.dumps({"text": prose(rng)}) + "\n" for _ in range(20)))
    config = {"sources": [{"name": "web", "format": "jsonl", "paths": [f"{url}/web.jsonl"], "category": "Web"}],
              "filters": {"language": {"enabled": False}}}
    (tmp_path / "build.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    command = ["build", str(tmp_path / "build.yaml"), "--out", str(out), "--until", "curate", "--", *IN_MEMORY]
    first = strata(*command)
    wait_for(out / BUILD_LOCK, first)  # the first build holds OUT, waiting for its input
    second = strata(*command)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 1 and "Traceback" not in err
    assert f"OUT {out} is locked by pid {first.pid} on {socket.gethostname()} since " in err
    GatedServer.gate.set()
    printed, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert "curated 20 of 20 records" in printed and not (out / BUILD_LOCK).exists()


def test_two_trainings_on_one_run_and_ctrl_c(shard_build, gated, tmp_path):
    built, _ = shard_build
    folder, url = gated
    shutil.copytree(built, folder / "build")
    run = tmp_path / "run"
    command = ["train", f"--data={url}/build", f"--out={run}", *TRAIN]
    first = strata(*command)
    wait_for(run / RUN_LOCK, first)  # the first run holds RUN, waiting for its first block
    second = strata(*command)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 1 and "Traceback" not in err
    assert f"RUN {run} is locked by pid {first.pid} on {socket.gethostname()} since " in err
    first.send_signal(signal.SIGINT)  # Ctrl-C
    while (run / RUN_LOCK).exists() and first.poll() is None:
        time.sleep(0.05)
    assert not (run / RUN_LOCK).exists()  # released, though its read-ahead threads still wait for the server
    GatedServer.gate.set()
    _, err = first.communicate(timeout=120)
    assert first.returncode == 130 and "strata: interrupted" in err and "Traceback" not in err
