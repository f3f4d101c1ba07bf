"""Where the compiled scanner skips ahead, it must still report exactly what the twin reports.

The compiled main loop stops only where a finding can begin, picking those positions out 64 code
points at a time, and finds an email from its ``@`` backwards (``native/README.md``). These cases
aim at the edges of that strategy: values straddling a 64-code-point block, the three str kinds,
non-ASCII code points whose low byte looks like a trigger, and findings inside an email's local
part. Every case runs against both implementations.
"""

from __future__ import annotations

import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import PURE, Impl, native_impl
from .test_privacy_equivalence import FRAGMENTS

KEY = "srk_0123456789abcdef_" + "Ab0_-" * 8 + "xyz"
LONG_LOCAL = "a" * 130 + "_" + "b" * 130  # spans five blocks
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"

# (value, kind): each value is found whole when it stands alone between spaces.
VALUES = [
    ("::1", "IPV6"),
    ("fe80::1", "IPV6"),
    ("2001:db8::1", "IPV6"),
    ("john.doe@example.com", "EMAIL"),
    ("4111 1111 1111 1111", "CARD"),
    ("123-45-6789", "SSN"),
    ("(415) 555-0134", "PHONE"),
    ("+44 20 7946 0958", "PHONE"),
    ("DE89 3704 0044 0532 0130 00", "IBAN"),
    ("192.168.1.1", "IPV4"),
    (KEY, "CREDENTIAL"),
    (PEM, "CREDENTIAL"),
]
# Padding of each str kind: ASCII, Latin-1, UCS-2 (CJK above U+8000), UCS-4 (emoji).
PADDING = [" ", "é ", "가 ", "😀 "]

# (text, findings as (kind, exact substring) in order): what the twin reports.
CASES: list[tuple[str, list[tuple[str, str]]]] = [
    # another matcher succeeds inside an email's local part: the email starts earlier, wins
    ("x.4111111111111111@example.com", [("EMAIL", "x.4111111111111111@example.com")]),
    ("a-4111111111111111@example.com", [("EMAIL", "a-4111111111111111@example.com")]),
    ("1.2.3.4@example.com", [("EMAIL", "1.2.3.4@example.com")]),
    # same start, the email reaches further
    ("DE89370400440532013000@example.com", [("EMAIL", "DE89370400440532013000@example.com")]),
    (KEY + "@example.com", [("EMAIL", KEY + "@example.com")]),
    ("eyJx.y.z@example.com", [("EMAIL", "eyJx.y.z@example.com")]),
    # the email's leading '+' is not part of it
    ("+14155550134@example.com", [("EMAIL", "14155550134@example.com")]),
    ("+14155550134.x@example.com", [("EMAIL", "14155550134.x@example.com")]),
    # an earlier position wins even when the email would reach further
    ("bearer abc123def456@example.com", [("CREDENTIAL", "abc123def456")]),
    ("(415) 555-0134@example.com", [("PHONE", "(415) 555-0134")]),
    ("::1@example.com", [("IPV6", "::1")]),
    ("12:30@example.com", [("EMAIL", "30@example.com")]),
    # the email fails, the finding inside its local part stands
    ("4111111111111111.x@localhost", [("CARD", "4111111111111111")]),
    ("john.doe@example.com.4111111111111111", [("CARD", "4111111111111111")]),
    # two '@': the local part of the second starts after the first
    ("a@b.com@c.com", [("EMAIL", "b.com@c.com")]),
    ("x@@example.com", []),
    # a local part longer than a block
    ("note " + "a" * 70 + "@example.com", [("EMAIL", "a" * 70 + "@example.com")]),
    (LONG_LOCAL + "@example.com", [("EMAIL", LONG_LOCAL + "@example.com")]),
    # a non-ASCII letter before a digit makes it part of a word; other code points do not
    ("é4111111111111111", []),
    ("名4111111111111111", []),
    ("١4111111111111111", []),
    ("，4111111111111111", [("CARD", "4111111111111111")]),
    ("😀4111111111111111", [("CARD", "4111111111111111")]),
    # non-ASCII code points whose low byte is '@', ':' or '-' trigger nothing
    ("john\u0140example.com", []),
    ("1\u3a3a2 \u3a3a1 fe80\u3a3a1", []),
    ("fe80\U0001003a\U0001003a1", []),
    ("\u2d2d\u2d2d\u2d2d\u2d2d\u2d2dBEGIN RSA PRIVATE KEY-----\nMIIE", []),
    ("fe80\uff1a\uff1a1", []),
]


def spans(text: str, expected: list[tuple[str, str]]) -> list[tuple[str, int, int]]:
    out = []
    pos = 0
    for kind, value in expected:
        start = text.index(value, pos)
        out.append((kind, start, start + len(value)))
        pos = start + len(value)
    return out


def labelled(text: str, found: list[tuple[str, int, int]]) -> str:
    parts, pos = [], 0
    for kind, start, end in found:
        parts += [text[pos:start], f"[{kind}]"]
        pos = end
    return "".join(parts) + text[pos:]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=lambda v: repr(v)[:40])
def test_skipping_cases(impl: Impl, text: str, expected: list[tuple[str, str]]) -> None:
    want = spans(text, expected)
    assert impl.scan(text) == want
    assert impl.redact_labels(text) == labelled(text, want)


@pytest.mark.parametrize("pad", PADDING, ids=["ascii", "latin1", "ucs2", "ucs4"])
@pytest.mark.parametrize(("value", "kind"), VALUES, ids=[v for v, _ in VALUES])
def test_value_at_every_block_offset(impl: Impl, value: str, kind: str, pad: str) -> None:
    # Offsets 0..130 put the value's start, its end and its neighbours on every position of
    # the first two 64-code-point blocks; a second copy follows right after the first.
    for offset in range(131):
        head = (pad * offset)[: offset - 1] + " " if offset else ""
        text = f"{head}{value} ; {value} {pad}"
        first = len(head)
        second = first + len(value) + 3
        expected = [(kind, first, first + len(value)), (kind, second, second + len(value))]
        assert impl.scan(text) == expected, (offset, text)
        assert impl.redact_labels(text) == labelled(text, expected)


@pytest.mark.parametrize(
    ("text", "ascii"),
    [
        ("é " + PEM.replace("MIIE", "MIIé"), False),  # an é is left outside: still Latin-1
        (PEM.replace("MIIE", "MIIé"), True),  # the only é was inside the key
        (PEM.replace("MIIE", "MII😀") + " 名", False),  # UCS-4 input, UCS-2 result
        ("zoë@exämple.de and 4111111111111111", True),
        ("😀 john@example.com", False),
    ],
)
def test_redacted_text_has_the_narrowest_representation(impl: Impl, text: str, ascii: bool) -> None:
    found = PURE.scan(text)
    want = labelled(text, found)
    result = impl.redact_labels(text)
    assert found
    assert result == want
    assert result.isascii() is ascii
    assert sys.getsizeof(result) == sys.getsizeof(want)  # same kind, so the same size


long_text = st.lists(
    st.tuples(
        st.sampled_from(FRAGMENTS + [v for v, _ in VALUES]),
        st.sampled_from(["", " ", "-", ":", "@", ".", "é", "가", "😀", "x" * 40, " " * 63]),
    ),
    min_size=4,
    max_size=30,
).map(lambda parts: "".join(a + b for a, b in parts))


@pytest.fixture(scope="module")
def native_module() -> Impl:
    return native_impl()


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=long_text)
def test_long_texts_native_equals_pure(native_module: Impl, text: str) -> None:
    assert native_module.scan(text) == PURE.scan(text)
    assert native_module.redact_labels(text) == PURE.redact_labels(text)
