from __future__ import annotations

import base64
import contextlib
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from strongroom.crypto import (
    FieldCipher,
    IntegrityError,
    decrypt_field,
    encrypt_field,
    envelope_dek_version,
    envelope_from_text,
    envelope_to_text,
    field_aad,
)
from strongroom.crypto._encoding import encode_parts
from strongroom.crypto.envelope import ENVELOPE_OVERHEAD

PLACE = ("tenant-a", "customers", "rec-1", "email", 3)
AAD = field_aad(*PLACE)
PLAINTEXT = b"john@example.com"


def test_round_trip_with_field_cipher(dek: bytes) -> None:
    cipher = FieldCipher(dek, 3)
    envelope = cipher.encrypt(PLAINTEXT, AAD)
    assert PLAINTEXT not in envelope
    assert cipher.decrypt(envelope, AAD) == PLAINTEXT


def test_round_trip_with_module_functions(dek: bytes) -> None:
    envelope = encrypt_field(dek, 3, PLAINTEXT, AAD)
    assert decrypt_field(dek, envelope, AAD) == PLAINTEXT


def test_empty_plaintext_round_trips(dek: bytes) -> None:
    envelope = encrypt_field(dek, 3, b"", AAD)
    assert len(envelope) == ENVELOPE_OVERHEAD == 33
    assert decrypt_field(dek, envelope, AAD) == b""


def test_envelope_layout(dek: bytes) -> None:
    envelope = encrypt_field(dek, 0x01020304, PLAINTEXT, AAD)
    assert envelope[0] == 0x01
    assert envelope[1:5] == bytes([1, 2, 3, 4])
    assert envelope_dek_version(envelope) == 0x01020304
    assert len(envelope) == 1 + 4 + 12 + len(PLAINTEXT) + 16


def test_each_encryption_uses_a_fresh_nonce(dek: bytes) -> None:
    cipher = FieldCipher(dek, 3)
    first, second = cipher.encrypt(PLAINTEXT, AAD), cipher.encrypt(PLAINTEXT, AAD)
    assert first[5:17] != second[5:17]
    assert first != second


def test_decrypts_an_envelope_built_by_hand_to_the_documented_layout() -> None:
    key = bytes(range(32))
    aad = field_aad("t", "c", "r", "f", 7)
    header = b"\x01" + (7).to_bytes(4, "big")
    nonce = bytes(12)
    envelope = header + nonce + AESGCM(key).encrypt(nonce, b"secret", header + aad)
    assert FieldCipher(key, 7).decrypt(envelope, aad) == b"secret"
    assert decrypt_field(key, envelope, aad) == b"secret"


def test_field_aad_format_is_stable() -> None:
    assert field_aad("t", "c", "r", "f", 7).hex() == (
        "00000013" + b"strongroom/field/v1".hex()
        + "0000000174" + "0000000163" + "0000000172" + "0000000166"
        + "00000004" + "00000007"
    )  # fmt: skip


@pytest.mark.parametrize(
    "moved",
    [
        ("tenant-b", "customers", "rec-1", "email", 3),
        ("tenant-a", "suppliers", "rec-1", "email", 3),
        ("tenant-a", "customers", "rec-2", "email", 3),
        ("tenant-a", "customers", "rec-1", "phone", 3),
        ("tenant-a", "customers", "rec-1", "email", 4),
    ],
    ids=["tenant", "collection", "record_id", "field", "dek_version"],
)
def test_ciphertext_moved_elsewhere_fails(
    dek: bytes, moved: tuple[str, str, str, str, int]
) -> None:
    envelope = encrypt_field(dek, 3, PLAINTEXT, AAD)
    with pytest.raises(IntegrityError):
        decrypt_field(dek, envelope, field_aad(*moved))


def test_field_aad_is_unambiguous() -> None:
    assert field_aad("a|b", "c", "r", "f", 1) != field_aad("a", "b|c", "r", "f", 1)
    assert field_aad("a", "bc", "r", "f", 1) != field_aad("ab", "c", "r", "f", 1)
    assert field_aad("", "", "", "x", 1) != field_aad("", "", "x", "", 1)


@pytest.mark.parametrize("version", [0, -1, 2**32, True])
def test_field_aad_rejects_versions_outside_u32(version: int) -> None:
    with pytest.raises(ValueError, match="dek_version"):
        field_aad("t", "c", "r", "f", version)


def test_flipping_any_bit_of_the_envelope_fails(dek: bytes) -> None:
    envelope = encrypt_field(dek, 3, PLAINTEXT, AAD)
    for position in range(len(envelope)):
        for bit in range(8):
            damaged = bytearray(envelope)
            damaged[position] ^= 1 << bit
            with pytest.raises(IntegrityError):
                decrypt_field(dek, bytes(damaged), AAD)
            with pytest.raises(IntegrityError):
                FieldCipher(dek, 3).decrypt(bytes(damaged), AAD)


def test_truncated_envelope_fails(dek: bytes) -> None:
    envelope = encrypt_field(dek, 3, PLAINTEXT, AAD)
    cipher = FieldCipher(dek, 3)
    for length in range(len(envelope)):
        with pytest.raises(IntegrityError):
            cipher.decrypt(envelope[:length], AAD)
        with pytest.raises(IntegrityError):
            decrypt_field(dek, envelope[:length], AAD)


def test_extended_envelope_fails(dek: bytes) -> None:
    envelope = encrypt_field(dek, 3, PLAINTEXT, AAD)
    with pytest.raises(IntegrityError):
        decrypt_field(dek, envelope + b"\x00", AAD)


def test_unknown_format_fails_before_decryption(dek: bytes) -> None:
    envelope = encrypt_field(dek, 3, PLAINTEXT, AAD)
    with pytest.raises(IntegrityError, match="format"):
        envelope_dek_version(b"\x02" + envelope[1:])
    with pytest.raises(IntegrityError, match="format"):
        FieldCipher(dek, 3).decrypt(b"\x02" + envelope[1:], AAD)


def test_envelope_naming_version_zero_fails(dek: bytes) -> None:
    envelope = encrypt_field(dek, 3, PLAINTEXT, AAD)
    with pytest.raises(IntegrityError):
        decrypt_field(dek, envelope[:1] + bytes(4) + envelope[5:], AAD)


def test_wrong_key_fails(dek: bytes, other_dek: bytes) -> None:
    envelope = encrypt_field(dek, 3, PLAINTEXT, AAD)
    with pytest.raises(IntegrityError):
        decrypt_field(other_dek, envelope, AAD)


def test_cipher_refuses_envelope_of_another_key_version(dek: bytes) -> None:
    envelope = FieldCipher(dek, 3).encrypt(PLAINTEXT, AAD)
    with pytest.raises(IntegrityError, match="version"):
        FieldCipher(dek, 4).decrypt(envelope, AAD)


def test_integrity_error_does_not_leak(dek: bytes) -> None:
    envelope = encrypt_field(dek, 3, PLAINTEXT, AAD)
    with pytest.raises(IntegrityError) as caught:
        decrypt_field(dek, envelope, field_aad("x", "y", "z", "w", 3))
    text = str(caught.value) + repr(caught.value)
    assert "john" not in text
    assert dek.hex() not in text
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.parametrize("length", [0, 16, 31, 33])
def test_cipher_rejects_wrong_key_length(length: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        FieldCipher(bytes(length), 1)


def test_cipher_repr_hides_the_key(dek: bytes) -> None:
    text = repr(FieldCipher(dek, 9))
    assert text == "FieldCipher(dek_version=9)"
    assert FieldCipher(dek, 9).dek_version == 9


def test_text_encoding_round_trips_without_padding(dek: bytes) -> None:
    envelope = encrypt_field(dek, 3, PLAINTEXT, AAD)
    text = envelope_to_text(envelope)
    assert "=" not in text
    assert "+" not in text
    assert "/" not in text
    assert envelope_from_text(text) == envelope
    assert decrypt_field(dek, envelope_from_text(text), AAD) == PLAINTEXT


def test_text_encoding_uses_the_urlsafe_alphabet() -> None:
    assert envelope_to_text(b"\xfb\xff") == "-_8"
    assert envelope_from_text("-_8") == b"\xfb\xff"


@pytest.mark.parametrize(
    "text",
    [
        "-_8=",  # padding
        "+/8",  # standard alphabet
        "-_9",  # non-canonical trailing bits
        "abcde",  # impossible length
        "ab!d",
        "ab d",
        "ab\nd",
        "ÀÀÀÀ",
    ],
)
def test_bad_envelope_text_fails(text: str) -> None:
    with pytest.raises(IntegrityError):
        envelope_from_text(text)


def test_text_accepts_what_standard_base64url_produces(dek: bytes) -> None:
    envelope = encrypt_field(dek, 3, os.urandom(100), AAD)
    text = base64.urlsafe_b64encode(envelope).decode().rstrip("=")
    assert envelope_from_text(text) == envelope


@given(plaintext=st.binary(max_size=4096), aad=st.binary(max_size=256))
def test_property_round_trip(plaintext: bytes, aad: bytes) -> None:
    key = os.urandom(32)
    envelope = encrypt_field(key, 1, plaintext, aad)
    assert len(envelope) == len(plaintext) + ENVELOPE_OVERHEAD
    assert decrypt_field(key, envelope, aad) == plaintext
    assert decrypt_field(key, envelope_from_text(envelope_to_text(envelope)), aad) == plaintext


@given(data=st.binary(max_size=200))
def test_property_text_round_trip(data: bytes) -> None:
    assert envelope_from_text(envelope_to_text(data)) == data


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= \n"))
def test_only_the_canonical_text_of_some_bytes_decodes(text: str) -> None:
    try:
        raw = envelope_from_text(text)
    except IntegrityError:
        # Refused: then no bytes have this exact canonical text.
        padded = text + "=" * (-len(text) % 4)
        with contextlib.suppress(ValueError):  # binascii.Error: not base64 at all
            assert envelope_to_text(base64.urlsafe_b64decode(padded)) != text
    else:
        assert envelope_to_text(raw) == text


@given(st.text(), st.text(), st.text(), st.text(), st.integers(1, 2**32 - 1))
def test_field_aad_is_the_length_prefixed_parts(
    tenant: str, collection: str, record: str, field: str, version: int
) -> None:
    expected = encode_parts(
        b"strongroom/field/v1",
        *(part.encode("utf-8", "surrogatepass") for part in (tenant, collection, record, field)),
        version.to_bytes(4, "big"),
    )
    assert field_aad(tenant, collection, record, field, version) == expected
