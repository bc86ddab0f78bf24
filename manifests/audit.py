"""`strata audit OUT|RUN`: what a build's mixture holds and why every record that is not in
it was removed; what a training run consumed.

`audit_build(OUT)` returns (stable keys; shares are fractions, sizes bytes):

    kind             "build"
    build            OUT as given; schema_version, strata_version, config_hash from the manifest
    records          input records; fates: {kept, dropped, duplicate, quarantined} -> records
    categories       name -> {target_share (the manifest's mixture share), realized_share (of
                     train tokens), docs, bytes, tokens (train), val_tokens, shards,
                     tokens_per_byte (text tokens, EOS excluded, per UTF-8 byte of kept text)}
    sources          name -> {records, kept, quarantined, dropped, exact_duplicates,
                     near_duplicates, removed: {stage: {reason: records}}}
    stages           stage -> {removed, reasons: {reason: records}}, every source, pipeline order
    languages        language -> {docs (records that reached language ID), kept}
    decontamination  eval set -> category -> {documents (touched), removed, chars_removed}
    pii              kind (email, ip, phone) -> {documents, matches}: PII redacted from kept
                     documents (the manifest's curate counters; empty for older builds)
    lengths          {bytes, tokens} -> {bins_per_octave, edges, counts: {category: [docs]}}:
                     histograms of the kept documents' text bytes and tokens (EOS excluded);
                     bin i holds edges[i] <= x < edges[i + 1], edges[i] = 2 ** (k / bins_per_octave)

`audit_run(RUN)` returns:

    kind             "run"
    run, build       RUN and the build it trained on (run.json's "data" unless given)
    objective, seed, seq_len, global_batch, window_tokens   from run.json
    steps            distinct steps in RUN/consumed; first_step, last_step; windows; tokens
    categories       name -> {share (run.json's), tokens (consumed), realized_share,
                     train_tokens (the build's), epochs (tokens / train_tokens), val_loss
                     (the latest, or null), val_step}
    val_loss         category (or "all") -> [[step, loss], ...]
    train_loss       [[step, loss], ...]
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from strata.manifests.layout import CONSUMED_GLOB, CURATE_LINEAGE_GLOB, PLACEMENTS_GLOB
from strata.manifests.lineage import codes, map_files, read_metrics, read_run
from strata.manifests.manifest import Manifest, ManifestError
from strata.manifests.tables import count, evenly, format_table, percent, quantity, size
from strata.manifests.schemas import FATE_DROPPED, FATE_DUPLICATE, FATE_KEPT, FATE_QUARANTINED, STAGES

FATES = (FATE_KEPT, FATE_DROPPED, FATE_DUPLICATE, FATE_QUARANTINED)
BINS_PER_OCTAVE = 4
MAX_BIN = 64 * BINS_PER_OCTAVE  # lengths below 2 ** 64
OUTCOME = ["source", "fate", "stage", "reason", "language"]  # what happened to a record
PLACEMENT_COLUMNS = ["doc_id", "category", "token_start", "token_end"]


# --------------------------------------------------------------------------- a build


def audit_build(out: str) -> dict:
    manifest = Manifest.read(out)
    parts = map_files(out, CURATE_LINEAGE_GLOB, [*OUTCOME, "category", "text_bytes"], lineage_summary)
    outcomes = _merged_outcomes(counts for counts, _ in parts)
    return {
        "kind": "build",
        "build": out,
        "schema_version": manifest.schema_version,
        "strata_version": manifest.strata_version,
        "config_hash": manifest.config_hash,
        "records": sum(r["records"] for r in outcomes),
        "fates": {fate: sum(r["records"] for r in outcomes if r["fate"] == fate) for fate in FATES},
        "categories": mixture(manifest),
        "sources": sources(outcomes),
        "stages": stages(outcomes),
        "languages": languages(outcomes),
        "pii": manifest.pii,
        "decontamination": manifest.decontamination,
        "lengths": {
            "bytes": histogram(_merged_bins(bins for _, bins in parts)),
            "tokens": histogram(_merged_bins(map_files(out, PLACEMENTS_GLOB, PLACEMENT_COLUMNS, placements_summary))),
        },
    }


def mixture(manifest: Manifest) -> dict:
    """Per category: the manifest's target share beside the share of train tokens it has."""
    categories = manifest.categories
    total = sum(c.tokens for c in categories.values())
    return {
        name: {
            "target_share": c.share,
            "realized_share": c.tokens / total if total else 0.0,
            "docs": c.docs,
            "bytes": c.bytes,
            "tokens": c.tokens,
            "val_tokens": c.val_tokens,
            "shards": len(c.shards),
            "tokens_per_byte": (c.tokens + c.val_tokens - c.docs) / c.bytes if c.bytes else 0.0,
        }
        for name, c in sorted(categories.items())
    }


def lineage_summary(lineage: pa.Table) -> tuple[Counter, dict[str, np.ndarray]]:
    """(records per OUTCOME tuple, kept documents' text bytes binned per category) of a
    lineage table, computed on the dictionary indices."""
    indices, values = zip(*(codes(lineage.column(name)) for name in OUTCOME))
    sizes = [len(v) for v in values]
    unique, counts = np.unique(np.ravel_multi_index(indices, sizes), return_counts=True)
    rows = zip(*(column.tolist() for column in np.unravel_index(unique, sizes)))
    outcomes = Counter({tuple(v[i] for v, i in zip(values, row)): n for row, n in zip(rows, counts.tolist())})
    fates = values[OUTCOME.index("fate")]
    kept = indices[OUTCOME.index("fate")] == (fates.index(FATE_KEPT) if FATE_KEPT in fates else -1)
    categories, names = codes(lineage.column("category"))
    text_bytes = lineage.column("text_bytes").to_numpy(zero_copy_only=False)
    return outcomes, log_bins(text_bytes[kept], categories[kept], names)


def placements_summary(placements: pa.Table) -> dict[str, np.ndarray]:
    """Kept documents' tokens (EOS excluded) binned per category, from one placements file:
    a document longer than a block has one piece per block, in consecutive rows."""
    if not placements.num_rows:
        return {}
    doc_id = placements.column("doc_id").chunk(0)
    first = np.ones(len(doc_id), dtype=bool)
    first[1:] = pc.not_equal(doc_id[1:], doc_id[:-1]).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(first)
    lengths = pc.subtract(placements.column("token_end"), placements.column("token_start")).to_numpy()
    tokens = np.add.reduceat(lengths, starts) - 1
    categories, names = codes(placements.column("category"))
    return log_bins(tokens, categories[starts], names)


def _merged_outcomes(parts) -> list[dict]:
    total: Counter = Counter()
    for part in parts:
        total.update(part)
    return [{**dict(zip(OUTCOME, key)), "records": n} for key, n in sorted(total.items(), key=str)]


def sources(outcomes: list[dict]) -> dict:
    """Per source: records read, what became of them, and why those not kept were removed."""
    found: dict[str, dict] = {}
    for row in outcomes:
        entry = found.setdefault(
            row["source"],
            {"records": 0, **dict.fromkeys([FATE_KEPT, FATE_QUARANTINED, FATE_DROPPED], 0),
             "exact_duplicates": 0, "near_duplicates": 0, "removed": {}},
        )
        entry["records"] += row["records"]
        if row["fate"] == FATE_DUPLICATE:
            entry["exact_duplicates" if row["stage"] == "exact_dedup" else "near_duplicates"] += row["records"]
        else:
            entry[row["fate"]] += row["records"]
        if row["fate"] != FATE_KEPT:
            reasons = entry["removed"].setdefault(row["stage"], {})
            reasons[row["reason"]] = reasons.get(row["reason"], 0) + row["records"]
    for entry in found.values():
        entry["removed"] = _in_stage_order({s: dict(sorted(r.items())) for s, r in entry["removed"].items()})
    return dict(sorted(found.items()))


def stages(outcomes: list[dict]) -> dict:
    """Records removed by each stage, and why, over every source."""
    found: dict[str, dict] = {}
    for row in outcomes:
        if row["fate"] == FATE_KEPT:
            continue
        entry = found.setdefault(row["stage"], {"removed": 0, "reasons": {}})
        entry["removed"] += row["records"]
        entry["reasons"][row["reason"]] = entry["reasons"].get(row["reason"], 0) + row["records"]
    return _in_stage_order({s: {**e, "reasons": dict(sorted(e["reasons"].items()))} for s, e in found.items()})


def _in_stage_order(by_stage: dict) -> dict:
    order = {stage: i for i, stage in enumerate(STAGES)}
    return dict(sorted(by_stage.items(), key=lambda item: (order.get(item[0], len(order)), str(item[0]))))


def languages(outcomes: list[dict]) -> dict:
    """Per language: the records language ID saw, and how many of them were kept."""
    found: dict[str, dict] = {}
    for row in outcomes:
        if row["language"] is not None:
            entry = found.setdefault(row["language"], {"docs": 0, "kept": 0})
            entry["docs"] += row["records"]
            entry["kept"] += row["records"] if row["fate"] == FATE_KEPT else 0
    return dict(sorted(found.items(), key=lambda item: (-item[1]["docs"], item[0])))


def log_bins(values: np.ndarray, groups: np.ndarray, names: list) -> dict[str, np.ndarray]:
    """Counts of `values` in the log-spaced bins k = floor(BINS_PER_OCTAVE * log2(value)),
    0 <= k < MAX_BIN (a value below 1 counts as 1), per group (groups[i] indexes names)."""
    bins = np.floor(np.log2(np.maximum(values, 1)) * BINS_PER_OCTAVE).astype(np.int64)
    counts = np.bincount(groups * MAX_BIN + bins, minlength=len(names) * MAX_BIN).reshape(len(names), MAX_BIN)
    return {name: counts[i] for i, name in enumerate(names) if counts[i].any()}


def _merged_bins(parts) -> dict[str, np.ndarray]:
    total: dict[str, np.ndarray] = {}
    for part in parts:
        for name, counts in part.items():
            total[name] = total[name] + counts if name in total else counts
    return total


def histogram(bins: dict[str, np.ndarray]) -> dict:
    """The JSON form of log_bins' counts, from the first to the last bin anything is in."""
    if not bins:
        return {"bins_per_octave": BINS_PER_OCTAVE, "edges": [], "counts": {}}
    used = np.flatnonzero(np.sum(list(bins.values()), axis=0))
    low, high = int(used[0]), int(used[-1])
    edges = 2.0 ** (np.arange(low, high + 2) / BINS_PER_OCTAVE)
    return {
        "bins_per_octave": BINS_PER_OCTAVE,
        "edges": np.round(edges, 2).tolist(),
        "counts": {name: counts[low : high + 1].tolist() for name, counts in sorted(bins.items(), key=str)},
    }


def format_build_audit(audit: dict) -> str:
    lines = [
        f"build {audit['build']}  (manifest schema {audit['schema_version']}, strata {audit['strata_version']}, "
        f"config {str(audit['config_hash'])[:12]})",
        f"records {count(audit['records'])}: " + ", ".join(f"{fate} {count(n)}" for fate, n in audit["fates"].items()),
        "",
        format_table(
            ["category", "target", "realized", "docs", "MB", "train tokens", "val tokens", "tok/byte", "shards"],
            [
                [name, percent(c["target_share"]), percent(c["realized_share"]), count(c["docs"]),
                 f"{c['bytes'] / 1e6:.2f}", count(c["tokens"]), count(c["val_tokens"]), f"{c['tokens_per_byte']:.3f}",
                 c["shards"]]
                for name, c in audit["categories"].items()
            ],
        ),
        "",
        format_table(
            ["source", "records", "kept", "quarantined", "dropped", "exact dups", "near dups"],
            [
                [name, *(count(s[k]) for k in ("records", "kept", "quarantined", "dropped", "exact_duplicates",
                                                "near_duplicates"))]
                for name, s in audit["sources"].items()
            ],
        ),
        "",
        format_table(
            ["stage", "reason", "records"],
            [[stage, reason, count(n)] for stage, s in audit["stages"].items() for reason, n in s["reasons"].items()],
            left=2,
        ),
        "",
        "languages (records that reached language ID): "
        + ", ".join(f"{lang} {count(v['docs'])} (kept {count(v['kept'])})" for lang, v in audit["languages"].items()),
    ]
    if audit["decontamination"]:
        lines += ["", format_table(
            ["eval set", "category", "docs touched", "removed", "chars removed"],
            [[name, category, count(c["documents"]), count(c["removed"]), count(c["chars_removed"])]
             for name, by_category in audit["decontamination"].items() for category, c in by_category.items()],
            left=2,
        )]
    if audit["pii"]:
        lines += ["", "PII redacted from kept documents: " + ", ".join(
            f"{kind} {count(v['matches'])} in {count(v['documents'])} docs" for kind, v in audit["pii"].items())]
    for what, hist in audit["lengths"].items():
        unit = size if what == "bytes" else quantity
        lines += ["", f"kept documents by {what} (all categories)", *octave_bars(hist, unit)]
    return "\n".join(lines)


def octave_bars(hist: dict, unit: Callable[[float], str], width: int = 40) -> list[str]:
    """A histogram of audit_build summed over categories and over each doubling, as text bars."""
    if not hist["edges"]:
        return ["  (none)"]
    per_octave = hist["bins_per_octave"]
    total = np.sum(list(hist["counts"].values()), axis=0)
    low = int(round(np.log2(hist["edges"][0]) * per_octave))
    octaves = np.bincount((np.arange(len(total)) + low) // per_octave - low // per_octave, weights=total)
    first = low // per_octave
    rows = [(f"{unit(2 ** (first + i))}-{unit(2 ** (first + i + 1))}", int(n)) for i, n in enumerate(octaves)]
    peak = max(n for _, n in rows)
    return [f"  {label:>15} {count(n):>10} {'#' * max(bool(n), round(width * n / peak))}" for label, n in rows]


# --------------------------------------------------------------------------- a run


def audit_run(run: str, data: str | None = None) -> dict:
    spec = read_run(run)
    build = data or spec["data"]
    try:
        manifest = Manifest.read(build)
    except ManifestError as err:
        if data is not None:
            raise
        raise ManifestError(f"{err}; {run}/run.json names this build (give another with --data OUT)") from None
    parts = map_files(run, CONSUMED_GLOB, ["step", "sample_id", "shard", "token_start", "token_end"], consumed_summary)
    tokens = consumed_tokens([shards for shards, _, _ in parts], manifest, run, build)
    steps = np.unique(np.concatenate([steps for _, steps, _ in parts]))
    total = sum(tokens.values())
    metrics = read_metrics(run)
    val_loss = loss_curves(metrics)
    shares = spec.get("shares", {})
    return {
        "kind": "run",
        "run": run,
        "build": build,
        **{key: spec.get(key) for key in ("objective", "seed", "seq_len", "global_batch", "window_tokens")},
        "steps": len(steps),
        "first_step": int(steps[0]) if len(steps) else None,
        "last_step": int(steps[-1]) if len(steps) else None,
        "windows": sum(windows for _, _, windows in parts),
        "tokens": total,
        "categories": {
            name: {
                "share": shares.get(name, 0.0),
                "tokens": tokens.get(name, 0),
                "realized_share": tokens.get(name, 0) / total if total else 0.0,
                "train_tokens": c.tokens,
                "epochs": tokens.get(name, 0) / c.tokens if c.tokens else 0.0,
                "val_loss": val_loss[name][-1][1] if val_loss.get(name) else None,
                "val_step": val_loss[name][-1][0] if val_loss.get(name) else None,
            }
            for name, c in sorted(manifest.categories.items())
            if name in shares or name in tokens
        },
        "val_loss": val_loss,
        "train_loss": [[r["step"], r["loss"]] for r in metrics if r.get("kind") == "train"],
    }


def consumed_summary(consumed: pa.Table) -> tuple[dict[str, int], np.ndarray, int]:
    """(tokens per shard, the distinct steps, windows) of one consumed part. A window lies
    in one part (one rank, one step), so parts' windows add up."""
    shards, names = codes(consumed.column("shard"))
    lengths = pc.subtract(consumed.column("token_end"), consumed.column("token_start")).to_numpy()
    per_shard = np.bincount(shards, weights=lengths, minlength=len(names))
    windows = len(np.unique(consumed.column("sample_id").to_numpy()))
    steps = np.unique(consumed.column("step").to_numpy())
    return {names[i]: int(n) for i, n in enumerate(per_shard.tolist()) if n}, steps, windows


def consumed_tokens(parts: list[dict[str, int]], manifest: Manifest, run: str, build: str) -> dict[str, int]:
    """Tokens consumed per category (a window's category is its shards' category)."""
    category_of = {s.path: name for name, c in manifest.categories.items() for s in c.shards}
    per_shard: Counter = Counter()
    for part in parts:
        per_shard.update(part)
    tokens: dict[str, int] = {}
    for shard, n in per_shard.items():
        if shard not in category_of:
            raise ManifestError(
                f"{run} trained on {shard}, which the build {build} does not have: is it the build the run "
                "trained on? (pass it with --data)"
            )
        tokens[category_of[shard]] = tokens.get(category_of[shard], 0) + n
    return dict(sorted(tokens.items()))


def loss_curves(metrics: list[dict]) -> dict[str, list[list]]:
    """Validation loss over steps per category (and "all")."""
    curves: dict[str, list[list]] = {}
    for row in metrics:
        if row.get("kind") == "val":
            curves.setdefault(row["category"], []).append([row["step"], row["loss"]])
    return dict(sorted(curves.items()))


def format_run_audit(audit: dict) -> str:
    steps = f"steps {audit['first_step']}-{audit['last_step']}" if audit["steps"] else "no steps"
    lines = [
        f"run {audit['run']}  ({audit['objective']}, seq_len {audit['seq_len']}, global batch "
        f"{audit['global_batch']}, seed {audit['seed']}) on build {audit['build']}",
        f"{steps}: {count(audit['steps'])} steps, {count(audit['windows'])} windows, {count(audit['tokens'])} tokens",
        "",
        format_table(
            ["category", "share", "consumed", "tokens", "build tokens", "epochs", "val loss", "at step"],
            [
                [name, percent(c["share"]), percent(c["realized_share"]), count(c["tokens"]), count(c["train_tokens"]),
                 f"{c['epochs']:.3f}", "-" if c["val_loss"] is None else f"{c['val_loss']:.4f}",
                 "-" if c["val_step"] is None else c["val_step"]]
                for name, c in audit["categories"].items()
            ],
        ),
    ]
    if audit["val_loss"]:
        lines += ["", "validation loss over steps"]
        for name, curve in audit["val_loss"].items():
            points = "  ".join(f"{step}: {loss:.3f}" for step, loss in evenly(curve, 8))
            lines.append(f"  {name:<20} {points}")
    return "\n".join(lines)

