"""Paragraph-level dedup (CCNet, Dolma): boilerplate paragraphs (licence headers,
navigation, cookie notices) removed from all but one of the documents that hold them.

Paragraphs are the pieces between blank lines; each is hashed after normalization
(lowercased, whitespace runs collapsed). A paragraph whose hash occurs in more than
`max_documents` documents stays in the document with the smallest doc_id and goes from
all the others, so the result does not depend on the order documents arrive in. A
document left with fewer than `min_chars` characters is dropped
(`paragraph_dedup:too_short`).

Only hashes travel through the shuffle: (8 bytes, node) per paragraph of at least
`min_paragraph_chars` characters.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator

import apache_beam as beam

from strata.config import ParagraphDedupConfig
from strata.pipeline.components import star_edges

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\f\v\r]*\n\s*")


def _paragraphs(text: str) -> list[str]:
    return _PARAGRAPH_BREAK.split(text)


def paragraph_hash(paragraph: str) -> int:
    """64-bit hash of a paragraph's normalized content (lowercased, whitespace collapsed)."""
    normalized = " ".join(paragraph.lower().split())
    digest = hashlib.blake2b(normalized.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)  # Beam encodes signed 64-bit integers


def paragraph_hashes(text: str, min_chars: int) -> list[int]:
    """The distinct hashes of the paragraphs of `text` that have at least `min_chars`
    non-whitespace characters, in order of first appearance."""
    seen: dict[int, None] = {}
    for paragraph in _paragraphs(text):
        if len("".join(paragraph.split())) >= min_chars:
            seen.setdefault(paragraph_hash(paragraph), None)
    return list(seen)


def remove_paragraphs(text: str, hashes: Iterable[int]) -> tuple[str, int]:
    """(`text` without the paragraphs whose hash is in `hashes`, joined by blank lines as
    before; how many paragraphs went)."""
    hashes = set(hashes)
    kept, removed = [], 0
    for paragraph in _paragraphs(text):
        if paragraph.strip() and paragraph_hash(paragraph) in hashes:
            removed += 1
        else:
            kept.append(paragraph)
    return ("\n\n".join(kept) if removed else text), removed


class BoilerplateParagraphs(beam.PTransform):
    """(node, [paragraph hashes]) -> (node, [hashes to remove from it]) for every document
    that holds a paragraph found in more than `max_documents` documents, other than the
    smallest node holding it."""

    def __init__(self, cfg: ParagraphDedupConfig):
        super().__init__()
        self.cfg = cfg

    def expand(self, node_hashes):
        return (
            node_hashes
            | "HashToNode" >> beam.FlatMapTuple(lambda node, hashes: ((h, node) for h in hashes))
            | "GroupByParagraph" >> beam.GroupByKey()
            | "AllButFirst" >> beam.FlatMap(lambda grouped, most: _all_but_first(*grouped, most), self.cfg.max_documents)
            | "GroupByNode" >> beam.GroupByKey()
            | "Sorted" >> beam.MapTuple(lambda node, hashes: (node, sorted(hashes)))
        )


def _all_but_first(paragraph: int, nodes: Iterable[str], max_documents: int) -> Iterator[tuple]:
    """(node, paragraph) for every node but the smallest, when more than max_documents hold it.
    Passes over the grouped values rather than a list (they may not fit in memory)."""
    if sum(1 for _ in nodes) > max_documents:
        for _, node in star_edges(paragraph, nodes):
            yield node, paragraph
