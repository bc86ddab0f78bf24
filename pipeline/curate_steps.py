"""Curate as two steps, each with its own settings fingerprint.

annotate (annotate.py) depends on the inputs and on the settings that change what is
measured or written into a document: sources, validation, normalization, language and
quality models, stop-word lists and n-gram sizes, C4's line rules, PII redaction,
decontamination (with the eval files' contents) and the MinHash parameters. select
(select.py) depends on all of curate's settings; what it adds are the thresholds: the
language rules, Gopher's thresholds and switches, the quality threshold, exact dedup, the
near-dup threshold, verification and rounds, paragraph dedup and the output options.

A build keeps a step whose record (annotate.json, curate.json) holds the same inputs and
settings fingerprint, so changing only thresholds reruns selection (and the tokenizer and
shards after it) on the stored attributes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging

from strata.config import BuildConfig
from strata.manifests.layout import ANNOTATE_RECORD, CURATE_RECORD, MANIFEST
from strata.pipeline.annotate import run_annotate
from strata.pipeline.curate import input_records
from strata.pipeline.decontaminate import eval_files_fingerprint
from strata.pipeline.progress import Progress
from strata.pipeline.read import InputFile, discover_inputs
from strata.pipeline.select import run_select
from strata.storage import exists, join, open_file, remove

log = logging.getLogger("strata.curate")

CURATE_SECTIONS = ("sources", "validate", "normalize", "filters", "dedup", "decontaminate", "output")

# Per filter family, the settings that only decide on what annotation measured.
FAMILY_THRESHOLDS = {
    "language": ("enabled", "languages", "min_score"),
    "gopher_quality": ("enabled", "min_words", "max_words", "min_mean_word_length", "max_mean_word_length",
                       "max_symbol_word_ratio", "max_bullet_lines_fraction", "max_ellipsis_lines_fraction",
                       "min_alpha_words_fraction", "min_stop_words"),
    "gopher_repetition": ("enabled", "max_duplicate_line_fraction", "max_duplicate_paragraph_fraction",
                          "max_duplicate_line_char_fraction", "max_duplicate_paragraph_char_fraction"),
    "quality": ("min_score",),
}
# n -> maximum: annotation measures every n, selection compares with the maxima.
MEASURED_SIZES = ("top_ngram_max_char_fraction", "duplicate_ngram_max_char_fraction")
NEAR_DEDUP_THRESHOLDS = ("threshold", "verify", "max_rounds")


def _without_thresholds(filter_set: dict) -> dict:
    """A (possibly partial) FilterSet dict without its thresholds; families left empty go."""
    stripped = {}
    for family, settings in filter_set.items():
        settings = {k: v for k, v in settings.items() if k not in FAMILY_THRESHOLDS.get(family, ())}
        for name in MEASURED_SIZES:
            if name in settings:
                settings[name] = sorted(settings[name])
        if settings:
            stripped[family] = settings
    return stripped


def annotation_settings(config: BuildConfig) -> dict:
    """The curate settings annotation depends on."""
    data = copy.deepcopy({k: config.to_dict()[k] for k in CURATE_SECTIONS})
    per_category = data["filters"].pop("per_category")
    data["filters"] = _without_thresholds(data["filters"])
    data["filters"]["per_category"] = {c: s for c, o in sorted(per_category.items()) if (s := _without_thresholds(o))}
    near = data["dedup"]["near"]
    data["dedup"] = {"near": {k: v for k, v in near.items() if k not in NEAR_DEDUP_THRESHOLDS}}
    del data["output"]
    return data


def _fingerprint(settings: dict, eval_files: list[dict] | None) -> str:
    """sha256 of `settings`, and of the eval files' contents when there are any."""
    if eval_files is not None:
        settings = {**settings, "eval_files": eval_files}
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def settings_hashes(config: BuildConfig) -> tuple[str, str]:
    """The settings fingerprints of annotate (annotate.json's) and of select, which covers
    everything curate's output depends on (curate.json's); both cover the eval files' contents."""
    eval_files = eval_files_fingerprint(config.decontaminate) if config.decontaminate is not None else None
    curate_settings = {k: config.to_dict()[k] for k in CURATE_SECTIONS}
    return _fingerprint(annotation_settings(config), eval_files), _fingerprint(curate_settings, eval_files)


def read_json(uri: str) -> dict | None:
    """A stage's JSON record, or None when there is none."""
    if not exists(uri):
        return None
    with open_file(uri, "rb") as f:
        return json.loads(f.read())


def _same(record: dict | None, settings_hash: str, inputs: list[dict]) -> bool:
    return bool(record) and record.get("settings_hash") == settings_hash and record.get("inputs") == inputs


def curate(config: BuildConfig, out: str, files: list[InputFile], beam_args: list[str],
           progress: Progress | None = None) -> tuple[dict, list[str]]:
    """Curate into `out`, keeping what a previous run did with the same inputs and
    settings; returns curate.json's summary and the steps kept ('annotate', 'select')."""
    inputs = input_records(files)
    annotate_hash, select_hash = settings_hashes(config)
    previous = read_json(join(out, CURATE_RECORD))
    if _same(previous, select_hash, inputs):
        log.info("curate: kept from the previous run (same inputs and settings)")
        return previous, ["annotate", "select"]
    remove(join(out, MANIFEST))  # what follows rewrites what it describes
    annotated = read_json(join(out, ANNOTATE_RECORD))
    if _same(annotated, annotate_hash, inputs):
        log.info("annotate: kept from the previous run (same inputs and attribute settings)")
        return run_select(config, out, beam_args, select_hash, files), ["annotate"]
    annotated = run_annotate(config, out, beam_args, annotate_hash, files, progress)
    return run_select(config, out, beam_args, select_hash, files, annotated["seconds"]), []


def run_curate(config: BuildConfig, out: str, beam_args: list[str] | None = None,
               files: list[InputFile] | None = None) -> dict:
    """Annotate and select into `out` from scratch; returns curate.json's summary."""
    files = discover_inputs(config.sources) if files is None else files
    annotate_hash, select_hash = settings_hashes(config)
    annotated = run_annotate(config, out, beam_args or [], annotate_hash, files)
    return run_select(config, out, beam_args or [], select_hash, files, annotated["seconds"])
