"""`strata build`: preflight -> curate -> tokenizer -> shards -> manifest.

Nothing in OUT changes before the preflight has passed (config, inputs, OUT); then the
build holds OUT's lock (OUT/build.lock, manifests/lock.py) until it ends. An earlier
build in OUT then stays whole and verifiable until the first stage that rewrites its files
starts: that stage withdraws the old manifest first, and the new one is written last. So
at any moment OUT either has a manifest that describes complete, checksummed output, or
none. Running the same command again resumes at stage granularity: a stage whose record
(annotate.json, curate.json, tokenizer/tokenizer.json) was written by a run with the same
inputs and the same settings for that stage is kept (so a build that changes only
thresholds reselects from the stored attributes: curate_steps.py); the stage that was
interrupted, and every stage after it, runs again from its start, after the temporary
files a killed run left are removed. The build says which stages it kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time

from strata.config import BuildConfig, ConfigError
from strata.errors import BuildError
from strata.manifests.layout import (
    BUILD_LOCK,
    CURATE_RECORD,
    CURATED,
    HF_TOKENIZER,
    HF_TOKENIZER_CONFIG,
    MANIFEST,
    QUARANTINE,
    TOKENIZER_DIR,
    TOKENIZER_MODEL,
    TOKENIZER_RECORD,
)
from strata.manifests.lock import FolderLock
from strata.manifests.manifest import TokenizerEntry, build_manifest
from strata.manifests.mixture import resolve_shares
from strata.pipeline.curate_steps import curate, read_json
from strata.pipeline.preflight import preflight
from strata.pipeline.progress import Progress, curate_line, reuse_line, shards_line, tokenizer_line
from strata.pipeline.read import InputFile
from strata.pipeline.scratch import private_tempdir
from strata.pipeline.shard import run_shards
from strata.redact import redact_url
from strata.storage import join, open_file, remove, remove_leftovers, write_bytes_atomic
from strata.tokenize.encoders import HFTokenizerEncoder, hf_tokenizer_files, is_sentencepiece, load_encoder
from strata.tokenize.model_file import read_model_file
from strata.tokenize.specials import objective_pieces, with_control_pieces
from strata.tokenize.trainer import sample_curated_text, train_tokenizer

log = logging.getLogger("strata.build")

BUILD_STAGES = ("curate", "tokenizer", "shards")
TOKENIZER_SECTIONS = ("tokenizer", "seed")


def settings_hash(config: BuildConfig, sections: tuple[str, ...], upstream: str | None = None) -> str:
    """sha256 of the config sections a stage depends on and of the settings hash of the
    stage whose output it reads (`upstream`), if any."""
    data = config.to_dict()
    settings = {k: data[k] for k in sections} | ({"upstream": upstream} if upstream else {})
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_usable(curate: dict, out: str) -> None:
    """A build with no kept record ends here, once its quarantine and lineage are written."""
    fates = curate["fates"]
    if fates["kept"]:
        return
    raise BuildError(
        f"no usable records: {fates['quarantined']} quarantined, {fates['dropped']} dropped, "
        f"{fates['duplicate']} duplicates of {curate['records']}; see {redact_url(join(out, QUARANTINE))}/ "
        f"and {redact_url(join(out, CURATE_RECORD))}"
    )


def _tokenizer(config: BuildConfig, out: str, curated: dict, given_model: dict[str, bytes] | None) -> tuple[dict, bool]:
    """Train a tokenizer on a mixture-weighted sample of the curated text, or take the
    configured one (its files, already checked, in `given_model`); either way OUT/tokenizer/
    holds the model and its record. Returns the record and whether a previous run's was kept."""
    cfg = config.tokenizer
    key = settings_hash(config, TOKENIZER_SECTIONS, upstream=curated["settings_hash"])
    previous = read_json(join(out, TOKENIZER_RECORD))
    if previous and previous.get("settings_hash") == key:
        log.info("tokenizer: kept from the previous run")
        return previous, True
    remove(join(out, MANIFEST))
    remove(join(out, TOKENIZER_DIR))
    control_pieces = objective_pieces(cfg.sentinels) if cfg.objective_specials else []
    if cfg.model:
        record = _given_tokenizer(cfg.model, given_model, out, control_pieces)
    else:
        # Curated bytes stand in for tokens, which are not known before the tokenizer.
        shares = resolve_shares(config.categories, {c: v["bytes"] for c, v in curated["categories"].items()})
        with tempfile.TemporaryDirectory(prefix="strata-tokenizer-") as scratch:
            sample_path = os.path.join(scratch, "sample.txt")
            sample = sample_curated_text(join(out, CURATED), shares, cfg.sample_bytes, config.seed, sample_path)
            record = train_tokenizer(
                sample_path,
                join(out, TOKENIZER_DIR),
                vocab_size=cfg.vocab_size,
                model_type=cfg.model_type,
                user_defined_symbols=cfg.user_defined_symbols,
                control_pieces=control_pieces,
                seed=config.seed,
                sample=sample,
                vocab_key="tokenizer.vocab_size",
            )
        record["sample"].pop("path")  # a temporary file
        record.update(trained=True, path=TOKENIZER_MODEL)
    record["settings_hash"] = key
    write_bytes_atomic(join(out, TOKENIZER_RECORD), (json.dumps(record, indent=2) + "\n").encode())
    return record, False


def read_given_tokenizer(model: str) -> dict[str, bytes]:
    """The files of a given tokenizer (`tokenizer.model`), by their path in OUT, read and
    checked before the build starts: a sentencepiece .model becomes tokenizer/tokenizer.model;
    a HF tokenizer.json (and the tokenizer_config.json beside it, which names its special
    tokens) go to tokenizer/hf/. A tokenizer that does not load or has no EOS is a config error."""
    if is_sentencepiece(model):
        return {TOKENIZER_MODEL: read_model_file(model)}
    try:
        json_file, config_file = hf_tokenizer_files(model)
        files = {HF_TOKENIZER: _read(json_file)}
        if config_file:
            files[HF_TOKENIZER_CONFIG] = _read(config_file)
        encoder = HFTokenizerEncoder(files[HF_TOKENIZER], json.loads(files.get(HF_TOKENIZER_CONFIG, b"{}")))
    except Exception as err:  # tokenizers raises its own exception types for a file that is not its format
        raise ConfigError(f"tokenizer.model: {redact_url(model)} is not a sentencepiece .model or a HF tokenizer ({err})") from None
    if encoder.special_ids["eos"] is None:
        raise ConfigError(f"tokenizer.model: {redact_url(model)} has no EOS token, which ends every document in the "
                          "shards; name it (eos_token) in its tokenizer_config.json")
    return files


def _read(uri: str) -> bytes:
    with open_file(uri, "rb") as f:
        return f.read()


def _given_tokenizer(model: str, files: dict[str, bytes], out: str, control_pieces: list[str]) -> dict:
    """Copy a given tokenizer's files into OUT/tokenizer/ (a sentencepiece model with the
    objectives' control pieces added); its record."""
    if control_pieces and TOKENIZER_MODEL not in files:
        raise ConfigError("tokenizer.objective_specials: the objectives' special pieces can be added to a "
                          "sentencepiece model only, not to a HF tokenizer")
    if control_pieces:
        files = {TOKENIZER_MODEL: with_control_pieces(files[TOKENIZER_MODEL], control_pieces)}
    for target, data in files.items():
        write_bytes_atomic(join(out, target), data)
    path = TOKENIZER_MODEL if TOKENIZER_MODEL in files else HF_TOKENIZER
    encoder = load_encoder(join(out, path))
    return {
        "trained": False,
        "source_model": redact_url(model),
        "path": path,
        "model_sha256": hashlib.sha256(files[path]).hexdigest(),
        "special_ids": encoder.special_ids,
        "vocab_size": encoder.vocab_size,
        "model_type": encoder.model_type,
    }


def run_build(
    config: BuildConfig,
    out: str,
    until: str = "shards",
    beam_args: list[str] | None = None,
    progress: Progress | None = None,
) -> dict:
    """Run the build up to `until`, holding OUT's lock; returns the manifest (or the last
    stage's record)."""
    given_model = read_given_tokenizer(config.tokenizer.model) if config.tokenizer.model else None
    files = preflight(config, out)
    with FolderLock(out, BUILD_LOCK, "OUT"), private_tempdir():
        return _run_stages(config, out, until, beam_args or [], given_model, files, progress)


def _run_stages(config: BuildConfig, out: str, until: str, beam_args: list[str], given_model: dict[str, bytes] | None,
                files: list[InputFile], progress: Progress | None) -> dict:
    say = progress.line if progress else lambda _: None
    remove_leftovers(out)
    curated, reused = curate(config, out, files, beam_args, progress)
    say(curate_line(curated))
    _check_usable(curated, out)
    if until == "curate":
        say(reuse_line(reused, ("annotate", "select")))
        return curated
    started = time.monotonic()
    tokenizer, kept = _tokenizer(config, out, curated, given_model)
    say(tokenizer_line(tokenizer, time.monotonic() - started))
    reused += ["tokenizer"] if kept else []
    if until == "tokenizer":
        say(reuse_line(reused, ("annotate", "select", "tokenizer")))
        return tokenizer
    remove(join(out, MANIFEST))  # the shard stage rewrites what the manifest describes
    started = time.monotonic()
    shards = run_shards(config, out, join(out, tokenizer["path"]), beam_args, progress)
    say(shards_line(shards, time.monotonic() - started))
    say(reuse_line(reused, ("annotate", "select", "tokenizer", "shards")))
    manifest = build_manifest(config, curated, _manifest_tokenizer(tokenizer), shards)
    manifest.write(out)
    return manifest.to_dict()


def _manifest_tokenizer(record: dict) -> TokenizerEntry:
    """The manifest's entry for the tokenizer stage's record."""
    return TokenizerEntry(
        path=record["path"],
        record=TOKENIZER_RECORD,
        sha256=record["model_sha256"],
        type=record["model_type"],
        vocab_size=record["vocab_size"],
        special_ids=record["special_ids"],
        trained=record["trained"],
    )
