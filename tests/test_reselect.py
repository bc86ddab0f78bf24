"""Re-selection without recomputation: a rebuild that changes only thresholds keeps the
annotation and gives byte for byte what a from-scratch build with the new thresholds gives."""

import hashlib
import json
import os
import random
import shutil

import pyarrow.dataset as ds
import pytest

from strata.config import FilterSet, GopherQualityConfig, GopherRepetitionConfig, parse_config
from strata.pipeline.attributes import FINAL, LINES, READ, select_document
from strata.pipeline.build import run_build
from strata.pipeline.console import Console
from strata.pipeline.curate_steps import settings_hashes
from strata.pipeline.heuristics import heuristic_attributes
from strata.pipeline.progress import Progress

from conftest import IN_MEMORY
from corpus import prose

DUP_NGRAMS = GopherRepetitionConfig().duplicate_ngram_max_char_fraction
SMALL = {"tokenizer": {"vocab_size": 400}, "shards": {"block_tokens": 256, "val_fraction": 0.1, "target_bytes": 20000}}


def _with(config: dict, **sections) -> dict:
    config = json.loads(json.dumps(config))
    for name, values in sections.items():
        config[name] = _merged(config.get(name, {}), values)
    return config


def _merged(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merged(merged.get(key, {}), value) if isinstance(value, dict) else value
    return merged


def _build(config: dict, out, tmp_path) -> tuple[dict, list[str]]:
    """The manifest and the lines the build printed."""
    log = tmp_path / f"build-{len(list(tmp_path.glob('build-*.log')))}.log"
    with open(log, "w") as f:
        manifest = run_build(parse_config(config), str(out), "shards", IN_MEMORY, Progress(Console(f.fileno())))
    return manifest, log.read_text().splitlines()


def _shard_digests(out, manifest) -> dict:
    return {
        s["path"]: hashlib.sha256((out / s["path"]).read_bytes()).hexdigest()
        for c in manifest["categories"].values() for s in c["shards"]
    }


def _attributes(out):
    return ds.dataset(sorted(str(p) for p in (out / "attributes").glob("part-*.parquet")), format="parquet").to_table()


def annotate_settings_hash(config):
    return settings_hashes(config)[0]


def select_settings_hash(config):
    return settings_hashes(config)[1]


def _copy_of(out, tmp_path):
    """The first build's OUT, copied: each test rebuilds its own."""
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    return copy


def _comparable(manifest: dict) -> dict:
    return {k: v for k, v in manifest.items() if k != "strata_commit"}


@pytest.fixture(scope="module")
def first_build(corpus_config_dict, tmp_path_factory):
    config = _with(corpus_config_dict, **SMALL)
    out = tmp_path_factory.mktemp("reselect")
    manifest, lines = _build(config, out, tmp_path_factory.mktemp("logs"))
    return config, out, manifest, lines


def test_a_first_build_reuses_nothing_and_keeps_every_attribute(first_build):
    _, out, manifest, lines = first_build
    assert "stages reused: none | ran: annotate, select, tokenizer, shards" in lines
    attributes = _attributes(out)
    validated = attributes.filter(ds.field("fate").is_null())
    assert validated.num_rows == manifest["records"] - manifest["fates"]["quarantined"]
    for column in ("language", "language_score", "gq_words", "gq_stop_words", "gopher_repetition", "content_hash",
                   "minhash", "pii_email"):
        assert column in attributes.column_names
    # computed for every document, also those the language rules drop
    assert validated.column("gq_words").null_count == 0
    assert validated.column("minhash").null_count == 0
    # the planted near-duplicates share MinHash bands; selection regroups only those
    shared = ds.dataset(str(out / "attributes" / "shared_bands.parquet")).to_table()
    assert shared.num_rows > 0 and set(shared.column_names) == {"band_key", "node"}


def test_a_gopher_threshold_change_reselects_and_equals_a_from_scratch_build(first_build, tmp_path):
    config, out, first, _ = first_build
    out = _copy_of(out, tmp_path)
    words = sorted(w for w in _attributes(out).column("gq_words").to_pylist() if w)
    stricter = _with(config, filters={"gopher_quality": {"min_words": words[len(words) // 2]},
                                      "gopher_repetition": {"max_duplicate_line_fraction": 0.1}})
    assert annotate_settings_hash(parse_config(stricter)) == annotate_settings_hash(parse_config(config))
    assert select_settings_hash(parse_config(stricter)) != select_settings_hash(parse_config(config))
    rebuilt, lines = _build(stricter, out, tmp_path)
    assert "stages reused: annotate | ran: select, tokenizer, shards" in lines
    assert rebuilt["fates"] != first["fates"]  # the thresholds decided differently
    assert rebuilt["stages"]["filter"]["dropped"].get("gopher_quality:min_words", 0) > \
        first["stages"]["filter"]["dropped"].get("gopher_quality:min_words", 0)

    scratch_out = tmp_path / "scratch"
    scratch, scratch_lines = _build(stricter, scratch_out, tmp_path)
    assert "stages reused: none | ran: annotate, select, tokenizer, shards" in scratch_lines
    assert _shard_digests(out, rebuilt) == _shard_digests(scratch_out, scratch)
    assert _comparable(rebuilt) == _comparable(scratch)
    for folder in ("curated", "lineage", "rejected"):  # the curate output too, file by file
        ours = {p.relative_to(out): p.read_bytes() for p in (out / folder).rglob("*.parquet")}
        theirs = {p.relative_to(scratch_out): p.read_bytes() for p in (scratch_out / folder).rglob("*.parquet")}
        assert ours == theirs


def test_an_attribute_setting_change_annotates_again(first_build, tmp_path):
    config, out, _, _ = first_build
    out = _copy_of(out, tmp_path)
    other_stop_words = _with(config, filters={"gopher_quality": {"stop_words": {"en": ["the", "and", "of"]}}})
    assert annotate_settings_hash(parse_config(other_stop_words)) != annotate_settings_hash(parse_config(config))
    _, lines = _build(other_stop_words, out, tmp_path)
    assert "stages reused: none | ran: annotate, select, tokenizer, shards" in lines


def test_the_same_build_again_reuses_curate_and_tokenizer(first_build, tmp_path):
    config, out, _, _ = first_build
    _, lines = _build(config, _copy_of(out, tmp_path), tmp_path)
    assert "stages reused: annotate, select, tokenizer | ran: shards" in lines


@pytest.mark.parametrize("change", [
    {"filters": {"language": {"min_score": 0.9}}},
    {"filters": {"per_category": {"Pile-CC": {"gopher_quality": {"min_words": 80}}}}},
    {"filters": {"gopher_repetition": {"duplicate_ngram_max_char_fraction": {**DUP_NGRAMS, 5: 0.05}}}},
    {"dedup": {"near": {"threshold": 0.9}, "paragraph": {"enabled": True}}},
    {"output": {"write_rejected": False}},
])
def test_thresholds_and_category_rules_leave_the_annotation_settings_alone(corpus_config_dict, change):
    before = parse_config(corpus_config_dict)
    after = parse_config(_with(corpus_config_dict, **change))
    assert annotate_settings_hash(after) == annotate_settings_hash(before)
    assert select_settings_hash(after) != select_settings_hash(before)


@pytest.mark.parametrize("change", [
    {"filters": {"c4": {"min_words_per_line": 5}}},
    {"filters": {"per_category": {"Pile-CC": {"pii": {"enabled": False}}}}},
    {"filters": {"gopher_repetition": {"duplicate_ngram_max_char_fraction": {**DUP_NGRAMS, 11: 0.1}}}},
    {"dedup": {"near": {"ngram": 4}}},
    {"normalize": {"nfc": False}},
])
def test_what_changes_attributes_changes_the_annotation_settings(corpus_config_dict, change):
    before = parse_config(corpus_config_dict)
    after = parse_config(_with(corpus_config_dict, **change))
    assert annotate_settings_hash(after) != annotate_settings_hash(before)


def test_eval_file_contents_are_in_both_fingerprints(corpus_config_dict, tmp_path):
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text(json.dumps({"text": "a question about the river and the mountain village"}) + "\n")
    config = parse_config(_with(corpus_config_dict, decontaminate={"sets": [{"name": "qa", "paths": [str(eval_file)]}]}))
    annotate, select = annotate_settings_hash(config), select_settings_hash(config)
    stat = os.stat(eval_file)
    eval_file.write_text(json.dumps({"text": "a question about the forest and the silver island!!"}) + "\n")
    os.utime(eval_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same path, size and time: only contents differ
    assert os.stat(eval_file).st_size == stat.st_size
    assert annotate_settings_hash(config) != annotate
    assert select_settings_hash(config) != select


def _annotated(text: str, language: str, **found) -> dict:
    """A document's attributes as annotation would store them (no Beam)."""
    doc = {"fate": None, "language": language, "language_score": 0.99, "quality_score": None,
           "decontaminate_drop": None, "contaminated_set": None, "contaminated_ngrams": None,
           "contaminated_chars": None, "content_hash": "c0ffee", "pii_email": 1, "pii_ip": 0, "pii_phone": 0,
           "text_bytes": 300, "bytes_lines": 200, "bytes_final": 100}
    doc.update(heuristic_attributes(text, FilterSet(), language), **found)
    return doc


def test_selection_replays_the_stages_in_order_and_empties_what_a_dropped_document_never_reached():
    text = prose(random.Random(7), 12)
    contaminated = {"decontaminate_drop": True, "contaminated_set": "qa", "contaminated_ngrams": 3,
                    "contaminated_chars": 200}

    wrong_language = _annotated(text, "fr", **contaminated)
    assert select_document(wrong_language, FilterSet()) == READ
    assert (wrong_language["stage"], wrong_language["reason"]) == ("language", "language:not_in_languages")
    assert wrong_language["language"] == "fr" and wrong_language["text_bytes"] == 300
    assert wrong_language["contaminated_set"] is None and wrong_language["content_hash"] is None
    assert wrong_language["pii_email"] is None

    found_in_eval = _annotated(text, "en", **contaminated)
    assert select_document(found_in_eval, FilterSet()) == LINES
    assert (found_in_eval["stage"], found_in_eval["reason"]) == ("decontaminate", "contaminated:qa")
    assert found_in_eval["contaminated_ngrams"] == 3 and found_in_eval["text_bytes"] == 200
    assert found_in_eval["content_hash"] is None

    kept = _annotated(text, "en")
    assert select_document(kept, FilterSet()) == FINAL
    assert kept["fate"] is None and kept["text_bytes"] == 100 and kept["content_hash"] == "c0ffee"

    strict = FilterSet(gopher_quality=GopherQualityConfig(min_words=kept["gq_words"] + 1))
    too_short = _annotated(text, "en")
    assert select_document(too_short, strict) == READ
    assert too_short["reason"] == "gopher_quality:min_words"


def test_curate_runs_again_when_an_eval_files_contents_change(corpus_config_dict, planted, tmp_path):
    eval_file = tmp_path / "eval.jsonl"
    passage = " ".join(planted["documents"][0]["text"].split()[:30])  # in the corpus
    eval_file.write_text(json.dumps({"text": passage}) + "\n")
    config = parse_config(_with(corpus_config_dict, decontaminate={"sets": [{"name": "qa", "paths": [str(eval_file)]}]}))
    out = tmp_path / "out"

    def curate():
        log = tmp_path / "curate.log"
        with open(log, "w") as f:
            summary = run_build(config, str(out), "curate", IN_MEMORY, Progress(Console(f.fileno())))
        return summary, log.read_text().splitlines()

    first, lines = curate()
    assert "stages reused: none | ran: annotate, select" in lines and first["decontamination"]["qa"]
    _, lines = curate()
    assert "stages reused: annotate, select | ran: none" in lines
    eval_file.write_text(json.dumps({"text": " ".join(["unrelated"] * 30)}) + "\n")  # same path, new contents
    again, lines = curate()
    assert "stages reused: none | ran: annotate, select" in lines
    assert again["decontamination"] == {}


def test_near_dup_clusters_found_in_beam_rounds_equal_those_found_in_one_worker(first_build, tmp_path, monkeypatch):
    """A build whose candidate graph is small finds clusters in one worker; a big one by
    large-star/small-star rounds. Both select the same documents, file for file."""
    from strata.pipeline import select
    from strata.pipeline.read import discover_inputs

    config, out, _, _ = first_build
    assert select.small_near_dup_graph(parse_config(config), str(out))
    out = _copy_of(out, tmp_path)
    monkeypatch.setattr(select, "SMALL_GRAPH_EDGES", 0)
    parsed = parse_config(config)
    assert not select.small_near_dup_graph(parsed, str(out))
    before = {p.relative_to(out): p.read_bytes() for folder in ("curated", "lineage", "rejected")
              for p in (out / folder).rglob("part-*.parquet")}
    select.run_select(parsed, str(out), IN_MEMORY, settings_hashes(parsed)[1], discover_inputs(parsed.sources))
    after = {p.relative_to(out): p.read_bytes() for folder in ("curated", "lineage", "rejected")
             for p in (out / folder).rglob("part-*.parquet")}
    assert after == before
    lineage = ds.dataset(sorted(str(p) for p in (out / "lineage").glob("part-*.parquet"))).to_table().to_pylist()
    assert any(row["reason"] == "near_duplicate" for row in lineage)  # clusters were found
