"""Per-type masks in pure Python: the executable specification of every masked value.

A mask never splits a grapheme. Graphemes are approximated the way the native module does it: a
base code point plus the code points that extend it — combining marks (categories Mn, Mc, Me),
variation selectors, emoji skin-tone modifiers, tag characters, zero-width joiners and the code
point right after a joiner. Both implementations share this definition and the Unicode database of
the running interpreter, so they agree on every input.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

BULLET = "\u2022"
FULL = BULLET * 8
POLICIES = frozenset({"partial", "full", "redact"})

_ZWJ = 0x200D
_MARKS = frozenset({"Mn", "Mc", "Me"})

# The label a "redact" policy writes for each field kind; unknown kinds get the neutral one.
LABELS = {
    "email": "[EMAIL]",
    "card": "[CARD]",
    "ssn": "[SSN]",
    "phone": "[PHONE]",
    "iban": "[IBAN]",
    "name": "[NAME]",
    "text": "[TEXT]",
    "date": "[DATE]",
    "number": "[NUMBER]",
    "boolean": "[BOOLEAN]",
}
UNKNOWN_LABEL = "[REDACTED]"


def extends_cluster(cp: int) -> bool:
    """Whether code point ``cp`` joins the grapheme before it."""
    if cp < 0x300:
        return False
    if (
        cp == _ZWJ
        or 0xFE00 <= cp <= 0xFE0F
        or 0x1F3FB <= cp <= 0x1F3FF
        or 0xE0020 <= cp <= 0xE007F
        or 0xE0100 <= cp <= 0xE01EF
    ):
        return True
    return unicodedata.category(chr(cp)) in _MARKS


def cluster_end(value: str, start: int) -> int:
    """End (exclusive) of the grapheme that begins at ``start``."""
    n = len(value)
    j = start + 1
    while j < n and (ord(value[j - 1]) == _ZWJ or extends_cluster(ord(value[j]))):
        j += 1
    return j


def graphemes(value: str) -> list[str]:
    """Split ``value`` into graphemes (see the module docstring for the rule)."""
    out: list[str] = []
    i = 0
    while i < len(value):
        j = cluster_end(value, i)
        out.append(value[i:j])
        i = j
    return out


def _first(value: str) -> str:
    return value[: cluster_end(value, 0)] if value else ""


def mask_generic(value: str) -> str:
    """``••••`` plus the last 4 graphemes when there are at least 8, else 8 bullets."""
    parts = graphemes(value)
    if len(parts) >= 8:
        return BULLET * 4 + "".join(parts[-4:])
    return FULL


def mask_email(value: str) -> str:
    """``john.doe@example.com`` → ``j•••@e•••••.com``; fixed bullet counts hide the length."""
    if "@" not in value:
        return mask_generic(value)
    local, _, domain = value.rpartition("@")
    tld = "." + domain.rpartition(".")[2] if "." in domain else ""
    return _first(local) + BULLET * 3 + "@" + _first(domain) + BULLET * 5 + tld


def mask_card(value: str) -> str:
    """Keep the last 4 digits (PCI DSS), only digits counted; fewer than 8 digits → all masked."""
    digits = [c for c in value if c.isdecimal()]
    tail = "".join(digits[-4:]) if len(digits) >= 8 else BULLET * 4
    return "•••• •••• •••• " + tail


def mask_ssn(value: str) -> str:
    """``•••-••-6789``: the serial is kept only when the value holds exactly 9 digits."""
    digits = [c for c in value if c.isdecimal()]
    tail = "".join(digits[-4:]) if len(digits) == 9 else BULLET * 4
    return "•••-••-" + tail


def mask_phone(value: str) -> str:
    """Every digit but the last 4 becomes ``•``, other characters stay; < 7 digits → all masked."""
    units = graphemes(value)
    total = sum(1 for u in units if u[0].isdecimal())
    keep_from = total - 4 if total >= 7 else total
    out: list[str] = []
    seen = 0
    for unit in units:
        if unit[0].isdecimal():
            out.append(unit if seen >= keep_from else BULLET)
            seen += 1
        else:
            out.append(unit)
    return "".join(out)


def mask_iban(value: str) -> str:
    """Country code, ``•`` for the middle, last 4, no whitespace; < 15 graphemes → 8 bullets."""
    units = graphemes("".join(c for c in value if not c.isspace()))
    if len(units) < 15:
        return FULL
    return units[0] + units[1] + BULLET * (len(units) - 6) + "".join(units[-4:])


def mask_name(value: str) -> str:
    """Initials: ``John Ronald Tolkien`` → ``J. R. T.``; no part → 8 bullets."""
    parts = value.split()
    if not parts:
        return FULL
    return " ".join(_first(part).upper() + "." for part in parts)


PARTIAL: dict[str, Callable[[str], str]] = {
    "email": mask_email,
    "card": mask_card,
    "ssn": mask_ssn,
    "phone": mask_phone,
    "iban": mask_iban,
    "name": mask_name,
}


def mask(kind: str, value: str, policy: str = "partial") -> str:
    """Mask ``value`` of field ``kind`` under ``policy`` (``partial`` | ``full`` | ``redact``)."""
    if policy == "partial":
        return PARTIAL.get(kind.lower(), mask_generic)(value)
    if policy == "full":
        return FULL
    if policy == "redact":
        return LABELS.get(kind.lower(), UNKNOWN_LABEL)
    raise ValueError(f"unknown mask policy {policy!r}; expected one of {sorted(POLICIES)}")
