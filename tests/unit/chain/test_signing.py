"""Checkpoint signing keys: derived from the master key, named by their public key."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.audit.checkpoints import Checkpoint, ExportFormatError, parse_checkpoint_export
from strongroom.audit.signing import (
    Ed25519Signer,
    anchor_message,
    checkpoint_message,
    key_id_of,
    load_public_key_pem,
    public_key_pem,
    signature_valid,
    trusted_keys,
)
from strongroom.crypto import MasterKeys

MASTER = bytes(range(1, 33))
WHEN = datetime(2025, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def test_key_is_hkdf_of_the_master_key() -> None:
    seed = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"strongroom/audit-signing/v1"
    ).derive(MASTER)
    expected = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    signer = Ed25519Signer.from_master_key(MASTER)
    assert signer.public_key == expected.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert signer.key_id == hashlib.sha256(signer.public_key).hexdigest()[:16]
    assert signer.key_id == key_id_of(signer.public_key)
    assert Ed25519Signer.from_master_key(MASTER).key_id == signer.key_id  # deterministic
    assert Ed25519Signer.from_master_key(os.urandom(32)).key_id != signer.key_id
    assert "private" not in repr(signer).lower()


async def test_sign_and_verify() -> None:
    signer = Ed25519Signer.from_master_key(MASTER)
    keys = {signer.key_id: signer.public_key}
    message = checkpoint_message(1000, b"\x11" * 32, WHEN, signer.key_id)
    signature = await signer.sign(message)
    assert len(signature) == 64
    assert signature_valid(keys, signer.key_id, signature, message) is None

    other = checkpoint_message(1001, b"\x11" * 32, WHEN, signer.key_id)
    assert "does not verify" in (signature_valid(keys, signer.key_id, signature, other) or "")
    assert "does not verify" in (signature_valid(keys, signer.key_id, b"short", message) or "")
    assert "not trusted" in (signature_valid({}, signer.key_id, signature, message) or "")


def test_messages_bind_every_field_and_their_purpose() -> None:
    base = (10, b"\x01" * 32, WHEN, "k1")
    variants = [
        (11, b"\x01" * 32, WHEN, "k1"),
        (10, b"\x02" * 32, WHEN, "k1"),
        (10, b"\x01" * 32, WHEN + timedelta(microseconds=1), "k1"),
        (10, b"\x01" * 32, WHEN, "k2"),
    ]
    messages = {checkpoint_message(*base)} | {checkpoint_message(*v) for v in variants}
    assert len(messages) == 5
    assert anchor_message(*base) != checkpoint_message(*base)


def test_trusted_keys_cover_every_master_key_version() -> None:
    keys = MasterKeys({1: os.urandom(32), 2: os.urandom(32)}, active_version=2)
    trusted = trusted_keys(keys)
    assert len(trusted) == 2
    active = Ed25519Signer.from_master_keys(keys)
    assert active.key_id == Ed25519Signer.from_master_key(keys.key(2)).key_id
    assert trusted[active.key_id] == active.public_key
    assert Ed25519Signer.from_master_key(keys.key(1)).key_id in trusted


def test_public_key_pem_round_trip() -> None:
    signer = Ed25519Signer.from_master_key(MASTER)
    pem = signer.public_key_pem()
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert pem == public_key_pem(signer.public_key)
    assert load_public_key_pem(pem) == signer.public_key
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    other_pem = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    with pytest.raises(ValueError, match="not an Ed25519"):
        load_public_key_pem(other_pem)


def test_export_lines_round_trip_and_errors() -> None:
    signer = Ed25519Signer.from_master_key(MASTER)
    checkpoint = Checkpoint(7, b"\x03" * 32, WHEN, signer.key_id, b"\x04" * 64, signer.public_key)
    line = orjson.dumps(checkpoint.as_dict())
    assert parse_checkpoint_export([b"", line, b"  "]) == [checkpoint]

    item = checkpoint.as_dict()
    for broken, message in [
        ({**item, "position": 0}, "positive"),
        ({**item, "hash": "00"}, "32 bytes"),
        ({**item, "signed_at": "2025-01-01T00:00:00"}, "UTC offset"),
        ({k: v for k, v in item.items() if k != "signature"}, "signature"),
        ({**item, "signature": "not base64!"}, "line 2"),
    ]:
        with pytest.raises(ExportFormatError, match=message):
            parse_checkpoint_export([line, orjson.dumps(broken)])
    with pytest.raises(ExportFormatError, match="line 1"):
        parse_checkpoint_export(["{not json"])
