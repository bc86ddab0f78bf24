"""`strata build`: curate -> tokenizer -> shards -> manifest.

The manifest is removed first and written last: at any moment OUT either has a manifest
that describes complete, checksummed output, or none. Running the same command again
resumes at stage granularity: a stage whose record (curate.json, tokenizer/tokenizer.json)
was written by a run with the same inputs and the same settings for that stage is kept;
the stage that was interrupted, and every stage after it, runs again from its start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile

import fsspec

from strata.config import BuildConfig, ConfigError
from strata.manifests.manifest import MANIFEST, build_manifest, write_manifest
from strata.manifests.mixture import resolve_shares
from strata.pipeline.curate import CURATE_SUMMARY, run_curate
from strata.pipeline.read import discover_inputs
from strata.pipeline.shard import run_shards
from strata.storage import exists, join, remove, write_bytes_atomic
from strata.tokenize.encoders import hf_tokenizer_files, is_sentencepiece, load_encoder
from strata.tokenize.spm_proto import model_type
from strata.tokenize.trainer import sample_curated_text, train_tokenizer

log = logging.getLogger("strata.build")

BUILD_STAGES = ("curate", "tokenizer", "shards")
TOKENIZER_DIR = "tokenizer"
TOKENIZER_MODEL = "tokenizer/tokenizer.model"
TOKENIZER_RECORD = "tokenizer/tokenizer.json"
HF_TOKENIZER = "tokenizer/hf/tokenizer.json"  # a given HF tokenizer, with its config beside it
HF_TOKENIZER_CONFIG = "tokenizer/hf/tokenizer_config.json"
CURATE_SECTIONS = ("sources", "validate", "normalize", "filters", "dedup", "output")


def settings_hash(config: BuildConfig, sections: tuple[str, ...]) -> str:
    """sha256 of the config sections a stage depends on."""
    data = config.to_dict()
    canonical = json.dumps({k: data[k] for k in sections}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _read_json(uri: str) -> dict | None:
    if not exists(uri):
        return None
    with fsspec.open(uri, "rb") as f:
        return json.loads(f.read())


def _curate(config: BuildConfig, out: str, beam_args: list[str]) -> dict:
    previous = _read_json(join(out, CURATE_SUMMARY))
    key = settings_hash(config, CURATE_SECTIONS)
    if previous and previous.get("settings_hash") == key:
        inputs = [
            {"source": f.source, "uri": f.uri, "relpath": f.relpath, "size": f.size, "fingerprint": f.fingerprint}
            for f in discover_inputs(config.sources)
        ]
        if inputs == previous["inputs"]:
            log.info("curate: kept from the previous run (same inputs and settings)")
            return previous
    return run_curate(config, out, beam_args, settings_hash=key)


def _tokenizer(config: BuildConfig, out: str, curate: dict) -> dict:
    """Train a tokenizer on a mixture-weighted sample of the curated text, or take the
    configured one; either way OUT/tokenizer/ holds the model and its record."""
    cfg = config.tokenizer
    key = hashlib.sha256(
        json.dumps([cfg.model_dump(mode="json"), curate["settings_hash"], config.seed], sort_keys=True).encode()
    ).hexdigest()
    previous = _read_json(join(out, TOKENIZER_RECORD))
    if previous and previous.get("settings_hash") == key:
        log.info("tokenizer: kept from the previous run")
        return previous
    remove(join(out, TOKENIZER_DIR))
    if cfg.model:
        record = _given_tokenizer(cfg.model, out)
    else:
        # Curated bytes stand in for tokens, which are not known before the tokenizer.
        shares = resolve_shares(config.categories, {c: v["bytes"] for c, v in curate["categories"].items()})
        with tempfile.TemporaryDirectory(prefix="strata-tokenizer-") as scratch:
            sample_path = os.path.join(scratch, "sample.txt")
            sample = sample_curated_text(join(out, "curated"), shares, cfg.sample_bytes, config.seed, sample_path)
            record = train_tokenizer(
                sample_path,
                join(out, TOKENIZER_DIR),
                vocab_size=cfg.vocab_size,
                model_type=cfg.model_type,
                user_defined_symbols=cfg.user_defined_symbols,
                seed=config.seed,
                sample=sample,
            )
        record["sample"].pop("path")  # a temporary file
        record["trained"] = True
        with fsspec.open(join(out, TOKENIZER_MODEL), "rb") as f:
            model_bytes = f.read()
        record.update(path=TOKENIZER_MODEL, model_type=model_type(model_bytes))
    record["settings_hash"] = key
    write_bytes_atomic(join(out, TOKENIZER_RECORD), (json.dumps(record, indent=2) + "\n").encode())
    return record


def _given_tokenizer(model: str, out: str) -> dict:
    """Copy a given tokenizer into OUT/tokenizer/: a sentencepiece .model as tokenizer.model,
    a HF tokenizer.json (with its tokenizer_config.json, if any) into tokenizer/hf/."""
    if is_sentencepiece(model):
        files, path = [(model, TOKENIZER_MODEL)], TOKENIZER_MODEL
    else:
        json_file, config_file = hf_tokenizer_files(model)
        files = [(json_file, HF_TOKENIZER)] + ([(config_file, HF_TOKENIZER_CONFIG)] if config_file else [])
        path = HF_TOKENIZER
    for source, target in files:
        with fsspec.open(source, "rb") as src:
            write_bytes_atomic(join(out, target), src.read())
    with fsspec.open(join(out, path), "rb") as f:
        model_bytes = f.read()
    encoder = load_encoder(join(out, path))
    if encoder.special_ids["eos"] is None:
        raise ConfigError(f"tokenizer.model: {model} has no EOS token, which ends every document in the shards; "
                          "name it (eos_token) in its tokenizer_config.json")
    return {
        "trained": False,
        "source_model": model,
        "path": path,
        "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
        "special_ids": encoder.special_ids,
        "vocab_size": encoder.vocab_size,
        "model_type": model_type(model_bytes) if is_sentencepiece(model) else hf_model_type(model_bytes),
    }


def hf_model_type(tokenizer_json: bytes) -> str:
    """'hf-bpe', 'hf-unigram', 'hf-wordpiece', ... from a tokenizer.json."""
    return "hf-" + str(json.loads(tokenizer_json).get("model", {}).get("type", "unknown")).lower()


def run_build(config: BuildConfig, out: str, until: str = "shards", beam_args: list[str] | None = None) -> dict:
    """Run the build up to `until`; returns the manifest (or the last stage's record)."""
    beam_args = beam_args or []
    remove(join(out, MANIFEST))
    curate = _curate(config, out, beam_args)
    if until == "curate":
        return curate
    tokenizer = _tokenizer(config, out, curate)
    if until == "tokenizer":
        return tokenizer
    shards = run_shards(config, out, join(out, tokenizer["path"]), beam_args)
    manifest = build_manifest(config, curate, _manifest_tokenizer(tokenizer), shards)
    write_manifest(out, manifest)
    return manifest


def _manifest_tokenizer(record: dict) -> dict:
    return {
        "path": record["path"],
        "record": TOKENIZER_RECORD,
        "sha256": record["model_sha256"],
        "type": record["model_type"],
        "vocab_size": record["vocab_size"],
        "special_ids": record["special_ids"],
        "trained": record["trained"],
    }
