"""PII redaction: each kind found and replaced by its placeholder, each switchable, and
the look-alikes of technical text (versions, dates, times, code) left alone."""

from __future__ import annotations

import ipaddress
import random
import re

import pytest

from strata.config import PIIConfig
from strata.pipeline.pii import KINDS, PATTERNS, PLACEHOLDERS, redact_pii

ON = PIIConfig()


@pytest.mark.parametrize(
    "text, expected, kind",
    [
        ("Write to jane.doe+lists@example-mail.co.uk today.", "Write to |||EMAIL_ADDRESS||| today.", "email"),
        ("Contact <bob_smith@mail.example.org>.", "Contact <|||EMAIL_ADDRESS|||>.", "email"),
        ("The server at 8.8.4.4 answered.", "The server at |||IP_ADDRESS||| answered.", "ip"),
        ("Reach 163.36.107.25:8080 first.", "Reach |||IP_ADDRESS|||:8080 first.", "ip"),
        ("Ping 2001:4860:4860::8888 now.", "Ping |||IP_ADDRESS||| now.", "ip"),
        ("Call (555) 123-4567 or 555.123.4567.", "Call |||PHONE_NUMBER||| or |||PHONE_NUMBER|||.", "phone"),
        ("Ring +49 30 1234 5678 after nine.", "Ring |||PHONE_NUMBER||| after nine.", "phone"),
    ],
)
def test_each_kind_is_replaced_by_its_placeholder(text, expected, kind):
    redacted, counts = redact_pii(text, ON)
    assert redacted == expected
    assert counts == {k: expected.count("|||") // 2 if k == kind else 0 for k in counts}


@pytest.mark.parametrize(
    "text",
    [
        "Python 3.11.4 and numpy 1.26.0 were installed; see release v1.2.3.4 and 1.2.3.4-rc1.",
        "Dates: 2024-01-15, 15.01.2024, 01/15/2024; times 12:30:45 and 23:59.",
        "for (int i = 0; i < 10; i++) { std::vector<int> v; a::b::c(); }",
        "@property\ndef x(self): return self.value @ other.matrix  # x@1.5, @decorator",
        "Order 1234567890 shipped; ISBN 978-3-16-148410-0; serial 00:1a:2b:3c:4d:5e.",
        "Local hosts 192.168.1.20, 10.0.0.1, 127.0.0.1 and ::1 are not personal.",
        "Score 3-2 in the 90th minute, 7 - 3 = 4, version 2.0.0 of the API.",
    ],
)
def test_technical_look_alikes_are_left_alone(text):
    assert redact_pii(text, ON) == (text, {"email": 0, "ip": 0, "phone": 0})


def test_each_kind_can_be_switched_off():
    text = "Mail a@example.com from 8.8.8.8 or call 555-123-4567."
    assert redact_pii(text, PIIConfig(email=False))[0] == "Mail a@example.com from |||IP_ADDRESS||| or call |||PHONE_NUMBER|||."
    assert redact_pii(text, PIIConfig(ip=False))[0] == "Mail |||EMAIL_ADDRESS||| from 8.8.8.8 or call |||PHONE_NUMBER|||."
    assert redact_pii(text, PIIConfig(phone=False))[0] == "Mail |||EMAIL_ADDRESS||| from |||IP_ADDRESS||| or call 555-123-4567."
    assert redact_pii(text, PIIConfig(enabled=False)) == (text, {"email": 0, "ip": 0, "phone": 0})


def test_private_addresses_go_too_when_asked():
    redacted, counts = redact_pii("Gateway 192.168.1.1 and fd00::1.", PIIConfig(public_ips_only=False))
    assert redacted == "Gateway |||IP_ADDRESS||| and |||IP_ADDRESS|||."
    assert counts["ip"] == 2


def test_curate_redacts_per_category_and_counts_per_kind(tmp_path):
    import json
    import random

    import pyarrow.dataset as ds

    from corpus import prose
    from conftest import IN_MEMORY
    from strata.config import parse_config
    from strata.pipeline.curate import read_lineage
    from strata.pipeline.curate_steps import run_curate

    rng = random.Random(3)
    contact = " Write to jane@example.com or call 555-123-4567; the mirror is at 8.8.8.8."
    records = [{"text": prose(rng) + contact, "cat": "Web"}, {"text": prose(rng) + contact, "cat": "Code"},
               {"text": prose(rng), "cat": "Web"}]
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    config = parse_config({
        "sources": [{"name": "s", "format": "jsonl", "paths": [str(tmp_path / "docs.jsonl")], "category_field": "cat"}],
        "filters": {"c4": {"enabled": False}, "gopher_quality": {"min_words": 20},
                    "per_category": {"Code": {"pii": {"enabled": False}}}},
    })
    summary = run_curate(config, str(tmp_path / "out"), IN_MEMORY)
    assert summary["pii"] == {"email": {"documents": 1, "matches": 1}, "ip": {"documents": 1, "matches": 1},
                              "phone": {"documents": 1, "matches": 1}}
    lineage = {r["record_index"]: r for r in read_lineage(str(tmp_path / "out")).to_pylist()}
    assert [(lineage[i]["pii_email"], lineage[i]["pii_ip"], lineage[i]["pii_phone"]) for i in range(3)] == [
        (1, 1, 1), (0, 0, 0), (0, 0, 0)]
    curated = ds.dataset(tmp_path / "out" / "curated", format="parquet").to_table().to_pylist()
    text_of = {r["record_index"]: r["text"] for r in curated}
    assert text_of[0].endswith(" Write to |||EMAIL_ADDRESS||| or call |||PHONE_NUMBER|||; the mirror is at |||IP_ADDRESS|||.")
    assert text_of[1] == records[1]["text"] and text_of[2] == records[2]["text"]


def test_a_text_with_nothing_redacted_is_not_copied_and_kept_matches_stay_in_place():
    text = "served from 192.168.0.1 and 10.0.0.2, ask dev@python.org at 8.8.8.8 " * 3
    assert redact_pii(text, PIIConfig(email=False))[0] == text.replace("8.8.8.8", "|||IP_ADDRESS|||")
    untouched = "served from 192.168.0.1 and 10.0.0.2 only\n" * 3  # private addresses: kept by default
    redacted, counts = redact_pii(untouched, ON)
    assert redacted is untouched and not any(counts.values())


def _reference_redaction(text: str) -> str:
    """The definition: one alternation of the kinds' patterns, scanned with finditer."""
    pattern = re.compile("|".join(f"(?P<{kind}>{PATTERNS[kind]})" for kind in KINDS))

    def replace(match: re.Match) -> str:
        if match.lastgroup == "ip":
            try:
                if not ipaddress.ip_address(match.group()).is_global:
                    return match.group()
            except ValueError:  # IPv6's pattern matches more than the valid addresses
                return match.group()
        return PLACEHOLDERS[match.lastgroup]

    return pattern.sub(replace, text)


def test_the_fast_scan_finds_what_the_plain_alternation_finds():
    # Texts dense in the characters where the scan's shortcuts could differ: local-part
    # punctuation right after a match, dots, colons, digits, "@" and "+".
    rng = random.Random(7)
    pieces = ["a", "b7", "x.y", "..", "@", "@ex.com", "@mail.example.org", "#", "/", "+", "-", ".", ":", "::",
              " ", "\n", "1", "12", "555", "8.8.4.4", "163.36.107.25", "2001:db8::1", "(555) ", "123-4567",
              "+49 30 1234 5678", "v1.2", "é", "日本"]
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 30)))
        assert redact_pii(text, ON)[0] == _reference_redaction(text), text
