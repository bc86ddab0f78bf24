"""A tokenizer model named in the config is loaded as a sentencepiece model before it is
copied into OUT: a file of another kind is a config error naming the key, and nothing of it
reaches OUT (an earlier build there stays as it was)."""

import hashlib
import os
import shutil

import pytest
import yaml

from strata.cli import main

from conftest import IN_MEMORY


def build_command(tmp_path, config: dict, out, *extra) -> list[str]:
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump(config))
    return ["build", str(path), "--out", str(out), *extra, "--", *IN_MEMORY]


@pytest.mark.parametrize("model", ["/etc/passwd", "text", "empty", "folder", "missing", "/dev/zero"])
def test_a_model_that_is_not_sentencepiece_is_refused_before_anything_is_copied(
    shard_build, corpus_config_dict, tmp_path, capsys, model
):
    files = {"text": b"just some text\n", "empty": b""}
    if model in files:
        (tmp_path / model).write_bytes(files[model])
    elif model == "folder":
        (tmp_path / model).mkdir()
    path = model if model.startswith("/") else str(tmp_path / model)
    built, _ = shard_build
    out = tmp_path / "out"
    shutil.copytree(built, out)  # a complete earlier build
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*") if p.is_file()}
    config = dict(corpus_config_dict, tokenizer={"model": path})
    code = main(build_command(tmp_path, config, out))
    err = capsys.readouterr().err
    assert code == 2 and f"tokenizer.model: {path}" in err and "Traceback" not in err
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*") if p.is_file()}
    assert after == before


def test_a_sentencepiece_model_is_copied_and_recorded(shard_build, corpus_config_dict, tmp_path, capsys):
    built, manifest = shard_build
    model = built / "tokenizer" / "tokenizer.model"
    config = dict(corpus_config_dict, tokenizer={"model": str(model)})
    out = tmp_path / "out"
    assert main(build_command(tmp_path, config, out, "--until", "tokenizer")) == 0
    assert (out / "tokenizer" / "tokenizer.model").read_bytes() == model.read_bytes()
    assert f"({manifest['tokenizer']['type']}, {manifest['tokenizer']['vocab_size']} pieces)" in capsys.readouterr().out
    assert os.path.exists(out / "tokenizer" / "tokenizer.json")
