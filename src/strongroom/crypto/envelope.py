"""AES-256-GCM field encryption in a versioned envelope.

Envelope layout (format 0x01)::

    format (1 byte) | dek_version (4 bytes, big-endian) | nonce (12 random bytes)
    | ciphertext | tag (16 bytes)

The 5 header bytes are authenticated along with the caller's associated data (`field_aad`), so a
value copied to another tenant, collection, record, field or key version fails to decrypt.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
import re
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto._encoding import encode_parts, text_bytes, u32
from strongroom.crypto.errors import IntegrityError
from strongroom.crypto.master import KEY_BYTES

__all__ = [
    "ENVELOPE_FORMAT",
    "ENVELOPE_OVERHEAD",
    "FieldCipher",
    "decrypt_field",
    "encrypt_field",
    "envelope_dek_version",
    "envelope_from_text",
    "envelope_to_text",
    "field_aad",
]

ENVELOPE_FORMAT = 0x01
_HEADER = struct.Struct(">BI")
_NONCE_BYTES = 12
_TAG_BYTES = 16
_BODY_START = _HEADER.size + _NONCE_BYTES
ENVELOPE_OVERHEAD = _BODY_START + _TAG_BYTES
"""Bytes an envelope adds to its plaintext (33)."""


_LENGTH = struct.Struct(">I")
_VERSION_LENGTH = _LENGTH.pack(4)


def field_aad(
    tenant_id: str, collection: str, record_id: str, field: str, dek_version: int
) -> bytes:
    """Associated data binding a field value to where it belongs and the key version:
    ``encode_parts(b"strongroom/field/v1", tenant, collection, record, field, version)``."""
    name = text_bytes(field)
    return b"".join(
        (
            _record_aad(tenant_id, collection, record_id),
            _LENGTH.pack(len(name)),
            name,
            _VERSION_LENGTH,
            u32(dek_version, "dek_version"),
        )
    )


@functools.lru_cache(maxsize=4096)
def _record_aad(tenant_id: str, collection: str, record_id: str) -> bytes:
    """The parts every field of a record shares (a record's fields are sealed together)."""
    return encode_parts(
        b"strongroom/field/v1",
        text_bytes(tenant_id),
        text_bytes(collection),
        text_bytes(record_id),
    )


def envelope_dek_version(envelope: bytes) -> int:
    """The data key version named in an envelope's header, to pick the key that opens it.

    Read before authentication: `decrypt` is what proves the header genuine.
    """
    if len(envelope) < ENVELOPE_OVERHEAD:
        raise IntegrityError("envelope is truncated")
    fmt, version = _HEADER.unpack_from(envelope)
    if fmt != ENVELOPE_FORMAT:
        raise IntegrityError("envelope format is not supported")
    if version == 0:
        raise IntegrityError("envelope names data key version 0")
    return int(version)


class FieldCipher:
    """One data key, ready to encrypt and decrypt field values (the AES object is built once).

    `repr` shows the key version, never the key.
    """

    __slots__ = ("_aead", "_header", "_version")

    def __init__(self, dek: bytes, dek_version: int) -> None:
        if len(dek) != KEY_BYTES:
            raise ValueError(f"data keys are {KEY_BYTES} bytes")
        self._header = bytes((ENVELOPE_FORMAT,)) + u32(dek_version, "dek_version")
        self._version = dek_version
        self._aead = AESGCM(dek)

    @property
    def dek_version(self) -> int:
        """The version of the data key this cipher holds."""
        return self._version

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        """Seal `plaintext` into an envelope bound to `aad` (see `field_aad`)."""
        header = self._header
        nonce = os.urandom(_NONCE_BYTES)
        return header + nonce + self._aead.encrypt(nonce, plaintext, header + aad)

    def decrypt(self, envelope: bytes, aad: bytes) -> bytes:
        """Open an envelope sealed with this key and `aad`; `IntegrityError` otherwise."""
        if len(envelope) < ENVELOPE_OVERHEAD:
            raise IntegrityError("envelope is truncated")
        header = envelope[: _HEADER.size]
        if header != self._header:
            if header[0] != ENVELOPE_FORMAT:
                raise IntegrityError("envelope format is not supported")
            raise IntegrityError("envelope was sealed with another data key version")
        try:
            return self._aead.decrypt(
                envelope[_HEADER.size : _BODY_START], envelope[_BODY_START:], header + aad
            )
        except InvalidTag:
            raise IntegrityError() from None

    def __repr__(self) -> str:
        return f"FieldCipher(dek_version={self._version})"


def encrypt_field(dek: bytes, dek_version: int, plaintext: bytes, aad: bytes) -> bytes:
    """One-shot `FieldCipher(dek, dek_version).encrypt(plaintext, aad)`; prefer a cached cipher."""
    return FieldCipher(dek, dek_version).encrypt(plaintext, aad)


def decrypt_field(dek: bytes, envelope: bytes, aad: bytes) -> bytes:
    """One-shot decryption of an envelope with `dek`; prefer a cached `FieldCipher`."""
    return FieldCipher(dek, envelope_dek_version(envelope)).decrypt(envelope, aad)


def envelope_to_text(envelope: bytes) -> str:
    """An envelope as unpadded base64url, for JSON storage."""
    return base64.urlsafe_b64encode(envelope).rstrip(b"=").decode("ascii")


_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_DIGIT_VALUES = {
    c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
}
# Unpadded base64 of n bytes ends, for n % 3 == 1 / 2, in a digit whose low 4 / 2 bits carry no
# data: the canonical encoding sets them to zero.
_UNUSED_BITS = {2: 0x0F, 3: 0x03}


def envelope_from_text(text: str) -> bytes:
    """Inverse of `envelope_to_text`; anything but its exact output raises `IntegrityError`
    (other alphabets, padding, whitespace, a non-zero unused tail bit)."""
    tail = len(text) % 4
    if (
        tail == 1
        or not _BASE64URL.fullmatch(text)
        or (tail and _DIGIT_VALUES[text[-1]] & _UNUSED_BITS[tail])
    ):
        raise IntegrityError("envelope text is not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-tail % 4))
    except (binascii.Error, ValueError):  # not expected after the checks above
        raise IntegrityError("envelope text is not unpadded base64url") from None
