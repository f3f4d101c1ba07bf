"""Hypothesis: the compiled module and the pure twin agree on every input."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import PURE, Impl

FRAGMENTS = [
    "john.doe@example.com",
    "zoë@exämple.de",
    "a@b",
    "x@y.c",
    "@",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "4111111111111111",
    "4111111111111112",
    "378282246310005",
    "123-45-6789",
    "123 45 6789",
    "000-12-3456",
    "666-12-3456",
    "900-12-3456",
    "(415) 555-0134",
    "415-555-0134",
    "415.555.0134",
    "+1 415 555 0134",
    "+44 20 7946 0958",
    "+14155550134",
    "DE89 3704 0044 0532 0130 00",
    "DE89370400440532013000",
    "GB82 WEST 1234 5698 7654 32",
    "192.168.1.1",
    "256.1.1.1",
    "1.2.3.4.5",
    "fe80::1",
    "::ffff:10.0.0.1",
    "::",
    "2001:db8::",
    "1:2:3:4:5:6:7:8",
    "Bearer ",
    "bearer abc123def456",
    "srk_0123456789abcdef_",
    "A" * 43,
    "eyJ",
    "eyJhbGciOi.eyJzdWIi.sig",
    "-----BEGIN RSA PRIVATE KEY-----",
    "-----END RSA PRIVATE KEY-----",
    "2024-01-15",
    "12/05/2023",
    "e\u0301",
    "👍🏽",
    "👨‍👩‍👧",
    "\u200d",
    "\ufe0f",
    "\ud800",
    "\x00",
    "名前",
    "العربية",
    "١٢٣",
    "0",
    "1",
    "9",
    "00",
    "ff",
]
SEPARATORS = ["", " ", "  ", "-", ".", ":", "::", "@", ",", "\n", "_", "/", "(", ")", "+", "="]

pii_text = st.lists(
    st.tuples(st.sampled_from(FRAGMENTS), st.sampled_from(SEPARATORS)), max_size=12
).map(lambda parts: "".join(a + b for a, b in parts))
digits_and_separators = st.text(alphabet="0123456789 -.:+()/@abcdefABCDEF", max_size=60)
any_text = st.one_of(st.text(), pii_text, digits_and_separators)
KINDS = ["email", "card", "ssn", "phone", "iban", "name", "text", "date", "unknown", "EMAIL"]

SETTINGS = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def native_module() -> Impl:
    from .conftest import native_impl

    return native_impl()


@SETTINGS
@given(text=any_text)
def test_scan_native_equals_pure(native_module: Impl, text: str) -> None:
    assert native_module.scan(text) == PURE.scan(text)


@SETTINGS
@given(text=any_text)
def test_redact_native_equals_pure(native_module: Impl, text: str) -> None:
    assert native_module.redact_labels(text) == PURE.redact_labels(text)


@SETTINGS
@given(
    kind=st.sampled_from(KINDS),
    value=any_text,
    policy=st.sampled_from(["partial", "full", "redact"]),
)
def test_mask_native_equals_pure(native_module: Impl, kind: str, value: str, policy: str) -> None:
    assert native_module.mask(kind, value, policy) == PURE.mask(kind, value, policy)


@SETTINGS
@given(text=any_text)
def test_findings_are_sorted_disjoint_and_inside(text: str) -> None:
    found = PURE.scan(text)
    assert all(0 <= start < end <= len(text) for _, start, end in found)
    assert all(a[2] <= b[1] for a, b in itertools.pairwise(found))
