"""Credentials out of every URL that strata logs, stores, hashes or prints.

A URL may carry a secret in its userinfo (`s3://KEY:SECRET@bucket/...`,
`https://user:password@host/...`) or in the query of a signed URL (`X-Amz-Signature=...`,
`sig=...`). `redact_url` replaces both with `REDACTED`; `redact_text` does it to every URL
inside a message; `redact_strings` to every URL string in a JSON-like value (a config).
Reading still uses the URL as given: only what is recorded or shown is redacted.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote

REDACTED = "REDACTED"

# Query parameters (compared case-insensitively) whose value is a secret: AWS SigV4 and
# SigV2 presigned URLs, Google Cloud Storage signed URLs, Azure SAS tokens, and the usual
# token, key and password parameters of HTTP APIs.
SECRET_QUERY_PARAMETERS = frozenset(
    {
        "x-amz-signature", "x-amz-credential", "x-amz-security-token",
        "awsaccesskeyid", "signature",
        "x-goog-signature", "x-goog-credential",
        "sig",
        "token", "access_token", "refresh_token", "id_token", "session_token", "security_token",
        "key", "api_key", "apikey", "access_key", "secret", "secret_key", "client_secret",
        "password", "passwd", "pwd", "auth", "authorization", "credential", "credentials",
    }
)

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
_AUTHORITY = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<authority>[^/?#]*)(?P<rest>.*)$", re.S)


def redact_url(url: str) -> str:
    """`url` without the secrets of its userinfo and query; any other string unchanged."""
    match = _AUTHORITY.match(url)
    if not match:
        return url
    authority = match["authority"]
    if "@" in authority:
        authority = f"{REDACTED}@{authority.rsplit('@', 1)[1]}"
    rest = match["rest"]
    if "?" in rest:
        path, _, tail = rest.partition("?")
        query, hash_, fragment = tail.partition("#")
        rest = f"{path}?{_redact_query(query)}{hash_}{fragment}"
    return f"{match['scheme']}{authority}{rest}"


def _redact_query(query: str) -> str:
    parts = []
    for item in query.split("&"):
        name, eq, _ = item.partition("=")
        secret = unquote(name.replace("+", " ")).strip().lower() in SECRET_QUERY_PARAMETERS
        parts.append(f"{name}={REDACTED}" if secret and eq else item)
    return "&".join(parts)


def redact_text(text: str) -> str:
    """Every URL inside `text` redacted (punctuation that ends a sentence is not part of it)."""

    def redact(match: re.Match) -> str:
        url = match.group(0)
        body = url.rstrip(").,;:!?]")
        return redact_url(body) + url[len(body):]

    return _URL.sub(redact, text)


def redact_strings(value: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings) with every URL string redacted."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_strings(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_strings(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Redacts the formatted message of every log record that passes a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
