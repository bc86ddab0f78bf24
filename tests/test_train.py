"""`strata train` end to end on a small real build: learning, exact resume (also on another
number of ranks), DDP with gloo, gradient accumulation, object storage, damaged shards,
checkpoints, config errors."""

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pytest
import torch

from strata.cli import main
from strata.config import ConfigError, load_train_config
from strata.train.checkpoint import latest_checkpoint
from strata.train.data import StreamingWindows
from strata.train.objectives import IGNORE_INDEX, mlm_batch, unigram_entropy
from strata.train.schedule import lr_at
from strata.train.trainer import micro_batches, train

SEQ_LEN = 64


def config(out, run, **overrides):
    settings = dict(
        data=str(out), out=str(run), objective="clm", model="tiny", seq_len=SEQ_LEN, batch_size=8,
        steps=20, lr=3e-3, min_lr=3e-4, warmup=5, seed=1, log_every=1, eval_every=0, eval_batches=2,
        save_every=0, consumed_flush_every=7,
    )
    return load_train_config(None, {**settings, **overrides})


def train_losses(run) -> dict[int, float]:
    """Last logged train loss of each step (a resumed run logs its steps again)."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if r["kind"] == "train"}


def consumed(run) -> list[tuple]:
    """Every consumed piece, rank aside, in (step, sample, piece) order."""
    table = pads.dataset(str(run / "consumed"), format="parquet").to_table()
    rows = table.drop_columns(["rank"]).to_pylist()
    return sorted(tuple(r.values()) for r in rows)


# --------------------------------------------------------------------------- pure parts


def test_learning_rate_warms_up_linearly_then_follows_a_cosine_to_min_lr(tmp_path):
    cfg = config("b", tmp_path, steps=110, warmup=10, lr=1e-3, min_lr=1e-4)
    assert lr_at(0, cfg) == pytest.approx(1e-4) and lr_at(9, cfg) == pytest.approx(1e-3)
    assert lr_at(10, cfg) == pytest.approx(1e-3)
    assert lr_at(60, cfg) == pytest.approx(5.5e-4)  # half way down the cosine
    assert lr_at(110, cfg) == pytest.approx(1e-4) and lr_at(500, cfg) == pytest.approx(1e-4)


def test_micro_batches_split_a_batch_in_order():
    batch = {"tokens": torch.arange(24).view(6, 4), "sample_id": torch.arange(6), "epoch": torch.zeros(6, dtype=torch.long)}
    parts = list(micro_batches(batch, 3))
    assert [p["sample_id"].tolist() for p in parts] == [[0, 1], [2, 3], [4, 5]]
    assert torch.equal(torch.cat([p["tokens"] for p in parts]), batch["tokens"])


# --------------------------------------------------------------------------- learning


@pytest.mark.parametrize(
    "objective,doc_mask,settings",
    [
        ("clm", False, dict(steps=300)),
        ("clm", True, dict(steps=300)),
        # A bidirectional model must first learn to attend to its neighbours: it sits on the
        # unigram plateau for 300-400 steps, then falls (see test_models).
        ("mlm", False, dict(steps=900, seq_len=16, batch_size=64, lr=1e-3, min_lr=1e-4, warmup=20)),
    ],
)
def test_loss_falls_below_the_unigram_entropy_of_the_stream(code_build, tmp_path, objective, doc_mask, settings):
    out, manifest = code_build
    cfg = config(out, tmp_path, objective=objective, doc_mask=doc_mask, log_every=10, **settings)
    summary = train(cfg)
    # The entropy of what the loss predicts: CLM every next token, MLM the chosen ones.
    stream = StreamingWindows(str(out), seq_len=cfg.seq_len, extra_token=objective == "clm",
                              global_batch=cfg.batch_size, seed=cfg.seed, end_step=cfg.steps)
    specials = manifest["tokenizer"]["special_ids"]
    targets = []
    for batch in stream.batches():
        if objective == "clm":
            targets.append(batch["tokens"][:, 1:].reshape(-1))
        else:
            _, labels = mlm_batch(batch["tokens"], batch["sample_id"].tolist(), seed=cfg.seed,
                                  epoch=batch["epoch"].tolist(), vocab_size=512, special_ids=specials.values(),
                                  mask_id=specials["mask"])
            targets.append(labels[labels != IGNORE_INDEX])
    entropy = unigram_entropy(torch.cat(targets).numpy())
    final = np.mean([loss for _, loss in summary["train_loss"][-5:]])
    assert final < entropy - 0.3, (final, entropy)
    assert summary["val"]["all"]["loss"] < entropy, (summary["val"], entropy)


# --------------------------------------------------------------------------- exact resume


def test_a_run_stopped_and_resumed_equals_one_that_never_stopped(shard_build, tmp_path):
    out, _ = shard_build
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(config(out, straight, steps=30, save_every=10))
    train(config(out, split, steps=30, save_every=10, stop_at=17))
    assert latest_checkpoint(split).name == "step-00000017"
    assert not (split / "summary.json").exists()  # a stopped run does not claim to be done
    train(config(out, split, steps=30, save_every=10, resume=True))
    assert train_losses(split) == train_losses(straight)  # fp32 losses, bit for bit
    assert len(train_losses(straight)) == 30
    assert consumed(split) == consumed(straight)
    for name in ("model.pt", "train.pt"):  # and the weights agree to the bit
        a = torch.load(latest_checkpoint(straight) / name, weights_only=True)
        b = torch.load(latest_checkpoint(split) / name, weights_only=True)
        if name == "model.pt":
            assert all(torch.equal(a[k], b[k]) for k in a)
        else:
            assert a["step"] == b["step"] == 30 and a["data"] == b["data"]


def test_a_run_that_crashed_after_its_checkpoint_replays_its_steps_lineage(shard_build, tmp_path):
    out, _ = shard_build
    straight, crashed = tmp_path / "straight", tmp_path / "crashed"
    train(config(out, straight, steps=24))
    train(config(out, crashed, steps=24, save_every=8, stop_at=19))  # lineage of 17-19 written
    shutil.rmtree(crashed / "checkpoints" / "step-00000019")  # as if killed after step 19, before saving
    (crashed / "checkpoints" / "latest").write_text("step-00000016")
    train(config(out, crashed, steps=24, resume=True))
    assert consumed(crashed) == consumed(straight)
    assert train_losses(crashed) == train_losses(straight)


def test_a_crash_while_saving_leaves_the_previous_checkpoint_as_latest(shard_build, tmp_path, monkeypatch):
    out, _ = shard_build
    train(config(out, tmp_path, steps=12, save_every=6, stop_at=6))
    real_save = torch.save

    def failing_save(obj, path, *args, **kwargs):
        if str(path).endswith("train.pt"):
            raise OSError("disk full")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        train(config(out, tmp_path, steps=12, save_every=6, resume=True))
    assert latest_checkpoint(tmp_path).name == "step-00000006"
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*")) == ["step-00000006"]
    monkeypatch.undo()
    train(config(out, tmp_path, steps=12, save_every=6, resume=True))
    assert latest_checkpoint(tmp_path).name == "step-00000012"


def test_gradient_accumulation_trains_on_the_same_windows_as_one_big_batch(shard_build, tmp_path):
    out, _ = shard_build
    big, accumulated = tmp_path / "big", tmp_path / "accumulated"
    train(config(out, big, steps=10, batch_size=8))
    train(config(out, accumulated, steps=10, batch_size=4, grad_accum=2))
    assert consumed(big) == consumed(accumulated)
    a, b = train_losses(big), train_losses(accumulated)
    assert a.keys() == b.keys() and all(abs(a[s] - b[s]) < 1e-4 for s in a)


# --------------------------------------------------------------------------- DDP


def torchrun(nproc, *args, env=None):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "strata.cli", "train", *args]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def flags(cfg) -> list[str]:
    fields = ("data", "out", "objective", "model", "seq_len", "batch_size", "steps", "lr", "min_lr", "warmup",
              "seed", "log_every", "eval_every", "eval_batches", "save_every")
    return [f"--{name.replace('_', '-')}={getattr(cfg, name)}" for name in fields]


def test_two_process_ddp_covers_the_global_batch_and_resumes_on_another_world_size(shard_build, tmp_path):
    out, _ = shard_build
    single, ddp, resumed = tmp_path / "single", tmp_path / "ddp", tmp_path / "resumed"
    train(config(out, single, steps=12, batch_size=8))
    torchrun(2, *flags(config(out, ddp, steps=12, batch_size=4)))
    table = pads.dataset(str(ddp / "consumed"), format="parquet").to_table().to_pylist()
    by_rank = {rank: {r["sample_id"] for r in table if r["rank"] == rank} for rank in (0, 1)}
    assert by_rank[0].isdisjoint(by_rank[1])
    assert sorted(by_rank[0] | by_rank[1]) == list(range(12 * 8))  # every window of 12 global batches of 8
    assert consumed(ddp) == consumed(single)
    a, b = train_losses(single), train_losses(ddp)
    assert all(abs(a[s] - b[s]) < 1e-3 for s in a), (a, b)
    assert json.loads((ddp / "run.json").read_text())["world_size"] == 2

    # 6 steps on one process, the other 6 on two: the same global sample order.
    train(config(out, resumed, steps=12, batch_size=8, save_every=6, stop_at=6))
    torchrun(2, *flags(config(out, resumed, steps=12, batch_size=4, save_every=6)), "--resume")
    assert consumed(resumed) == consumed(single)


# --------------------------------------------------------------------------- data sources and damage


def test_training_streams_from_s3_like_from_a_folder(shard_build, tmp_path, s3):
    out, _ = shard_build
    s3.put(str(out / "manifest.json"), "strata-test/build/manifest.json")
    s3.put(str(out / "shards"), "strata-test/build/", recursive=True)
    local, remote = tmp_path / "local", tmp_path / "remote"
    train(config(out, local, steps=6))
    train(config("s3://strata-test/build", remote, steps=6))
    assert consumed(remote) == consumed(local)
    assert train_losses(remote) == train_losses(local)


class RangeServer(http.server.SimpleHTTPRequestHandler):
    """Static files answering single-range GETs with 206, as object stores and CDNs do;
    records what it was asked for."""

    requests: list[tuple[str, str | None]] = []

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            return self.send_error(404)
        data, wanted = path.read_bytes(), self.headers.get("Range")
        self.requests.append((self.path, wanted))
        body = data
        if wanted:
            first, last = wanted.removeprefix("bytes=").split("-")
            first, last = int(first), min(int(last) if last else len(data) - 1, len(data) - 1)
            body = data[first : last + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_training_streams_from_https_style_urls_by_range_requests(shard_build, tmp_path):
    out, _ = shard_build
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RangeServer, directory=str(out)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        local, remote = tmp_path / "local", tmp_path / "remote"
        train(config(out, local, steps=6))
        train(config(f"http://127.0.0.1:{server.server_address[1]}", remote, steps=6))
    finally:
        server.shutdown()
    assert consumed(remote) == consumed(local)
    assert train_losses(remote) == train_losses(local)
    tars = [(path, wanted) for path, wanted in RangeServer.requests if path.endswith(".tar")]
    assert tars and all(wanted for _, wanted in tars)  # blocks by byte range, never whole shards


def test_a_missing_shard_fails_with_a_message_naming_it(shard_build, tmp_path, capsys):
    out, manifest = shard_build
    copy = tmp_path / "build"
    shutil.copytree(out / "shards", copy / "shards")
    shutil.copy(out / "manifest.json", copy)
    shard = next(s for c in manifest["categories"].values() for s in c["shards"] if s["split"] == "train")
    (copy / shard["path"]).unlink()
    code = main(["train", f"--data={copy}", f"--out={tmp_path / 'run'}", "--objective=clm", "--seq-len=64",
                 "--batch-size=8", "--steps=200", "--eval-every=0"])
    assert code == 1
    assert shard["path"] in capsys.readouterr().err


# --------------------------------------------------------------------------- configuration


def test_yaml_settings_with_flags_on_top_and_errors_naming_the_key(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data: out\nout: run\nobjective: mlm\nsteps: 100\nbatch_size: 4\nweights: {Books: 2, ArXiv: 1}\n")
    cfg = load_train_config(path, {"steps": 7})
    assert (cfg.objective, cfg.steps, cfg.batch_size, cfg.weights) == ("mlm", 7, 4, {"Books": 2.0, "ArXiv": 1.0})
    path.write_text("data: out\nout: run\nobjective: clm\nsteps: 100\nbatch_sise: 4\n")
    with pytest.raises(ConfigError, match="batch_sise: unknown key"):
        load_train_config(path, {})
    with pytest.raises(ConfigError, match="objective"):
        load_train_config(None, {"data": "out", "out": "run", "objective": "gpt", "steps": 1})


def test_the_command_line_refuses_to_overwrite_a_run_without_resume(shard_build, tmp_path, capsys):
    out, _ = shard_build
    args = ["train", f"--data={out}", f"--out={tmp_path}", "--objective=clm", "--seq-len=64", "--batch-size=8",
            "--steps=3", "--eval-every=0", "--weights=Books=1,ArXiv=1"]
    assert main(args) == 0
    assert json.loads((tmp_path / "run.json").read_text())["shares"] == {"ArXiv": 0.5, "Books": 0.5}
    printed = capsys.readouterr().out
    assert "train loss: step" in printed and f"lineage: {tmp_path}/consumed" in printed
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 3
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err


def test_the_demo_training_config_is_valid():
    from conftest import REPO

    cfg = load_train_config(REPO / "configs" / "demo-train.yaml", {"data": "out/demo", "out": "out/demo-run"})
    assert cfg.objective == "clm" and cfg.steps >= 100


def test_compiled_model_trains_like_the_eager_one(code_build, tmp_path):
    """torch.compile (inductor, C++ on CPU): the same steps, losses equal to rounding."""
    out, _ = code_build
    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    train(config(out, eager, steps=4, eval_batches=1))
    train(config(out, compiled, steps=4, eval_batches=1, compile=True))
    a, b = train_losses(eager), train_losses(compiled)
    assert a.keys() == b.keys() and all(abs(a[s] - b[s]) < 1e-3 for s in a), (a, b)
    assert consumed(eager) == consumed(compiled)
    # the checkpoint holds the plain module's names, loadable without compiling
    state = torch.load(latest_checkpoint(compiled) / "model.pt", weights_only=True)
    assert not any(k.startswith("_orig_mod") for k in state)


def test_loader_workers_feed_the_same_steps_as_the_training_process(shard_build, tmp_path):
    out, _ = shard_build
    inline, workers = tmp_path / "inline", tmp_path / "workers"
    train(config(out, inline, steps=8))
    train(config(out, workers, steps=8, num_workers=2))
    assert consumed(workers) == consumed(inline)
    assert train_losses(workers) == train_losses(inline)


def test_bf16_autocast_trains_close_to_fp32(shard_build, tmp_path):
    """The CUDA default, here on the CPU's autocast: same windows, losses within bf16's precision."""
    out, _ = shard_build
    fp32, bf16 = tmp_path / "fp32", tmp_path / "bf16"
    train(config(out, fp32, steps=6, precision="fp32"))
    train(config(out, bf16, steps=6, precision="bf16"))
    assert json.loads((bf16 / "run.json").read_text())["precision"] == "bf16"
    a, b = train_losses(fp32), train_losses(bf16)
    assert a != b and all(abs(a[s] - b[s]) < 0.05 * a[s] for s in a), (a, b)
