"""Signatures over chain checkpoints and the retention anchor.

The local signer is Ed25519 with a seed derived from the active master key by HKDF-SHA256 (info
``strongroom/audit-signing/v1``): nothing new to store or back up, and the same key in every
replica. A key is named by its ``key_id``, the first 16 hex digits of SHA-256 of its raw public
key. A remote signer (Vault Transit) fits behind :class:`CheckpointSigner`.

Verification trusts public keys that the operator supplies: those derived from the configured
master keys (every version, so checkpoints signed before a rotation still verify) and any kept
with an exported checkpoint file. Keys found in the database are published, never trusted.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.audit.chain import timestamp_micros
from strongroom.crypto._encoding import encode_parts, text_bytes
from strongroom.crypto.master import MasterKeys

ALGORITHM = "ed25519"
SIGNING_INFO = b"strongroom/audit-signing/v1"
CHECKPOINT_LABEL = b"strongroom/audit-checkpoint/v1"
ANCHOR_LABEL = b"strongroom/audit-anchor/v1"

_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")

PublicKeys = Mapping[str, bytes]
"""Trusted public keys: key id -> raw 32-byte Ed25519 public key."""


class CheckpointSigner(Protocol):
    """Signs checkpoint and anchor messages."""

    @property
    def key_id(self) -> str: ...

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        ...

    async def sign(self, message: bytes) -> bytes: ...


def key_id_of(public_key: bytes) -> str:
    """The name of a public key: 16 hex digits of SHA-256 over its raw bytes."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def _derive_private_key(master_key: bytes) -> Ed25519PrivateKey:
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=SIGNING_INFO).derive(
        master_key
    )
    return Ed25519PrivateKey.from_private_bytes(seed)


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class Ed25519Signer:
    """Ed25519 signing with a key derived from one master key."""

    __slots__ = ("_key", "_key_id", "_public")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._public = _raw_public(private_key.public_key())
        self._key_id = key_id_of(self._public)

    @classmethod
    def from_master_key(cls, master_key: bytes) -> Ed25519Signer:
        return cls(_derive_private_key(master_key))

    @classmethod
    def from_master_keys(cls, master_keys: MasterKeys) -> Ed25519Signer:
        """The signer of the active master key version."""
        return cls.from_master_key(master_keys.active_key)

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        return self._public

    def public_key_pem(self) -> str:
        """The public key as SubjectPublicKeyInfo PEM, for publishing."""
        return public_key_pem(self._public)

    async def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def __repr__(self) -> str:
        return f"Ed25519Signer(key_id={self._key_id!r})"


def trusted_keys(master_keys: MasterKeys) -> dict[str, bytes]:
    """The public keys of every configured master key version, by key id."""
    keys = {}
    for version in sorted(master_keys.versions()):
        public = _raw_public(_derive_private_key(master_keys.key(version)).public_key())
        keys[key_id_of(public)] = public
    return keys


def public_key_pem(public_key: bytes) -> str:
    key = Ed25519PublicKey.from_public_bytes(public_key)
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_public_key_pem(pem: str) -> bytes:
    """The raw bytes of an Ed25519 public key given as PEM; `ValueError` for anything else."""
    key = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return _raw_public(key)


def checkpoint_message(position: int, hash_: bytes, signed_at: datetime, key_id: str) -> bytes:
    """What a checkpoint signature covers."""
    return encode_parts(
        CHECKPOINT_LABEL,
        _U64.pack(position),
        hash_,
        _I64.pack(timestamp_micros(signed_at)),
        text_bytes(key_id),
    )


def anchor_message(position: int, hash_: bytes, cut_at: datetime, key_id: str) -> bytes:
    """What the signature of a retention anchor covers."""
    return encode_parts(
        ANCHOR_LABEL,
        _U64.pack(position),
        hash_,
        _I64.pack(timestamp_micros(cut_at)),
        text_bytes(key_id),
    )


def signature_valid(
    public_keys: PublicKeys, key_id: str, signature: bytes, message: bytes
) -> str | None:
    """None when ``signature`` over ``message`` verifies under the trusted key ``key_id``;
    otherwise why not."""
    public = public_keys.get(key_id)
    if public is None:
        return f"signed by key {key_id!r}, which is not trusted"
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return f"the signature does not verify under key {key_id!r}"
    return None
