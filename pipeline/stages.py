"""The per-document curate stages as Beam DoFns, one small class each.

Every element is a batch of documents from one input file: {"batch": key, "docs": [...]}
(see schema.py and attributes.py for a document's fields). Validate and Normalize decide
a document's fate (`fate`, `stage`, `reason`) when it is malformed or empty; a decided
document passes the later stages untouched. The later stages only annotate: they record
what they find (scores, statistics, cleaned text, fingerprints) whatever the thresholds,
and selection (attributes.py) decides on it. Keeping one stream (rather than tagged side outputs)
keeps the pipeline portable: some runners, Dask among them, mishandle multi-output
ParDos. The logic lives in pure functions in the stage modules.
"""

from __future__ import annotations


import apache_beam as beam

from strata.config import BuildConfig, FilterSet
from strata.pipeline import fingerprints, heuristics, langid, pii, quality
from strata.pipeline.decontaminate import decontaminate, eval_index_from_dict
from strata.pipeline.normalize import normalize_text
from strata.manifests.schemas import FATE_DROPPED
from strata.pipeline.validate import utf8_size, validate_record


class DocStage(beam.DoFn):
    """Base of a per-document stage. Subclasses implement `apply(doc)` on live documents."""

    stage = ""

    def __init__(self, config: dict):
        self._config_dict = config  # plain data: DoFns travel to workers on any runner

    def setup(self):
        self.config = BuildConfig.model_validate(self._config_dict)
        self._filter_sets: dict[str, FilterSet] = {}
        self._models: dict = {}

    def filters_for(self, category: str) -> FilterSet:
        if category not in self._filter_sets:
            self._filter_sets[category] = self.config.filters.for_category(category)
        return self._filter_sets[category]

    def process(self, batch):
        # Documents are updated in place. Each of these PCollections has this stage as its
        # only consumer, and copying would keep every stage's version of a changed text
        # alive until the whole batch is through (a 50 MB document costs 200 MB per copy
        # as a Python str).
        for doc in batch["docs"]:
            if doc["fate"] is None:
                self.apply(doc)
        yield batch

    def model(self, load, path):
        """A model loaded once per process (see langid.load_once_per_process), cached here
        so the per-document path is a dict look-up."""
        if (load, path) not in self._models:
            self._models[(load, path)] = load(path)
        return self._models[(load, path)]

    def drop(self, doc: dict, reason: str) -> None:
        doc.update(fate=FATE_DROPPED, stage=self.stage, reason=reason)

    def apply(self, doc: dict) -> None:
        raise NotImplementedError


class Validate(beam.DoFn):
    """Raw records -> documents, or quarantined documents with their reason."""

    def __init__(self, config: dict):
        self._config_dict = config

    def setup(self):
        config = BuildConfig.model_validate(self._config_dict)
        self.sources = {s.name: s for s in config.sources}
        self.max_text_bytes = config.validate_.max_text_bytes
        self.raw_cap = config.validate_.quarantine_raw_bytes

    def process(self, batch):
        yield {"batch": batch["batch"], "docs": [self.validate(record) for record in batch["docs"]]}

    def validate(self, record: dict) -> dict:
        source = self.sources[record["source"]]
        path = tuple(source.category_path) if source.category_path else None
        return validate_record(record, source.format, source.text_field, path, self.max_text_bytes, self.raw_cap)


class Normalize(DocStage):
    stage = "normalize"

    def apply(self, doc):
        text = normalize_text(doc["text"], self.config.normalize)
        if text is not doc["text"]:
            doc["text"], doc["text_bytes"] = text, utf8_size(text)
        if not text.strip():
            self.drop(doc, "normalize:empty_after_normalize")


def lines_text(doc: dict) -> str:
    """The document after C4's line rules (the text as read if they removed nothing)."""
    return doc["text_lines"] if doc.get("text_lines") is not None else doc["text"]


def final_text(doc: dict) -> str:
    """The document after decontamination and PII redaction."""
    return doc["text_final"] if doc.get("text_final") is not None else lines_text(doc)


class LanguageID(DocStage):
    """fastText language ID on the document as read (before any rule removes lines):
    language and score recorded for every document, and seen by every later rule; the
    category's `language` rules decide at selection which are kept."""

    stage = "language"

    def apply(self, doc):
        cfg = self.filters_for(doc["category"]).language
        doc["language"], doc["language_score"] = self.model(langid.get_identifier, cfg.model).predict(doc["text"])


class HeuristicStats(DocStage):
    """Gopher's statistics of the text as read, and C4's line cleaning: the cleaned text
    (`text_lines`, when lines went) or the reason C4 drops the document (`c4_reason`).
    Whether the document passes is decided at selection (attributes.py)."""

    stage = "filter"

    def apply(self, doc):
        doc.update(heuristics.heuristic_attributes(doc["text"], self.filters_for(doc["category"]), doc["language"]))
        doc["bytes_lines"] = doc["bytes_final"] = utf8_size(lines_text(doc))


class QualityScore(DocStage):
    """The C4-cleaned text scored by a fastText quality classifier, where the category enables one."""

    stage = "quality"

    def apply(self, doc):
        cfg = self.filters_for(doc["category"]).quality
        if cfg.enabled:
            doc["quality_score"] = self.model(quality.get_scorer, cfg.model).score(lines_text(doc))


class Decontaminate(DocStage):
    """Evaluation-set text found in the C4-cleaned text: the text without it (`text_final`),
    or `decontaminate_drop` when nothing usable is left. The eval n-grams come as a side
    input, decoded once per DoFn instance."""

    stage = "decontaminate"

    def process(self, batch, eval_ngrams):
        if not hasattr(self, "index"):
            self.index = eval_index_from_dict(eval_ngrams)
        yield from super().process(batch)

    def apply(self, doc):
        found = decontaminate(lines_text(doc), self.index, self.config.decontaminate)
        if found.set_name is None:
            return
        doc.update(contaminated_set=found.set_name, contaminated_ngrams=found.ngrams,
                   contaminated_chars=found.chars_removed, decontaminate_drop=found.dropped)
        if not found.dropped:
            doc["text_final"], doc["bytes_final"] = found.text, utf8_size(found.text)


class Fingerprint(DocStage):
    """Content hash for exact dedup; MinHash signature for near dedup. Both of the text as
    read: two documents are duplicates if they were before line rules cut them, never
    because what the rules left of them (a shared footer, a template) is alike."""

    stage = "fingerprint"

    def apply(self, doc):
        doc["content_hash"] = fingerprints.content_hash(doc["text"])
        if self.config.dedup.near.enabled:
            doc["minhash"] = fingerprints.minhash_signature(doc["text"], self.config.dedup.near).tobytes()


class RedactPII(DocStage):
    """Email addresses, IP addresses and phone numbers to typed placeholders, per category,
    in the text a kept document would hold. After Fingerprint: dedup compares the text as
    read, whatever its contact data."""

    stage = "pii"

    def apply(self, doc):
        if doc.get("decontaminate_drop"):
            return
        text = final_text(doc)
        redacted, counts = pii.redact_pii(text, self.filters_for(doc["category"]).pii)
        for kind, count in counts.items():
            doc[f"pii_{kind}"] = count
        if redacted is not text:
            doc["text_final"], doc["bytes_final"] = redacted, utf8_size(redacted)
