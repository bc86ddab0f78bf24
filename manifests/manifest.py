"""The build manifest: OUT/manifest.json, written atomically and last (the commit point).

Typed: `Manifest` and the records in it are the one definition the writer and every reader
share. `Manifest.read` checks the schema version first and refuses any other major
version with a message that says which it found and which this strata reads; then the
whole document is validated against the models, so a damaged manifest fails there, with
the field named, and not somewhere downstream.

`schema_version` is the major version: any change to the fields bumps it (the models
refuse fields they do not know). 2: block indexes carry a checksum per block (xxh3_64) and
shard records the sha256 of their block index (index_sha256).

Everything in it is relative to the manifest's folder, so OUT can be copied or uploaded
whole. It holds no credentials: URIs of inputs are recorded with their credentials
redacted (strata.redact), and object-store access comes from the environment.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, ValidationError

from strata.config import BuildConfig
from strata.errors import StrataError
from strata.manifests.layout import LINEAGE, MANIFEST
from strata.manifests.mixture import planned_epochs, resolve_shares
from strata.storage import join, open_file, unreadable_scheme, write_bytes_atomic
from strata.version import __version__

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


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def to_dict(self) -> dict:
        """As plain data, fields in their declared order (the order manifest.json has)."""
        return self.model_dump()


class ShardRecord(_Record):
    """One tar, as the shard stage records it (OUT/shards.json) and the manifest lists it."""

    category: str
    split: str  # train | val
    shard: int  # the shard plan's number within its category
    path: str  # the tar, relative to OUT
    index: str  # its block-index sidecar, relative to OUT
    index_sha256: str
    sha256: str
    bytes: int
    blocks: int
    tokens: int
    docs: int  # whole documents: pieces that do not continue an earlier block


class TokenizerEntry(_Record):
    path: str  # the model (sentencepiece) or tokenizer.json (HF), relative to OUT
    record: str  # the tokenizer stage's record, relative to OUT
    sha256: str
    type: str  # bpe, unigram, hf-bpe, ...
    vocab_size: int
    special_ids: dict[str, Any]  # name -> id or None; sentinels -> [ids]
    trained: bool


class CategoryEntry(_Record):
    config: dict[str, Any]  # the category's config as given ({"epochs": 1.0, "default": True} if none)
    share: float  # of training tokens, resolved from epochs and weights
    planned_epochs: Optional[float]  # with budget_tokens
    docs: int  # curated
    bytes: int  # curated text
    curated: str  # its folder of curated Parquet, relative to OUT
    tokens: int  # train
    val_tokens: int
    shards: list[ShardRecord]  # by split, then shard number


class Manifest(_Record):
    schema_version: int
    strata_version: str
    strata_commit: Optional[str]
    config_hash: str
    config: dict[str, Any]
    inputs: list[dict[str, Any]]  # source, uri (redacted), relpath, size, fingerprint
    records: int
    fates: dict[str, int]
    stages: dict[str, Any]  # counters per curate stage
    pii: dict[str, Any] = {}
    decontamination: dict[str, Any] = {}
    budget_tokens: Optional[int]
    tokenizer: TokenizerEntry
    categories: dict[str, CategoryEntry]
    lineage: str  # the lineage folder, relative to OUT

    def write(self, out: str) -> str:
        """OUT/manifest.json, atomically; its URI."""
        uri = join(out, MANIFEST)
        write_bytes_atomic(uri, (json.dumps(self.to_dict(), indent=2) + "\n").encode())
        return uri

    @classmethod
    def read(cls, out_or_manifest: str) -> "Manifest":
        """The manifest of a build folder (or a manifest.json path / URI): ManifestError if
        it is missing, of another schema version, or damaged."""
        problem = unreadable_scheme(out_or_manifest)
        if problem:
            raise ManifestError(f"cannot read a build there: {problem}")
        uri = out_or_manifest if out_or_manifest.endswith(".json") else join(out_or_manifest, MANIFEST)
        try:
            with open_file(uri, "rb") as f:
                document = json.loads(f.read())
        except FileNotFoundError:
            raise ManifestError(f"{uri}: no manifest (the build has not finished, or this is not a build folder)") from None
        except json.JSONDecodeError as err:
            raise ManifestError(f"{uri}: damaged manifest: {err}") from None
        version = document.get("schema_version") if isinstance(document, dict) else None
        if version != SCHEMA_VERSION:
            raise ManifestError(
                f"{uri}: manifest schema version {version!r}; this strata {__version__} reads version {SCHEMA_VERSION}"
                + (" (rebuild with this version, or use the strata that wrote it)" if isinstance(version, int) else "")
            )
        try:
            return cls.model_validate(document)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(map(str, first["loc"]))
            raise ManifestError(f"{uri}: damaged manifest: {where}: {first['msg']} ({err.error_count()} problems)") from None


def build_manifest(config: BuildConfig, curate: dict, tokenizer: TokenizerEntry, shards: list[ShardRecord]) -> Manifest:
    """The manifest of a finished build from the records of its stages."""
    train_tokens: dict[str, int] = {}
    for shard in shards:
        if shard.split == "train":
            train_tokens[shard.category] = train_tokens.get(shard.category, 0) + shard.tokens
    shares = resolve_shares(config.categories, train_tokens)
    epochs = planned_epochs(shares, train_tokens, config.budget_tokens) if config.budget_tokens else {}
    categories = {}
    for name, curated in curate["categories"].items():
        own = [s for s in shards if s.category == name]
        configured = config.categories.get(name)
        categories[name] = CategoryEntry(
            config=configured.model_dump(exclude_none=True) if configured else {"epochs": 1.0, "default": True},
            share=shares.get(name, 0.0),
            planned_epochs=epochs.get(name),
            docs=curated["docs"],
            bytes=curated["bytes"],
            curated=curated["folder"],
            tokens=sum(s.tokens for s in own if s.split == "train"),
            val_tokens=sum(s.tokens for s in own if s.split == "val"),
            shards=sorted(own, key=lambda s: (s.split, s.shard)),
        )
    return Manifest(
        schema_version=SCHEMA_VERSION,
        strata_version=__version__,
        strata_commit=source_commit(),
        config_hash=config.config_hash,
        config=config.to_dict(),
        inputs=curate["inputs"],
        records=curate["records"],
        fates=curate["fates"],
        stages=curate["stages"],
        pii=curate.get("pii", {}),
        decontamination=curate.get("decontamination", {}),
        budget_tokens=config.budget_tokens,
        tokenizer=tokenizer,
        categories=categories,
        lineage=LINEAGE,
    )
