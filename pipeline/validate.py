"""Validate: turn a raw record into a document, or into a quarantine entry with its reason.

Pure functions, no Beam. Reasons (each counted in the manifest):

    invalid_utf8        the record's bytes are not UTF-8 (or its text has lone surrogates)
    invalid_json        the line does not parse as JSON
    not_an_object       the JSON value is not an object (an array, a number, ...)
    missing_text        no text field
    text_not_string     the text field is a number, a list, null, ...
    empty_text          the text is empty or only white space
    text_too_large      the text is over validate.max_text_bytes
    missing_category    category_field is absent or not a string
    record_too_large, truncated_compressed_file, corrupt_compressed_file,
    corrupt_parquet_file, unreadable_file, decompression_limit,
    not_a_regular_file                         read-level failures, passed through
"""

from __future__ import annotations

import json
from typing import Any, Optional

import orjson

from strata.manifests.schemas import FATE_QUARANTINED


class Invalid(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


SIZE_WINDOW_CHARS = 1 << 20  # a long text's UTF-8 size is counted a window at a time, never a whole copy


def utf8_size(text: str) -> int:
    """Bytes of `text` in UTF-8; a lone surrogate raises UnicodeEncodeError at its index."""
    if text.isascii():
        return len(text)
    size = 0
    for start in range(0, len(text), SIZE_WINDOW_CHARS):
        try:
            size += len(text[start : start + SIZE_WINDOW_CHARS].encode("utf-8"))
        except UnicodeEncodeError as err:
            raise UnicodeEncodeError(err.encoding, text, start + err.start, start + err.end, err.reason) from None
    return size


def _field(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise Invalid("invalid_utf8", f"byte {err.start}: {err.reason}") from None


def _parse_object(raw: bytes) -> dict:
    """orjson parses straight from the UTF-8 bytes (no intermediate str: a 50 MB record
    is not held twice) and rejects invalid UTF-8 and lone surrogates itself."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        message = str(err)
        reason = "invalid_utf8" if "UTF-8" in message or "surrogate" in message else "invalid_json"
        raise Invalid(reason, message[:300]) from None
    if not isinstance(value, dict):
        raise Invalid("not_an_object", f"top-level JSON value is {type(value).__name__}")
    return value


def _checked_text(text: Any, max_text_bytes: int) -> tuple[str, int]:
    if text is None:
        raise Invalid("missing_text")
    if not isinstance(text, str):
        raise Invalid("text_not_string", f"text is {type(text).__name__}")
    try:
        size = utf8_size(text)
    except UnicodeEncodeError as err:
        raise Invalid("invalid_utf8", f"character {err.start}: {err.reason}") from None
    if size > max_text_bytes:
        raise Invalid("text_too_large", f"{size} bytes > {max_text_bytes}")
    if not text.strip():
        raise Invalid("empty_text")
    return text, size


def parse_record(record: dict, fmt: str, text_field: str, category_path: Optional[tuple], max_text_bytes: int) -> dict:
    """The document fields of a valid record; raises Invalid otherwise."""
    if record["error"]:
        raise Invalid(record["error"], record["detail"] or "")
    category = record["category"]
    if record["row"] is not None:  # Parquet rows and stdlib docstrings arrive parsed
        obj = record["row"]
        text = _field(obj, tuple(text_field.split(".")))
    elif fmt in ("jsonl", "pile"):
        obj = _parse_object(record["raw"])
        text = _field(obj, tuple(text_field.split(".")))
    else:  # a text file or a stdlib module: the bytes are the document
        obj, text = None, _decode(record["raw"])
    category = record["category"]
    if category_path:
        category = _field(obj, category_path)
        if not isinstance(category, str) or not category:
            raise Invalid("missing_category", f"{'.'.join(category_path)} is {type(category).__name__}")
    text, size = _checked_text(text, max_text_bytes)
    return {"text": text, "category": category, "text_bytes": size}


def validate_record(record: dict, fmt: str, text_field: str, category_path, max_text_bytes: int, raw_cap: int) -> dict:
    """A document dict (fate None), or a quarantined one (fate 'quarantined')."""
    doc = {
        "doc_id": record["doc_id"],
        "source": record["source"],
        "uri": record["uri"],
        "record_index": record["record_index"],
        "raw_bytes": record["raw_bytes"],
        "category": record["category"],
        "text": None,
        "fate": None,
        "stage": None,
        "reason": None,
    }
    try:
        doc.update(parse_record(record, fmt, text_field, category_path, max_text_bytes))
    except Invalid as bad:
        raw = record["raw"]
        if raw is None and record["row"] is not None:
            raw = json.dumps(record["row"], ensure_ascii=False, default=repr).encode("utf-8", "replace")
        doc.update(
            fate=FATE_QUARANTINED,
            stage="validate",
            reason=bad.reason,
            detail=bad.detail,
            raw=raw[:raw_cap] if raw is not None else None,
        )
    return doc
