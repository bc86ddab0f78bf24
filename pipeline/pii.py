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
import string
from collections.abc import Iterator

from strata.config import PIIConfig

PLACEHOLDERS = {"email": "|||EMAIL_ADDRESS|||", "ip": "|||IP_ADDRESS|||", "phone": "|||PHONE_NUMBER|||"}
KINDS = tuple(PLACEHOLDERS)

_LOCAL_PUNCTUATION = "!#$%&'*+/=?^_`{|}~-"
_LOCAL_CHARACTERS = frozenset(string.ascii_letters + string.digits + _LOCAL_PUNCTUATION)
_LOCAL = rf"A-Za-z0-9{_LOCAL_PUNCTUATION}"  # an email local part's characters, "." aside
_EMAIL = (
    rf"[{_LOCAL}]+(?:\.[{_LOCAL}]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}(?![\w-])"
)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"(?<![\w.-]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w-]|\.\w)"
_IPV6 = r"(?<![\w:.-])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:-]|\.\w)"
_PHONE = (
    r"(?<![\w+-])(?:\(\d{3}\)\s?|\d{3}[-. ])\d{3}[-. ]\d{4}(?![\w-])"  # (555) 123-4567, 555-123-4567
    r"|(?<![\w+])\+\d{1,3}(?:[-. ]\(?\d{1,4}\)?){2,5}(?![\w-])"  # +49 30 1234 5678
)
PATTERNS = {"email": _EMAIL, "ip": f"{_IPV4}|{_IPV6}", "phone": _PHONE}
# The branches of the alternation in order (an IP address is an IPv4 or an IPv6 one), each
# with its kind and what every match of it contains: a text without that holds no such
# match, and the branch is left out of the scan (most documents have no "@", no dotted
# quad, no phone-like digits).
_BRANCHES = {
    "email": ("email", _EMAIL, r"@[A-Za-z0-9]"),
    "ipv4": ("ip", _IPV4, r"\d\.\d{1,3}\.\d"),
    "ipv6": ("ip", _IPV6, r":[0-9A-Fa-f]{0,4}:"),
    "phone": ("phone", _PHONE, r"\+\d|\d{3}[-. ]\d{4}"),
}


@functools.cache
def _hint(branch: str) -> re.Pattern:
    return re.compile(_BRANCHES[branch][2])


@functools.cache
def _pattern(branches: tuple[str, ...], scan: bool = False) -> re.Pattern:
    """The branches' patterns as one alternation, each a named group. The `scan` form starts
    an email only where no local-part character precedes: the plain form tries the local
    part again at every character of every word, and both find the same matches (see
    _matches)."""
    email = rf"(?<![{_LOCAL}])" if scan else ""
    return re.compile("|".join(f"(?P<{b}>{email if b == 'email' else ''}{_BRANCHES[b][1]})" for b in branches))


def _matches(text: str) -> Iterator[tuple[str, re.Match]]:
    """(kind, match) of what `re.finditer("|".join(PATTERNS.values()), text)` finds, faster.
    A leftmost email can start after a local-part character only right where the previous
    match ended (anywhere else the character before would start a longer email), so only
    there is the plain form tried."""
    branches = tuple(b for b in _BRANCHES if _hint(b).search(text))
    if not branches:
        return
    plain, scan = _pattern(branches), _pattern(branches, scan=True)
    pos = 0
    while True:
        after_local = 0 < pos < len(text) and text[pos - 1] in _LOCAL_CHARACTERS
        match = plain.match(text, pos) if after_local and "email" in branches else None
        if match is None and (match := scan.search(text, pos)) is None:
            return
        yield _BRANCHES[match.lastgroup][0], match
        pos = match.end()


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
    for kind, match in _matches(text):
        if kind not in enabled or (kind == "ip" and not _is_redactable_ip(match.group(), cfg.public_ips_only)):
            continue
        counts[kind] += 1
        pieces += [text[last : match.start()], PLACEHOLDERS[kind]]
        last = match.end()
    if not pieces:
        return text, counts
    pieces.append(text[last:])
    return "".join(pieces), counts
