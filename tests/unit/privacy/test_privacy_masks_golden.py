"""The golden mask table, run against the pure twin and the compiled module alike."""

from __future__ import annotations

import pytest

from .conftest import Impl

FULL = "••••••••"

# (kind, value, partial mask)
PARTIAL: list[tuple[str, str, str]] = [
    ("email", "john.doe@example.com", "j•••@e•••••.com"),
    ("email", "a@b.co", "a•••@b•••••.co"),
    ("email", "zoë@exämple.de", "z•••@e•••••.de"),
    ("email", "e\u0301mile@example.fr", "e\u0301•••@e•••••.fr"),
    ("email", "👨‍👩‍👧@family.example", "👨‍👩‍👧•••@f•••••.example"),
    ("email", "名前@例え.日本", "名•••@例•••••.日本"),
    ("email", "user@localhost", "u•••@l•••••"),
    ("email", "@example.com", "•••@e•••••.com"),
    ("email", "not an email at all", "•••• all"),
    ("email", "", FULL),
    ("EMAIL", "john@example.com", "j•••@e•••••.com"),
    ("card", "4242 4242 4242 4242", "•••• •••• •••• 4242"),
    ("card", "4242-4242-4242-4242", "•••• •••• •••• 4242"),
    ("card", "378282246310005", "•••• •••• •••• 0005"),
    ("card", "1234567", "•••• •••• •••• ••••"),
    ("card", "", "•••• •••• •••• ••••"),
    ("ssn", "123-45-6789", "•••-••-6789"),
    ("ssn", "123456789", "•••-••-6789"),
    ("ssn", "12345", "•••-••-••••"),
    ("phone", "+1 (415) 555-0134", "+• (•••) •••-0134"),
    ("phone", "415.555.0134", "•••.•••.0134"),
    ("phone", "555-0134", "•••-0134"),
    ("phone", "12-34", "••-••"),
    ("phone", "+44 20 7946 0958", "+•• •• •••• 0958"),
    ("phone", "٤١٥٥٥٥٠١٣٤", "••••••٠١٣٤"),
    ("phone", "4\u20e3155550134", "••••••0134"),  # the keycap mark goes with its digit
    ("iban", "DE89 3704 0044 0532 0130 00", "DE••••••••••••••••3000"),
    ("iban", "GB82WEST12345698765432", "GB••••••••••••••••5432"),
    ("iban", "DE89 3704", FULL),
    ("name", "John Ronald Tolkien", "J. R. T."),
    ("name", "  maria   garcía ", "M. G."),
    ("name", "émile zola", "É. Z."),
    ("name", "e\u0301mile", "E\u0301."),
    ("name", "李 小龍", "李. 小."),
    ("name", "محمد علي", "م. ع."),
    ("name", "", FULL),
    ("name", "   ", FULL),
    ("text", "hello world", "••••orld"),
    ("text", "short", FULL),
    ("text", "exactly8", "••••tly8"),
    ("text", "1234567", FULL),
    ("date", "2024-01-15", "••••1-15"),
    ("number", "12345678901", "••••8901"),
    ("boolean", "true", FULL),
    ("unknown-kind", "some value here", "••••here"),
    ("text", "👍🏽👍🏽👍🏽👍🏽👍🏽👍🏽👍🏽👍🏽", "••••👍🏽👍🏽👍🏽👍🏽"),
    ("text", "e\u0301" * 7, FULL),
    ("text", "e\u0301" * 8, "••••" + "e\u0301" * 4),
    ("text", "\ud800" * 9, "••••" + "\ud800" * 4),
    ("text", "\x00" * 3, FULL),
    ("text", "x" * (1 << 20), "••••xxxx"),
]

REDACT = [
    ("email", "[EMAIL]"),
    ("card", "[CARD]"),
    ("ssn", "[SSN]"),
    ("phone", "[PHONE]"),
    ("iban", "[IBAN]"),
    ("name", "[NAME]"),
    ("text", "[TEXT]"),
    ("date", "[DATE]"),
    ("number", "[NUMBER]"),
    ("boolean", "[BOOLEAN]"),
    ("Email", "[EMAIL]"),
    ("mystery", "[REDACTED]"),
]


@pytest.mark.parametrize(("kind", "value", "expected"), PARTIAL, ids=lambda v: repr(v)[:30])
def test_partial_mask_golden(impl: Impl, kind: str, value: str, expected: str) -> None:
    assert impl.mask(kind, value, "partial") == expected
    assert impl.mask(kind, value) == expected


@pytest.mark.parametrize(("kind", "value", "_"), PARTIAL, ids=lambda v: repr(v)[:30])
def test_full_mask_is_eight_bullets(impl: Impl, kind: str, value: str, _: str) -> None:
    assert impl.mask(kind, value, "full") == FULL


@pytest.mark.parametrize(("kind", "label"), REDACT)
def test_redact_policy_labels(impl: Impl, kind: str, label: str) -> None:
    assert impl.mask(kind, "john@example.com", "redact") == label


@pytest.mark.parametrize("policy", ["hash", "", "PARTIAL", "none"])
def test_unknown_policy_is_an_error(impl: Impl, policy: str) -> None:
    with pytest.raises(ValueError, match="unknown mask policy"):
        impl.mask("email", "john@example.com", policy)


def test_email_mask_does_not_leak_length(impl: Impl) -> None:
    short = impl.mask("email", "jo@example.com")
    long = impl.mask("email", "jonathan.livingstone@example.com")
    assert len(short) == len(long)
