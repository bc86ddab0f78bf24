"""The `strata` command line: config errors, and the quality classifier from training to a build."""

import json
import random

import pyarrow.dataset as ds
import yaml

from strata.cli import main

from corpus import prose


def test_config_error_exits_2_naming_file_and_key(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"sources": [{"name": "x", "format": "jsonl", "paths": ["*.jsonl"], "category": "A"}], "dedup": {"near": {"rows": "six"}}}))
    assert main(["build", str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(config) in err and "dedup.near.rows" in err
    assert not (tmp_path / "out").exists()


def _spam(rng):
    words = ["BUY", "cheap", "pills", "now", "$$$", "click", "here", "FREE", "winner", "!!!", "casino", "bonus"]
    return " ".join(rng.choice(words) for _ in range(rng.randint(60, 120)))


def test_quality_classifier_trained_then_used_by_a_build(tmp_path, capsys):
    rng = random.Random(3)
    (tmp_path / "good.txt").write_text("\n".join(prose(rng).replace("\n", " ") for _ in range(300)))
    (tmp_path / "bad.txt").write_text("\n".join(_spam(rng) for _ in range(300)))
    model = tmp_path / "quality.bin"
    assert main(["quality", "train", "--positive", str(tmp_path / "good.txt"), "--negative", str(tmp_path / "bad.txt"),
                 "--out", str(model), "--threads", "1", "--bucket", "20000"]) == 0
    record = json.loads((tmp_path / "quality.bin.json").read_text())
    assert record["documents"] == {"positive": 300, "negative": 300}
    capsys.readouterr()

    docs = [{"text": prose(rng)} for _ in range(20)] + [{"text": _spam(rng)} for _ in range(10)]
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    config = {
        "sources": [{"name": "web", "format": "jsonl", "paths": ["in.jsonl"], "category": "Web"}],
        # only the classifier judges here
        "filters": {
            "gopher_quality": {"enabled": False}, "gopher_repetition": {"enabled": False},
            "c4": {"enabled": False}, "language": {"enabled": False},
            "quality": {"enabled": True, "model": "quality.bin", "min_score": 0.5},
        },
    }
    (tmp_path / "build.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    beam = ["--", "--direct_running_mode=in_memory", "--direct_num_workers=1"]
    assert main(["build", str(tmp_path / "build.yaml"), "--out", str(out), "--until", "curate", *beam]) == 0
    assert "curated 20 of 30 records" in capsys.readouterr().out
    lineage = ds.dataset(out / "lineage").to_table().to_pylist()
    assert all(r["quality_score"] is not None for r in lineage)
    dropped = [r for r in lineage if r["fate"] == "dropped"]
    assert len(dropped) == 10 and {r["reason"] for r in dropped} == {"quality:low_score"}
    assert all(r["quality_score"] < 0.5 for r in dropped)


def test_tokenizer_train_and_stats_commands(built, tmp_path, capsys):
    out, _ = built
    assert main(["tokenizer", "train", "--input", str(out / "curated"), "--out", str(tmp_path / "tok"),
                 "--vocab-size", "400", "--model-type", "unigram"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["special_ids"]["eos"] == 3 and (tmp_path / "tok" / "tokenizer.model").exists()
    assert main(["tokenizer", "stats", str(tmp_path / "tok" / "tokenizer.model"), "--input", str(out / "curated"), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert set(stats["categories"]) == {"ArXiv", "Pile-CC", "Books"}
    assert 0 < stats["all"]["tokens_per_byte"] < 1
