"""Wrapping data keys under the master key: the port and the local AES-GCM adapter.

Data keys (per-subject DEKs, per-tenant blind-index root keys) are stored only wrapped. The
associated data binds a wrapped key to its owner (`subject_key_aad`, `tenant_root_key_aad`) and
the wrapper adds the master key version, so a blob copied to another subject or relabelled with
another version fails to unwrap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto._encoding import encode_parts, text_bytes, u32
from strongroom.crypto.errors import IntegrityError, KeyUnavailable
from strongroom.crypto.master import KEY_BYTES, MasterKeys

__all__ = [
    "KeyWrapper",
    "LocalKeyWrapper",
    "WrappedKey",
    "subject_key_aad",
    "tenant_root_key_aad",
]

_NONCE_BYTES = 12
_TAG_BYTES = 16
_WRAP_LABEL = b"strongroom/kek-wrap/v1"


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key encrypted under master key version `kek_version`; safe to store."""

    kek_version: int
    blob: bytes

    def __repr__(self) -> str:
        return f"WrappedKey(kek_version={self.kek_version}, blob=<{len(self.blob)} bytes>)"


@runtime_checkable
class KeyWrapper(Protocol):
    """Wraps and unwraps data keys under a versioned master key (locally, or in Vault Transit).

    `unwrap` raises `KeyUnavailable` when the version is not available and `IntegrityError` when
    the blob or the associated data does not authenticate.
    """

    remote: bool
    """True when wrapping is a network call (Vault Transit), not microseconds of local work."""

    @property
    def active_version(self) -> int:
        """The master key version used by `wrap`."""
        ...

    async def wrap(self, key: bytes, aad: bytes) -> WrappedKey:
        """Encrypt `key` under the active version, bound to `aad`."""
        ...

    async def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        """Decrypt a wrapped key; `aad` must equal the one given to `wrap`."""
        ...

    def versions(self) -> frozenset[int]:
        """The master key versions this wrapper can unwrap."""
        ...

    async def rewrap(self, wrapped: WrappedKey, aad: bytes) -> WrappedKey:
        """Wrap the same data key under the active version (master key rotation)."""
        ...


def subject_key_aad(tenant_id: str, subject_ref: bytes) -> bytes:
    """Associated data binding a subject's data key to its tenant and subject pseudonym."""
    return encode_parts(b"strongroom/subject-key/v1", text_bytes(tenant_id), subject_ref)


def tenant_root_key_aad(tenant_id: str) -> bytes:
    """Associated data binding a tenant's blind-index root key to the tenant."""
    return encode_parts(b"strongroom/tenant-root-key/v1", text_bytes(tenant_id))


class LocalKeyWrapper:
    """`KeyWrapper` with AES-256-GCM under in-process master keys.

    Blob layout: 12-byte random nonce || ciphertext || 16-byte tag. The GCM associated data is the
    caller's `aad` together with the master key version. Random nonces are safe here: one master
    key version wraps far fewer than the 2**32 keys NIST allows per key. The work takes
    microseconds, so it runs inline rather than in a thread.
    """

    __slots__ = ("_active", "_ciphers")
    remote = False

    def __init__(self, keys: MasterKeys) -> None:
        self._ciphers = {version: AESGCM(key) for version, key in keys.keys.items()}
        self._active = keys.active_version

    @property
    def active_version(self) -> int:
        """The master key version used by `wrap`."""
        return self._active

    def versions(self) -> frozenset[int]:
        """The master key versions this wrapper can unwrap."""
        return frozenset(self._ciphers)

    async def wrap(self, key: bytes, aad: bytes) -> WrappedKey:
        """Encrypt a 32-byte data key under the active version, bound to `aad`."""
        if len(key) != KEY_BYTES:
            raise ValueError(f"data keys are {KEY_BYTES} bytes")
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self._active].encrypt(nonce, key, _bound_aad(self._active, aad))
        return WrappedKey(self._active, nonce + sealed)

    async def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        """Decrypt a wrapped key; `aad` must equal the one given to `wrap`."""
        cipher = self._ciphers.get(wrapped.kek_version)
        if cipher is None:
            raise KeyUnavailable(f"master key version {wrapped.kek_version} is not configured")
        blob = wrapped.blob
        if len(blob) < _NONCE_BYTES + _TAG_BYTES:
            raise IntegrityError("wrapped key is truncated")
        try:
            return cipher.decrypt(
                blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _bound_aad(wrapped.kek_version, aad)
            )
        except InvalidTag:
            raise IntegrityError("wrapped key failed authentication") from None

    async def rewrap(self, wrapped: WrappedKey, aad: bytes) -> WrappedKey:
        """Wrap the same data key under the active version (unwrap, then wrap)."""
        return await self.wrap(await self.unwrap(wrapped, aad), aad)

    def __repr__(self) -> str:
        return f"LocalKeyWrapper(versions={sorted(self._ciphers)}, active={self._active})"


def _bound_aad(kek_version: int, aad: bytes) -> bytes:
    return encode_parts(_WRAP_LABEL, u32(kek_version, "master key version"), aad)
