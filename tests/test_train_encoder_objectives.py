"""`strata train` with the encoder objectives (mlm --whole-word, spanbert, electra, nsp, sop,
xlnet) on a real build: the tiny preset learns, a stopped run resumes to the same losses
and lineage, the command line and YAML take the options, ELECTRA saves its discriminator."""

import json

import numpy as np
import pytest
import torch

from strata.cli import main
from strata.config import ConfigError, load_train_config
from strata.train.checkpoint import latest_checkpoint
from strata.train.encoder import Encoder, EncoderConfig
from strata.train.presets import PRESETS
from strata.train.trainer import train
from test_train import config, consumed, train_losses


def settings(**overrides):
    return dict(seq_len=32, batch_size=16, lr=3e-3, min_lr=3e-4, warmup=5, eval_batches=1, **overrides)


@pytest.mark.parametrize("objective,options", [
    ("mlm", dict(whole_word=True)),
    ("spanbert", {}),  # --no-sbo: test_the_command_line_and_yaml_take_the_encoder_options
    ("electra", {}),
    ("nsp", {}),
    ("sop", {}),
    ("xlnet", {}),
])
def test_the_tiny_preset_learns(objective_build, tmp_path, objective, options):
    out, _ = objective_build
    summary = train(config(out, tmp_path, objective=objective, steps=40, **settings(**options)))
    losses = [loss for _, loss in summary["train_loss"]]
    start = np.mean(losses[:2])  # about ln(vocab) = 6.4 nats per token (ELECTRA: 6.4 + 50 ln 2 = 41)
    # 40 steps take a masked model to about the unigram entropy of the targets, a nat or more down
    assert np.mean(losses[-5:]) < start - 1, losses[::5]
    assert summary["val"]["all"]["loss"] < start - 0.8, (summary["val"]["all"], start)


def test_eval_of_a_whole_word_run_gives_its_validation_figures(objective_build, tmp_path, capsys):
    """eval builds the objective with the build's pieces, as the trainer does: whole words need them."""
    out, _ = objective_build
    train(config(out, tmp_path, objective="mlm", steps=2, **settings(whole_word=True)))
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    val = {r["category"]: r for r in rows if r["kind"] == "val"}
    capsys.readouterr()  # the trainer's progress lines
    assert main(["eval", str(tmp_path), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["loss"] == pytest.approx(val["all"]["loss"], abs=1e-6) and figures["tokens"] == val["all"]["tokens"]


def test_extras_report_each_part_of_the_loss(objective_build, tmp_path):
    out, _ = objective_build
    rows = {}
    for objective in ("electra", "nsp", "spanbert"):
        train(config(out, tmp_path / objective, objective=objective, steps=2, **settings()))
        rows[objective] = [json.loads(line) for line in (tmp_path / objective / "metrics.jsonl").read_text().splitlines()][0]
    electra = rows["electra"]
    assert electra["loss"] == pytest.approx(electra["generator_loss"] + 50 * electra["discriminator_loss"], rel=1e-4)
    assert 0 < electra["replaced"] <= 0.2 and 0 <= electra["discriminator_accuracy"] <= 1
    assert rows["nsp"]["loss"] == pytest.approx(rows["nsp"]["mlm_loss"] + rows["nsp"]["pair_loss"], rel=1e-4)
    assert rows["spanbert"]["loss"] == pytest.approx(rows["spanbert"]["mlm_loss"] + rows["spanbert"]["sbo_loss"], rel=1e-4)


@pytest.mark.parametrize("objective,options", [
    ("spanbert", {}),  # span and whole-word masking
    ("electra", {}),
    ("nsp", {}),  # sentence pairs
    ("xlnet", {}),
])
def test_a_stopped_run_resumes_to_the_same_losses_and_lineage(objective_build, tmp_path, objective, options):
    out, _ = objective_build
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = dict(objective=objective, steps=8, save_every=3, **settings(**options))
    train(config(out, straight, **common))
    train(config(out, split, stop_at=5, **common))
    train(config(out, split, resume=True, **common))
    assert train_losses(split) == train_losses(straight)  # bit for bit
    assert len(train_losses(straight)) == 8
    assert consumed(split) == consumed(straight)


def test_electra_saves_its_discriminator_for_an_encoder(objective_build, tmp_path):
    out, manifest = objective_build
    train(config(out, tmp_path, objective="electra", steps=2, **settings()))
    state = torch.load(latest_checkpoint(tmp_path) / "discriminator.pt", weights_only=True)
    encoder = Encoder(EncoderConfig(vocab_size=manifest["tokenizer"]["vocab_size"], seq_len=32, post_ln=True,
                                  **PRESETS["tiny"]))
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith(("head.", "lm_head.")) for k in missing)
    model = torch.load(latest_checkpoint(tmp_path) / "model.pt", weights_only=True)
    assert torch.equal(state["transformer.wte.weight"], model["discriminator.wte.weight"])


def test_the_command_line_and_yaml_take_the_encoder_options(objective_build, tmp_path, capsys):
    out, _ = objective_build
    args = ["train", f"--data={out}", "--seq-len=32", "--batch-size=4", "--steps=2", "--eval-every=0",
            "--eval-batches=1"]
    assert main([*args, f"--out={tmp_path / 'ww'}", "--objective=mlm", "--whole-word"]) == 0
    assert main([*args, f"--out={tmp_path / 'sb'}", "--objective=spanbert", "--no-sbo"]) == 0
    assert main([*args, f"--out={tmp_path / 'el'}", "--objective=electra", "--generator-ratio=0.5"]) == 0
    assert main([*args, f"--out={tmp_path / 'xl'}", "--objective=xlnet", "--xlnet-k=4"]) == 0
    assert "train loss: step" in capsys.readouterr().out
    run = json.loads((tmp_path / "sb" / "run.json").read_text())
    assert run["config"]["sbo"] is False and run["objective"] == "spanbert"
    assert json.loads((tmp_path / "ww" / "run.json").read_text())["config"]["whole_word"] is True
    model = torch.load(latest_checkpoint(tmp_path / "el") / "model.pt", weights_only=True)
    assert model["generator.project.weight"].shape == (32, 64)  # half the tiny preset's width
    yaml = tmp_path / "train.yaml"
    yaml.write_text("objective: sop\nsteps: 2\nseq_len: 32\nmlm_rate: 0.2\nxlnet_k: 3\ngenerator_ratio: 0.5\n")
    cfg = load_train_config(yaml, {"data": str(out), "out": str(tmp_path / "sop")})
    assert (cfg.objective, cfg.mlm_rate, cfg.xlnet_k, cfg.generator_ratio) == ("sop", 0.2, 3, 0.5)
    yaml.write_text("objective: xlnet\nsteps: 2\nxlnet_k: 1\n")
    with pytest.raises(ConfigError, match="xlnet_k"):
        load_train_config(yaml, {"data": str(out), "out": str(tmp_path / "x")})


def test_sentence_pairs_need_the_objective_specials(code_build, tmp_path):
    out, _ = code_build  # built without tokenizer.objective_specials
    with pytest.raises(ConfigError, match="objective_specials"):
        train(config(out, tmp_path, objective="nsp", steps=1, **settings()))
