"""The golden scanner table, run against the pure twin and the compiled module alike."""

from __future__ import annotations

import itertools

import pytest

from .conftest import Impl

KEY = "srk_0123456789abcdef_" + "Ab0_-" * 8 + "xyz"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
MB = 1 << 20

# (text, expected findings as (kind, exact substring) in order)
GOLDEN: list[tuple[str, list[tuple[str, str]]]] = [
    ("", []),
    ("hello world", []),
    ("plain ASCII text without anything in it, 100% safe.", []),
    # emails
    ("john.doe@example.com", [("EMAIL", "john.doe@example.com")]),
    ("Mail: <john_doe+tag@mail.example.org>.", [("EMAIL", "john_doe+tag@mail.example.org")]),
    ("josé@exämple.de", [("EMAIL", "josé@exämple.de")]),
    ("名前@例え.日本", [("EMAIL", "名前@例え.日本")]),
    ("..john@example.com", [("EMAIL", "john@example.com")]),
    ("user@localhost", []),
    ("user@example.c", []),
    ("user@example.c0m", []),
    ("user@-example.com", []),
    ("@example.com", []),
    ("john@", []),
    ("a@b.co_x", []),
    # cards
    ("4111111111111111", [("CARD", "4111111111111111")]),
    ("card 4111 1111 1111 1111 exp", [("CARD", "4111 1111 1111 1111")]),
    ("4111-1111-1111-1111", [("CARD", "4111-1111-1111-1111")]),
    ("amex 378282246310005.", [("CARD", "378282246310005")]),
    ("4111111111111112", []),  # Luhn-invalid
    ("14111111111111111", []),  # inside a longer digit run
    ("41111111111111110000000", []),
    ("4111-1111-1111-1111-2", []),
    ("x4111111111111111", []),
    ("4111  1111 1111 1111", []),  # double space splits the run
    # SSNs
    ("ssn 123-45-6789", [("SSN", "123-45-6789")]),
    ("123 45 6789", [("SSN", "123 45 6789")]),
    ("000-12-3456", []),
    ("666-12-3456", []),
    ("900-12-3456 999-12-3456", []),
    ("123-00-6789", []),
    ("123-45-0000", []),
    ("123456789", []),  # bare 9 digits are not an SSN
    ("123-45 6789", []),
    ("1123-45-6789", []),
    ("123-45-67890", []),
    # phones
    ("(415) 555-0134", [("PHONE", "(415) 555-0134")]),
    ("call 415-555-0134 now", [("PHONE", "415-555-0134")]),
    ("415.555.0134", [("PHONE", "415.555.0134")]),
    ("+1 415 555 0134", [("PHONE", "+1 415 555 0134")]),
    ("+1 (415) 555-0134", [("PHONE", "+1 (415) 555-0134")]),
    ("1-800-555-0134", [("PHONE", "1-800-555-0134")]),
    ("+14155550134", [("PHONE", "+14155550134")]),
    ("+44 20 7946 0958", [("PHONE", "+44 20 7946 0958")]),
    ("(115) 555-0134", []),  # area code starts with 1
    ("415-155-0134", []),  # exchange starts with 1
    ("415-555.0134", []),  # mixed separators
    ("2024-01-15", []),
    ("12/05/2023", []),
    ("+1234567", []),  # 7 digits: too short for E.164
    ("+1234567890123456", []),  # 16 digits: too long
    ("4155550134", []),  # bare 10 digits are not a phone
    # IBANs
    ("DE89 3704 0044 0532 0130 00", [("IBAN", "DE89 3704 0044 0532 0130 00")]),
    ("IBAN DE89370400440532013000.", [("IBAN", "DE89370400440532013000")]),
    ("GB82 WEST 1234 5698 7654 32", [("IBAN", "GB82 WEST 1234 5698 7654 32")]),
    ("BE68 5390 0754 7034 then 1234", [("IBAN", "BE68 5390 0754 7034")]),
    ("DE88 3704 0044 0532 0130 00", []),  # wrong check digits
    ("de89370400440532013000", []),
    ("XDE89370400440532013000", []),
    # IPs
    ("ip 192.168.1.1", [("IPV4", "192.168.1.1")]),
    ("0.0.0.0 and 255.255.255.255", [("IPV4", "0.0.0.0"), ("IPV4", "255.255.255.255")]),
    ("10.0.0.1:8080", [("IPV4", "10.0.0.1")]),
    ("10.0.0.0/8", [("IPV4", "10.0.0.0")]),
    ("256.1.1.1", []),
    ("1.2.3.4.5", []),
    ("version 1.2.3.4.5 released", []),
    ("v1.2.3.4", []),
    ("1.2.3", []),
    ("2001:db8:85a3:0:0:8a2e:370:7334", [("IPV6", "2001:db8:85a3:0:0:8a2e:370:7334")]),
    ("[2001:db8::1]:443", [("IPV6", "2001:db8::1")]),
    ("::1", [("IPV6", "::1")]),
    ("fe80::1%eth0", [("IPV6", "fe80::1")]),
    ("::ffff:192.168.1.1", [("IPV6", "::ffff:192.168.1.1")]),
    ("12:30:45", []),
    ("std::vector", []),
    ("dead::beef", []),  # no digit: reads as code, not an address
    ("1:2:3:4:5:6:7", []),
    ("1::2::3", []),
    # credentials
    ("Authorization: Bearer abcDEF123456.x-y", [("CREDENTIAL", "abcDEF123456.x-y")]),
    ("bearer  tok3n_value==", [("CREDENTIAL", "tok3n_value==")]),
    ("Bearer of bad news", []),
    ("Bearer abc1", []),
    (f"key={KEY}", [("CREDENTIAL", KEY)]),
    (KEY[:-1], []),
    (KEY + "x", []),
    (f"token {JWT} end", [("CREDENTIAL", JWT)]),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0", []),
    (f"log: {PEM} done", [("CREDENTIAL", PEM)]),
    ("-----BEGIN PRIVATE KEY-----\nMIIE", [("CREDENTIAL", "-----BEGIN PRIVATE KEY-----\nMIIE")]),
    ("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----", []),
    # positions, neighbours, overlaps
    ("4111111111111111 at the start", [("CARD", "4111111111111111")]),
    ("at the end 4111111111111111", [("CARD", "4111111111111111")]),
    ("a@b.co", [("EMAIL", "a@b.co")]),
    ("4111111111111111@example.com", [("EMAIL", "4111111111111111@example.com")]),
    ("415-555-0134@example.com", [("EMAIL", "415-555-0134@example.com")]),
    ("123-45-6789 4111111111111111", [("SSN", "123-45-6789"), ("CARD", "4111111111111111")]),
    (
        "john@example.com,jane@example.org",
        [("EMAIL", "john@example.com"), ("EMAIL", "jane@example.org")],
    ),
    # non-ASCII surroundings
    ("📧 john@example.com 👍🏽", [("EMAIL", "john@example.com")]),
    ("e\u0301 4111111111111111 e\u0301", [("CARD", "4111111111111111")]),
    (
        "電話：415-555-0134、メール：li@example.cn。",
        [("PHONE", "415-555-0134"), ("EMAIL", "li@example.cn")],
    ),
    ("رقم البطاقة 4111111111111111 شكرا", [("CARD", "4111111111111111")]),
    ("עברית 123-45-6789", [("SSN", "123-45-6789")]),
    ("\x00john@example.com\x00", [("EMAIL", "john@example.com")]),
    ("\ud800 4111111111111111 \udfff", [("CARD", "4111111111111111")]),
    # long inputs
    ("1" * 5000, []),
    ("a" * MB, []),
    (("word " * (MB // 5)) + "john@example.com", [("EMAIL", "john@example.com")]),
    ("x" * MB + " 4111111111111111", [("CARD", "4111111111111111")]),
]


def spans(text: str, expected: list[tuple[str, str]]) -> list[tuple[str, int, int]]:
    out = []
    pos = 0
    for kind, value in expected:
        start = text.index(value, pos)
        out.append((kind, start, start + len(value)))
        pos = start + len(value)
    return out


@pytest.mark.parametrize(("text", "expected"), GOLDEN, ids=lambda v: repr(v)[:40])
def test_scan_golden(impl: Impl, text: str, expected: list[tuple[str, str]]) -> None:
    assert impl.scan(text) == spans(text, expected)


@pytest.mark.parametrize(("text", "expected"), GOLDEN, ids=lambda v: repr(v)[:40])
def test_redact_labels_golden(impl: Impl, text: str, expected: list[tuple[str, str]]) -> None:
    result = impl.redact_labels(text)
    if not expected:
        assert result is text
        return
    want, pos = [], 0
    for kind, start, end in spans(text, expected):
        want += [text[pos:start], f"[{kind}]"]
        pos = end
    assert result == "".join(want) + text[pos:]


def test_findings_sorted_and_disjoint(impl: Impl) -> None:
    text = " ".join(t for t, _ in GOLDEN if len(t) < 200)
    found = impl.scan(text)
    assert found
    assert all(a[2] <= b[1] for a, b in itertools.pairwise(found))
    assert all(start < end for _, start, end in found)
