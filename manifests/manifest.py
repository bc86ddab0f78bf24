"""The build manifest: OUT/manifest.json, written atomically and last (the commit point).

Everything in it is relative to the manifest's folder, so OUT can be copied or uploaded
whole. It holds no credentials: URIs of inputs are recorded with their credentials
redacted (strata.redact), and object-store access comes from the environment.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from strata.config import BuildConfig
from strata.errors import StrataError
from strata.manifests.mixture import planned_epochs, resolve_shares
from strata.storage import join, open_file, unreadable_scheme, write_bytes_atomic
from strata.version import __version__

MANIFEST = "manifest.json"
# Readers refuse any other version. 2: block indexes carry a checksum per block (xxh3_64)
# and shard records the sha256 of their block index (index_sha256).
SCHEMA_VERSION = 2


class ManifestError(StrataError, ValueError):
    """A manifest that is missing, damaged, or of a schema this strata cannot read."""


class ShardError(StrataError, RuntimeError):
    """A shard (or its block index) that is missing, truncated or corrupt; the message names it."""


def source_commit() -> str | None:
    """The git commit of the strata source tree, when it runs from a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def build_manifest(config: BuildConfig, curate: dict, tokenizer: dict, shards: list[dict]) -> dict:
    """The manifest of a finished build from the records of its stages."""
    train_tokens: dict[str, int] = {}
    for shard in shards:
        if shard["split"] == "train":
            train_tokens[shard["category"]] = train_tokens.get(shard["category"], 0) + shard["tokens"]
    shares = resolve_shares(config.categories, train_tokens)
    epochs = planned_epochs(shares, train_tokens, config.budget_tokens) if config.budget_tokens else {}
    categories = {}
    for name, curated in curate["categories"].items():
        own = [s for s in shards if s["category"] == name]
        configured = config.categories.get(name)
        categories[name] = {
            "config": configured.model_dump(exclude_none=True) if configured else {"epochs": 1.0, "default": True},
            "share": shares.get(name, 0.0),
            "planned_epochs": epochs.get(name),
            "docs": curated["docs"],
            "bytes": curated["bytes"],
            "curated": curated["folder"],
            "tokens": sum(s["tokens"] for s in own if s["split"] == "train"),
            "val_tokens": sum(s["tokens"] for s in own if s["split"] == "val"),
            "shards": sorted(own, key=lambda s: (s["split"], s["shard"])),
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "strata_version": __version__,
        "strata_commit": source_commit(),
        "config_hash": config.config_hash,
        "config": config.to_dict(),
        "inputs": curate["inputs"],
        "records": curate["records"],
        "fates": curate["fates"],
        "stages": curate["stages"],
        "budget_tokens": config.budget_tokens,
        "tokenizer": tokenizer,
        "categories": categories,
        "lineage": "lineage",
    }


def write_manifest(out: str, manifest: dict) -> str:
    uri = join(out, MANIFEST)
    write_bytes_atomic(uri, (json.dumps(manifest, indent=2) + "\n").encode())
    return uri


def read_manifest(out_or_manifest: str) -> dict:
    """The manifest of a build folder (or a manifest.json path / URI), checked for its schema."""
    problem = unreadable_scheme(out_or_manifest)
    if problem:
        raise ManifestError(f"cannot read a build there: {problem}")
    uri = out_or_manifest if out_or_manifest.endswith(".json") else join(out_or_manifest, MANIFEST)
    try:
        with open_file(uri, "rb") as f:
            manifest = json.loads(f.read())
    except FileNotFoundError:
        raise ManifestError(f"{uri}: no manifest (the build has not finished, or this is not a build folder)") from None
    except json.JSONDecodeError as err:
        raise ManifestError(f"{uri}: damaged manifest: {err}") from None
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ManifestError(
            f"{uri}: manifest schema version {version!r}; this strata {__version__} reads version {SCHEMA_VERSION}"
            + (" (rebuild with this version, or use the strata that wrote it)" if isinstance(version, int) else "")
        )
    return manifest
