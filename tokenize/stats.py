"""How a tokenizer fares on each category of the curated text: tokens per byte, tokens
per word (fertility) and the share of byte-fallback tokens (characters outside the
vocabulary, spelled as their UTF-8 bytes).

Documents are chosen per category as for the tokenizer sample: smallest
blake2b(seed, doc_id) first, so that the figures do not depend on file order.
"""

from __future__ import annotations

import numpy as np

from strata.tokenize.trainer import LowestKeys, file_sha256, load_tokenizer, select_documents

COUNTS = ("docs", "bytes", "words", "tokens", "byte_tokens")


def tokenizer_stats(model_path: str, curated_root: str, max_docs_per_category: int = 2000, *, seed: int = 0) -> dict:
    """Per category and over all of them: docs, bytes, words (whitespace-separated),
    tokens, tokens_per_byte, tokens_per_word and byte_fallback_rate."""
    processor = load_tokenizer(model_path)
    is_byte = np.array([processor.is_byte(i) for i in range(processor.get_piece_size())])
    selected = select_documents(
        curated_root, seed, lambda _: LowestKeys(max_docs_per_category), lambda text: (text, 1)
    )
    categories = {}
    for category in sorted(selected):
        texts = [text for _, text in selected[category].documents()]
        counts = dict.fromkeys(COUNTS, 0)
        for text, ids in zip(texts, processor.encode(texts)):
            counts["docs"] += 1
            counts["bytes"] += len(text.encode())
            counts["words"] += len(text.split())
            counts["tokens"] += len(ids)
            counts["byte_tokens"] += int(is_byte[ids].sum())
        categories[category] = _with_rates(counts)
    total = {name: sum(c[name] for c in categories.values()) for name in COUNTS}
    return {
        "model": model_path,
        "model_sha256": file_sha256(model_path),
        "vocab_size": processor.get_piece_size(),
        "seed": seed,
        "max_docs_per_category": max_docs_per_category,
        "categories": categories,
        "all": _with_rates(total),
    }


def _with_rates(counts: dict) -> dict:
    def ratio(a: str, b: str) -> float:
        return round(counts[a] / counts[b], 4) if counts[b] else 0.0

    return {
        **counts,
        "tokens_per_byte": ratio("tokens", "bytes"),
        "tokens_per_word": ratio("tokens", "words"),
        "byte_fallback_rate": ratio("byte_tokens", "tokens"),
    }


def format_stats_table(stats: dict) -> str:
    header = f"{'category':<28} {'docs':>7} {'MB':>8} {'words':>10} {'tokens':>10} {'tok/byte':>8} {'tok/word':>8} {'byte-fb':>8}"
    rows = [*stats["categories"].items(), ("all", stats["all"])]
    lines = [header, "-" * len(header)]
    for name, s in rows:
        lines.append(
            f"{name:<28} {s['docs']:>7} {s['bytes'] / 1e6:>8.2f} {s['words']:>10} {s['tokens']:>10} "
            f"{s['tokens_per_byte']:>8.3f} {s['tokens_per_word']:>8.2f} {s['byte_fallback_rate']:>8.2%}"
        )
    return "\n".join(lines)
