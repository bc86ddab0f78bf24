"""Every error of the `strata` command: a non-zero exit, one to three lines naming the key,
path or reason, no traceback (unless --debug), run through the real command."""

import json
import pickle
import shutil

import yaml

from strata_command import assert_clear_error, strata


def _jsonl_config(tmp_path, lines, **extra):
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    config = {"sources": [{"name": "web", "format": "jsonl", "paths": [str(tmp_path / "in.jsonl")], "category": "Web"}]}
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump({**config, **extra}))
    return path


def test_out_naming_an_existing_file_is_refused_before_anything_runs(tmp_path):
    config = _jsonl_config(tmp_path, [json.dumps({"text": "x"})])
    (tmp_path / "out").write_text("my notes")
    result = strata("build", str(config), "--out", str(tmp_path / "out"), beam=True)
    assert_clear_error(result, 1, f"--out {tmp_path / 'out'}", "not a folder")
    assert (tmp_path / "out").read_text() == "my notes"


def test_a_config_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("seed: 1\n# café\n".encode("latin-1"))
    assert_clear_error(strata("build", str(path), "--out", str(tmp_path / "out")), 2, str(path), "not UTF-8")


def test_a_deeply_nested_config_is_refused_without_a_recursion_traceback(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert_clear_error(strata("build", str(path), "--out", str(tmp_path / "out")), 2, str(path), "nested more than")
    assert_clear_error(strata("train", "--config", str(path)), 2, str(path), "nested more than")


def test_debug_shows_the_traceback(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    result = strata("--debug", "build", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode != 0 and "Traceback" in result.stderr and "ConfigError" in result.stderr


def test_a_vocabulary_too_small_for_the_fixed_pieces_fails_before_the_build_starts(tmp_path):
    config = _jsonl_config(tmp_path, [json.dumps({"text": "x"})], tokenizer={"vocab_size": 200})
    result = strata("build", str(config), "--out", str(tmp_path / "out"), beam=True)
    assert_clear_error(result, 2, "tokenizer.vocab_size: 200 is too small", "at least 263")
    assert not (tmp_path / "out").exists()


def test_a_vocabulary_too_small_for_the_corpus_names_the_key_and_the_minimum(shard_build, tmp_path):
    out, manifest = shard_build
    copy = tmp_path / "out"
    shutil.copytree(out, copy)  # its curate stage is kept: only the tokenizer runs
    config = tmp_path / "build.yaml"
    config.write_text(yaml.safe_dump({**manifest["config"], "tokenizer": {"vocab_size": 300}}))
    result = strata("build", str(config), "--out", str(copy), beam=True)
    message = assert_clear_error(result, 2, "tokenizer.vocab_size: 300 is too small", "this corpus", only_lines=False)
    minimum = int(message.split("at least ")[1].split()[0])
    assert minimum > 300
    # the minimum is what sentencepiece needs: a build with it trains
    config.write_text(yaml.safe_dump({**manifest["config"], "tokenizer": {"vocab_size": minimum}}))
    assert strata("build", str(config), "--out", str(copy), "--until", "tokenizer", beam=True).returncode == 0


def test_when_every_record_is_bad_the_build_ends_with_the_quarantine_written(tmp_path):
    import pyarrow.dataset as ds

    config = _jsonl_config(tmp_path, ['{"text": "unterminated', "[1, 2]", '{"text": 12}'])
    out = tmp_path / "out"
    result = strata("build", str(config), "--out", str(out), beam=True)
    assert_clear_error(result, 1, "no usable records: 3 quarantined", f"{out}/quarantine", only_lines=False)
    reasons = sorted(ds.dataset(out / "quarantine").to_table().column("reason").to_pylist())
    assert reasons == ["invalid_json", "not_an_object", "text_not_string"]


def test_a_checkpoint_replaced_by_a_pickle_is_refused_in_one_line(shard_build, tmp_path):
    out, _ = shard_build
    run = tmp_path / "run"
    folder = run / "checkpoints" / "step-00000001"
    folder.mkdir(parents=True)
    (run / "checkpoints" / "latest").write_text("step-00000001")
    planted = tmp_path / "planted"

    class Payload:
        def __reduce__(self):
            return (open, (str(planted), "w"))

    for name in ("model.pt", "train.pt"):
        (folder / name).write_bytes(pickle.dumps({"state": Payload()}))
    result = strata("train", f"--data={out}", f"--out={run}", "--objective=clm", "--model=tiny", "--seq-len=32",
                    "--batch-size=2", "--steps=2", "--resume")
    assert_clear_error(result, 1, str(folder / "model.pt"), "refused")
    assert not planted.exists()


def test_a_build_that_fails_its_checks_leaves_the_earlier_build_intact_and_verifiable(shard_build, tmp_path):
    out, manifest = shard_build
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    config = tmp_path / "build.yaml"
    sources = [dict(s, paths=[str(tmp_path / "moved-away" / "*.jsonl")]) for s in manifest["config"]["sources"]]
    config.write_text(yaml.safe_dump({**manifest["config"], "sources": sources}))
    result = strata("build", str(config), "--out", str(copy), beam=True)
    assert_clear_error(result, 2, "sources[0] (pile).paths", "matched no files")
    assert {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()} == before
    verified = strata("verify", str(copy))
    assert verified.returncode == 0, verified.stdout + verified.stderr
