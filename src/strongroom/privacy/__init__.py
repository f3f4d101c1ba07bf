"""Masking and PII redaction: one facade over the compiled hot path and its pure-Python twin.

``IMPLEMENTATION`` says which one runs ("native" or "python"); both give identical results.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _select
from ._masks_py import POLICIES

IMPLEMENTATION: str = _select.IMPLEMENTATION

KINDS: frozenset[str] = frozenset(
    {"EMAIL", "CARD", "SSN", "PHONE", "IBAN", "IPV4", "IPV6", "CREDENTIAL"}
)
MASK_POLICIES: frozenset[str] = POLICIES
REDACTION_STYLES: frozenset[str] = frozenset({"label", "mask"})

# Finding kinds that have a per-type mask; the others (credentials, addresses) are always labels.
_MASKED_KINDS = frozenset({"EMAIL", "CARD", "SSN", "PHONE", "IBAN"})


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of PII: its kind and its code-point span ``[start, end)`` in the scanned text."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Redaction:
    """Redacted text and the findings that were replaced (offsets into the original text)."""

    text: str
    findings: tuple[Finding, ...]


def scan(text: str) -> list[Finding]:
    """Find emails, cards, SSNs, phones, IBANs, IP addresses and credentials in ``text``.

    Findings are sorted by start and never overlap; offsets count code points.
    """
    return [Finding(kind, start, end) for kind, start, end in _select.scan(text)]


def redact(text: str, style: str = "label") -> Redaction:
    """Replace every finding by its label (``[EMAIL]``) or, with ``style="mask"``, its mask.

    In mask style credentials and IP addresses are still replaced by labels.
    """
    if style not in REDACTION_STYLES:
        raise ValueError(f"unknown redaction style {style!r}; expected 'label' or 'mask'")
    spans = _select.scan(text)
    findings = tuple(Finding(kind, start, end) for kind, start, end in spans)
    if not spans:
        return Redaction(text, findings)
    parts: list[str] = []
    pos = 0
    for kind, start, end in spans:
        parts.append(text[pos:start])
        if style == "mask" and kind in _MASKED_KINDS:
            parts.append(_select.mask(kind, text[start:end], "partial"))
        else:
            parts.append("[" + kind + "]")
        pos = end
    parts.append(text[pos:])
    return Redaction("".join(parts), findings)


def redact_text(text: str) -> str:
    """Label-style redaction for the log pipeline; returns ``text`` itself when nothing is found."""
    return _select.redact_labels(text)


def mask(kind: str, value: str, policy: str = "partial") -> str:
    """Mask a field value of ``kind`` (email, card, ssn, phone, iban, name, text, …).

    ``policy`` is ``partial`` (per-type mask; unknown kinds get the generic one), ``full`` (8
    bullets) or ``redact`` (a label such as ``[EMAIL]``); any other policy raises ``ValueError``.
    """
    return _select.mask(kind, value, policy)


__all__ = [
    "IMPLEMENTATION",
    "KINDS",
    "MASK_POLICIES",
    "Finding",
    "Redaction",
    "mask",
    "redact",
    "redact_text",
    "scan",
]
