"""prefix_lm, span_corruption, ul2 and bart learn, train from the command line on a real
build, and resume exactly."""

import json

import numpy as np
import pytest
import torch

from objective_data import markov_windows, objective
from strata.cli import main
from test_train import consumed, train_losses

LEARNERS = [
    ("prefix_lm", {}),
    ("span_corruption", {}),
    ("span_corruption", {"decoder_only": True}),
    ("ul2", {}),
    ("bart", {}),
]


@pytest.mark.parametrize("name,options", LEARNERS)
def test_the_tiny_preset_learns_from_generated_data(name, options):
    """A Markov chain over 50 tokens: from ~ln(100) nats, a model that learns the chain and
    copies what the source shows goes far below; one that learns only token frequencies
    stays near 3.6."""
    obj = objective(name, seq_len=32, **options)
    torch.manual_seed(0)
    model = obj.build_model("tiny", 100, 32).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for step in range(60):
        windows = torch.as_tensor(markov_windows(8, 32 + obj.extra_token, seed=step))
        loss, n, _ = obj.loss(model, obj.batch(windows, torch.arange(step * 8, step * 8 + 8), torch.zeros(8, dtype=torch.long)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    start, end = np.mean(losses[:3]), np.mean(losses[-5:])
    assert start > 4.2 and end < start - 1.2, (start, end)


def _train(out, run, objective_name, *extra):
    args = ["train", f"--data={out}", f"--out={run}", f"--objective={objective_name}", "--seq-len=32",
            "--batch-size=4", "--steps=6", "--save-every=3", "--eval-every=0", "--eval-batches=1", "--log-every=1",
            "--lr=3e-3", "--warmup=2", "--seed=3", *extra]
    assert main(args) == 0


@pytest.mark.parametrize("name,options", [
    ("prefix_lm", ["--prefix-split=document", "--doc-mask"]),
    ("span_corruption", ["--decoder-only", "--mean-span=2"]),
    ("ul2", ["--ul2-mixture=R=1,X=1,S=1"]),
    ("bart", ["--bart-rate=0.4"]),
])
def test_a_run_stopped_and_resumed_equals_one_that_never_stopped(objective_build, tmp_path, name, options):
    out, _ = objective_build
    straight, split = tmp_path / "straight", tmp_path / "split"
    _train(out, straight, name, *options)
    stop = tmp_path / "stop.yaml"
    stop.write_text("stop_at: 3\n")  # YAML keys with flags on top
    _train(out, split, name, *options, f"--config={stop}")
    _train(out, split, name, *options, "--resume")
    assert train_losses(split) == train_losses(straight) and len(train_losses(straight)) == 6
    assert consumed(split) == consumed(straight)
    rows = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if r["kind"] == "val"]
    assert val and all("bpb" in r and r["bpb"] > 0 for r in val)
    if name == "ul2":  # the realized mixture of every step
        shares = [[r[f"ul2/{m}"] for m in "RXS"] for r in rows if r["kind"] == "train"]
        assert all(sum(s) == pytest.approx(1.0) for s in shares) and len({tuple(s) for s in shares}) > 1
    assert json.loads((straight / "run.json").read_text())["objective"] == name
