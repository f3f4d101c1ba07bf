"""The public facade: its types, styles and the fast path of the log pipeline."""

from __future__ import annotations

import dataclasses

import pytest

import strongroom.privacy as privacy
from strongroom.privacy import Finding, Redaction

TEXT = (
    "Contact john.doe@example.com or (415) 555-0134; card 4242 4242 4242 4242, "
    "ssn 123-45-6789, IBAN DE89 3704 0044 0532 0130 00, from 10.1.2.3 with Bearer abc123def456"
)


def test_public_constants() -> None:
    assert privacy.IMPLEMENTATION in {"native", "python"}
    assert {"EMAIL", "CARD", "SSN", "PHONE", "IBAN", "IPV4", "IPV6", "CREDENTIAL"} == privacy.KINDS
    assert {"partial", "full", "redact"} == privacy.MASK_POLICIES


def test_scan_returns_frozen_findings() -> None:
    found = privacy.scan(TEXT)
    assert [f.kind for f in found] == [
        "EMAIL",
        "PHONE",
        "CARD",
        "SSN",
        "IBAN",
        "IPV4",
        "CREDENTIAL",
    ]
    assert TEXT[found[0].start : found[0].end] == "john.doe@example.com"
    with pytest.raises(dataclasses.FrozenInstanceError):
        found[0].start = 1  # type: ignore[misc]


def test_redact_label_style() -> None:
    result = privacy.redact(TEXT)
    assert isinstance(result, Redaction)
    assert result.text == (
        "Contact [EMAIL] or [PHONE]; card [CARD], ssn [SSN], IBAN [IBAN], "
        "from [IPV4] with Bearer [CREDENTIAL]"
    )
    assert result.findings == tuple(privacy.scan(TEXT))
    assert result.text == privacy.redact_text(TEXT)


def test_redact_mask_style_keeps_labels_for_credentials_and_addresses() -> None:
    result = privacy.redact(TEXT, style="mask")
    assert result.text == (
        "Contact j•••@e•••••.com or (•••) •••-0134; card •••• •••• •••• 4242, "
        "ssn •••-••-6789, IBAN DE••••••••••••••••3000, from [IPV4] with Bearer [CREDENTIAL]"
    )


def test_redact_rejects_unknown_style() -> None:
    with pytest.raises(ValueError, match="unknown redaction style"):
        privacy.redact(TEXT, style="hash")


def test_redact_text_returns_the_same_object_when_clean() -> None:
    clean = "GET /v1/records 200 in 3 ms"
    assert privacy.redact_text(clean) is clean
    assert privacy.redact(clean) == Redaction(clean, ())


def test_mask_facade() -> None:
    assert privacy.mask("email", "john.doe@example.com") == "j•••@e•••••.com"
    assert privacy.mask("name", "John Ronald Tolkien") == "J. R. T."
    with pytest.raises(ValueError, match="unknown mask policy"):
        privacy.mask("email", "x", "hash")


def test_finding_is_a_value() -> None:
    assert Finding("EMAIL", 0, 3) == Finding("EMAIL", 0, 3)
    assert not hasattr(Finding("EMAIL", 0, 3), "__dict__")
