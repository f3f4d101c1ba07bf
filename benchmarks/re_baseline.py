"""The redactor a Python developer would write with ``re``: the baseline of the benchmarks.

A handful of compiled patterns applied one after the other with ``sub``, with the Luhn, mod-97
and SSN checks done in Python inside the replacement callbacks.
"""

from __future__ import annotations

import re
from collections.abc import Callable

EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
PEM = re.compile(r"-----BEGIN ([A-Z ]*PRIVATE KEY)-----.*?(?:-----END \1-----|\Z)", re.DOTALL)
API_KEY = re.compile(r"\bsrk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")
JWT = re.compile(r"\beyJ[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+){2,}")
BEARER = re.compile(r"(?i)\b(bearer) +([A-Za-z0-9._~+/-]{8,}=*)")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?|[A-Z0-9]{11,30})\b")
CARD = re.compile(r"(?<![\d.-])\d(?:[ -]?\d){12,18}(?![\d])")
SSN = re.compile(r"(?<![\w.-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\w])")
PHONE = re.compile(
    r"(?<![\w.-])(?:\+\d[\d .-]{7,18}\d|(?:\+1[ .-]?)?(?:\([2-9]\d\d\) ?|[2-9]\d\d[-. ])"
    r"[2-9]\d\d[-. ]\d{4})(?![\w])"
)
IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\w]|\.\d)"
)
IPV6 = re.compile(
    r"(?<![\w:])(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|(?<![\w:])(?:[0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{0,4}"
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for pos, ch in enumerate(reversed(digits)):
        d = int(ch)
        if pos % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(value: str) -> bool:
    compact = value.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _card(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group())
    return "[CARD]" if luhn_ok(digits) else m.group()


def _ssn(m: re.Match[str]) -> str:
    area, group, serial = m.group(1), m.group(3), m.group(4)
    bad = area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000"
    return m.group() if bad else "[SSN]"


def _iban(m: re.Match[str]) -> str:
    return "[IBAN]" if iban_ok(m.group()) else m.group()


def _phone(m: re.Match[str]) -> str:
    return "[PHONE]" if 8 <= sum(c.isdigit() for c in m.group()) <= 15 else m.group()


RULES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (PEM, "[CREDENTIAL]"),
    (API_KEY, "[CREDENTIAL]"),
    (JWT, "[CREDENTIAL]"),
    (BEARER, r"\1 [CREDENTIAL]"),
    (EMAIL, "[EMAIL]"),
    (IBAN, _iban),
    (CARD, _card),
    (SSN, _ssn),
    (PHONE, _phone),
    (IPV6, "[IPV6]"),
    (IPV4, "[IPV4]"),
]


def redact(text: str) -> str:
    """Label-style redaction, one ``sub`` per pattern."""
    for pattern, repl in RULES:
        text = pattern.sub(repl, text)
    return text
