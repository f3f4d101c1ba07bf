"""Blind index: exact-match search over encrypted fields, and keyed subject pseudonyms.

Each tenant has a random 32-byte root key, stored wrapped by the master key like a data key (so a
master key rotation leaves every digest unchanged). Per-field HMAC keys are derived from it with
HKDF-SHA256; equal normalised values in the same field give equal digests, and nothing else about
the value can be learned from a digest without the key.
"""

from __future__ import annotations

import hmac
import unicodedata

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.crypto._encoding import encode_parts, text_bytes
from strongroom.crypto.master import KEY_BYTES

__all__ = ["DIGEST_BYTES", "BlindIndex", "normalize"]

DIGEST_BYTES = 32
_FIELD_LABEL = b"strongroom/blind-index/v1"
_PSEUDONYM_LABEL = b"strongroom/pseudonym/v1"
_SUBJECT_LABEL = "subject"
_MAX_CACHED_KEYS = 4096  # fields come from schemas; the bound only stops unbounded growth


def normalize(kind: str, value: str) -> str:
    """Canonical form of a value before it is indexed, so that equivalent inputs match.

    - ``email``: strip, NFC, lowercase (the whole address: providers ignore case in practice).
    - ``card``, ``ssn``: decimal digits only (any script's digits become ASCII).
    - ``phone``: decimal digits only, keeping a leading ``+``.
    - ``iban``: NFKC, uppercase, whitespace removed.
    - ``name``: NFC, casefold, whitespace runs collapsed to one space, stripped.
    - anything else: NFC, stripped.

    Every kind is idempotent: ``normalize(k, normalize(k, v)) == normalize(k, v)``.
    """
    if kind == "email":
        # lowercasing can leave a string that is no longer NFC; compose again so it is idempotent
        lowered = unicodedata.normalize("NFC", value.strip()).lower()
        return unicodedata.normalize("NFC", lowered)
    if kind in ("card", "ssn"):
        return _digits(value)
    if kind == "phone":
        leading_plus = unicodedata.normalize("NFKC", value).lstrip().startswith("+")
        return ("+" if leading_plus else "") + _digits(value)
    if kind == "iban":
        return _iban(value)
    if kind == "name":
        folded = unicodedata.normalize("NFC", value).casefold()
        return " ".join(unicodedata.normalize("NFC", folded).split())
    return unicodedata.normalize("NFC", value).strip()


def _iban(value: str) -> str:
    # Removing whitespace can join a mark to a letter, and NFKC can turn a mark into a space:
    # repeat until stable (ASCII IBANs are stable after one pass; exotic input in a few).
    for _ in range(8):
        upper = unicodedata.normalize("NFKC", value).upper()
        result = "".join(unicodedata.normalize("NFKC", upper).split())
        if result == value:
            break
        value = result
    return value


def _digits(value: str) -> str:
    out: list[str] = []
    for char in unicodedata.normalize("NFKC", value):
        digit = unicodedata.decimal(char, None)
        if digit is not None:
            out.append(chr(0x30 + digit))
    return "".join(out)


class BlindIndex:
    """HMAC-SHA256 digests under one tenant's root key.

    Field digests and subject pseudonyms use keys derived for different purposes, so a digest can
    never equal a pseudonym of the same string. `repr` never shows the key.
    """

    __slots__ = ("_field_keys", "_pseudonym_keys", "_root")

    def __init__(self, root_key: bytes) -> None:
        if len(root_key) != KEY_BYTES:
            raise ValueError(f"blind index root keys are {KEY_BYTES} bytes")
        self._root = root_key
        self._field_keys: dict[tuple[str, str], bytes] = {}
        self._pseudonym_keys: dict[str, bytes] = {}

    def digest(self, collection: str, field: str, normalized: str) -> bytes:
        """The 32-byte digest of an already normalised value of `collection.field`."""
        key = self._field_keys.get((collection, field))
        if key is None:
            key = self._derive(
                encode_parts(_FIELD_LABEL, text_bytes(collection), text_bytes(field))
            )
            if len(self._field_keys) >= _MAX_CACHED_KEYS:
                self._field_keys.clear()
            self._field_keys[(collection, field)] = key
        return hmac.digest(key, text_bytes(normalized), "sha256")

    def digest_value(self, collection: str, field: str, kind: str, value: str) -> bytes:
        """`digest` of `normalize(kind, value)`: what writes and searches should both call."""
        return self.digest(collection, field, normalize(kind, value))

    def pseudonym(self, label: str, value: str) -> bytes:
        """A 32-byte keyed pseudonym of `value` in the namespace `label` (exact, not normalised)."""
        key = self._pseudonym_keys.get(label)
        if key is None:
            key = self._derive(encode_parts(_PSEUDONYM_LABEL, text_bytes(label)))
            if len(self._pseudonym_keys) >= _MAX_CACHED_KEYS:
                self._pseudonym_keys.clear()
            self._pseudonym_keys[label] = key
        return hmac.digest(key, text_bytes(value), "sha256")

    def subject_ref(self, subject_id: str) -> bytes:
        """The pseudonym that stands for a data subject in keys, AAD and the audit trail."""
        return self.pseudonym(_SUBJECT_LABEL, subject_id)

    def _derive(self, info: bytes) -> bytes:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=DIGEST_BYTES, salt=None, info=info)
        return hkdf.derive(self._root)

    def __repr__(self) -> str:
        return "BlindIndex(<root key hidden>)"
