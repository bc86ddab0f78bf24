"""PII redaction: email addresses, IP addresses and phone numbers replaced by typed
placeholders, as DataTrove's PIIFormatter and Dolma's PII tagger do.

Patterns and their sources:
  email   DataTrove's PIIFormatter (an RFC 5322 local part, a dotted domain); the domain must
          end in a label of letters, so code such as `x@1.5` or `@decorator` never matches
          (but `a.b@c.de`, matrix products written without spaces, does)
  ip      IPv4 as in DataTrove's PIIFormatter (four dotted octets 0-255, validated with
          `ipaddress`; by default only public addresses, as DataTrove's only_remove_public_ips);
          IPv6 validated with `ipaddress` the same way. Not preceded or followed by a letter,
          digit, "." or "-", so version strings such as `v1.2.3.4` or `1.2.3.4-rc1` stay
  phone   Dolma's PII tagger's North American pattern (3-3-4 digits, optional parentheses),
          with separators required, and international numbers written with a leading "+"
          and at least two separated groups; runs of digits without separators (ids, dates
          like 2024-01-15, ISBNs of other shapes) do not match

Placeholders are Dolma's: |||EMAIL_ADDRESS|||, |||IP_ADDRESS|||, |||PHONE_NUMBER|||.
A pure function over a document's text; the patterns are compiled on first use.
"""

from __future__ import annotations

import functools
import ipaddress
import re

from strata.config import PIIConfig

PLACEHOLDERS = {"email": "|||EMAIL_ADDRESS|||", "ip": "|||IP_ADDRESS|||", "phone": "|||PHONE_NUMBER|||"}
KINDS = tuple(PLACEHOLDERS)

_EMAIL = (
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}(?![\w-])"
)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"(?<![\w.-]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w-]|\.\w)"
_IPV6 = r"(?<![\w:.-])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:-]|\.\w)"
_PHONE = (
    r"(?<![\w+-])(?:\(\d{3}\)\s?|\d{3}[-. ])\d{3}[-. ]\d{4}(?![\w-])"  # (555) 123-4567, 555-123-4567
    r"|(?<![\w+])\+\d{1,3}(?:[-. ]\(?\d{1,4}\)?){2,5}(?![\w-])"  # +49 30 1234 5678
)


@functools.cache
def _pattern() -> re.Pattern:
    return re.compile(rf"(?P<email>{_EMAIL})|(?P<ip>{_IPV4}|{_IPV6})|(?P<phone>{_PHONE})")


def _is_redactable_ip(text: str, public_only: bool) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return address.is_global or not public_only


def redact_pii(text: str, cfg: PIIConfig) -> tuple[str, dict[str, int]]:
    """(`text` with every enabled kind of PII replaced by its placeholder, matches per kind).
    Returns `text` itself when nothing was replaced."""
    counts = dict.fromkeys(KINDS, 0)
    if not cfg.enabled:
        return text, counts
    enabled = {kind for kind in KINDS if getattr(cfg, kind)}
    # Only the redacted parts are cut out: a text with nothing to redact is never copied
    # (re.sub would build the whole copy first; a long document's copy is what costs).
    pieces, last = [], 0
    for match in _pattern().finditer(text):
        kind = match.lastgroup
        if kind not in enabled or (kind == "ip" and not _is_redactable_ip(match.group(), cfg.public_ips_only)):
            continue
        counts[kind] += 1
        pieces += [text[last : match.start()], PLACEHOLDERS[kind]]
        last = match.end()
    if not pieces:
        return text, counts
    pieces.append(text[last:])
    return "".join(pieces), counts
