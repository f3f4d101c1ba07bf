"""Vault Transit adapters: data keys wrapped by Vault, audit checkpoints signed by Vault.

The master key never enters the process. A wrapped key is stored as the raw bytes of Transit's
ciphertext (``vault:v<N>:<base64>`` without the prefix) under ``kek_version`` N, the Transit key
version. The caller's associated data is bound to the ciphertext:

- with a *derived* Transit key (``derived=true``, the recommended setup) as the derivation
  ``context``: a blob unwrapped with another owner's AAD derives another key and fails; Transit's
  ``rewrap`` endpoint then re-wraps to the newest version without the data key leaving Vault;
- otherwise as AEAD ``associated_data`` (aes256-gcm96, aes128-gcm96, chacha20-poly1305); Transit
  cannot rewrap those, so `rewrap` decrypts and encrypts again.

A relabelled version fails too: each version is another key.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from typing import Any
from urllib.parse import quote

from strongroom.audit.signing import key_id_of
from strongroom.crypto.errors import IntegrityError, KeyConfigError, KeyUnavailable
from strongroom.crypto.master import KEY_BYTES
from strongroom.crypto.vault import VaultClient, VaultRequestFailed
from strongroom.crypto.wrapping import WrappedKey

__all__ = ["TransitKeyWrapper", "TransitSigner"]

log = logging.getLogger("strongroom.vault")

_AEAD_TYPES = frozenset({"aes256-gcm96", "aes128-gcm96", "chacha20-poly1305"})
_AUTH_FAILURES = ("message authentication failed", "invalid ciphertext", "unable to decode")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _path(*parts: str) -> str:
    return "/v1/" + "/".join(quote(part.strip("/"), safe="/") for part in parts)


def _parse_vault_blob(text: str, what: str) -> tuple[int, bytes]:
    """``vault:v3:<base64>`` -> (3, raw bytes)."""
    prefix, _, rest = text.partition(":")
    label, _, payload = rest.partition(":")
    if prefix != "vault" or not label.startswith("v") or not label[1:].isdigit():
        raise KeyUnavailable(f"Vault returned a {what} in an unexpected format")
    try:
        return int(label[1:]), base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise KeyUnavailable(f"Vault returned a {what} that is not base64") from None


class _KeyInfo:
    """Versions of a Transit key, re-read when older than the TTL."""

    __slots__ = ("_client", "_loaded_at", "_name", "_path", "_ttl", "data")

    def __init__(self, client: VaultClient, mount: str, name: str, ttl: float) -> None:
        self._client = client
        self._name = name
        self._path = _path(mount, "keys", name)
        self._ttl = ttl
        self._loaded_at = -float("inf")
        self.data: dict[str, Any] = {}

    async def load(self) -> dict[str, Any]:
        path = self._path
        try:
            response = await self._client.call(
                f"transit key {self._name} read", lambda c: c.adapter.get(path)
            )
        except VaultRequestFailed as exc:
            if exc.status == 404:
                raise KeyConfigError(f"transit key {self._name!r} does not exist") from None
            raise
        self.data = dict(response["data"])
        self._loaded_at = time.monotonic()
        return self.data

    async def fresh(self) -> None:
        """Re-read when stale; a failure keeps the versions known (Vault may be away)."""
        if time.monotonic() - self._loaded_at < self._ttl:
            return
        self._loaded_at = time.monotonic()  # one re-read per TTL, not one per waiting request
        try:
            await self.load()
        except KeyUnavailable as exc:
            log.warning("cannot refresh transit key %s versions: %s", self._name, exc)


class TransitKeyWrapper:
    """`KeyWrapper` whose master key is a Vault Transit key: Vault wraps and unwraps."""

    remote = True

    def __init__(
        self, client: VaultClient, mount: str = "transit", key: str = "strongroom", *, ttl: float
    ) -> None:
        self._client = client
        self._key = key
        self._mount = mount
        self._info = _KeyInfo(client, mount, key, ttl)
        self._derived = True

    async def start(self) -> None:
        """Read the key's type and versions; `KeyConfigError` when it cannot wrap keys."""
        data = await self._info.load()
        if not data.get("supports_encryption"):
            raise KeyConfigError(f"transit key {self._key!r} cannot encrypt; use aes256-gcm96")
        self._derived = bool(data.get("derived"))
        if not self._derived and data.get("type") not in _AEAD_TYPES:
            raise KeyConfigError(
                f"transit key {self._key!r} must be created with derived=true "
                "(or be an AEAD type that takes associated data)"
            )

    @property
    def active_version(self) -> int:
        """The Transit key's latest version, which encrypts."""
        return int(self._info.data.get("latest_version") or 0)

    def versions(self) -> frozenset[int]:
        """``min_decryption_version`` .. ``latest_version``."""
        latest = self.active_version
        oldest = max(int(self._info.data.get("min_decryption_version") or 1), 1)
        return frozenset(range(oldest, latest + 1))

    def _binding(self, aad: bytes) -> dict[str, str]:
        return {"context": _b64(aad)} if self._derived else {"associated_data": _b64(aad)}

    async def wrap(self, key: bytes, aad: bytes) -> WrappedKey:
        """Encrypt a 32-byte data key with the latest Transit key version, bound to `aad`."""
        if len(key) != KEY_BYTES:
            raise ValueError(f"data keys are {KEY_BYTES} bytes")
        await self._info.fresh()
        body = {"plaintext": _b64(key), **self._binding(aad)}
        path = _path(self._mount, "encrypt", self._key)
        # Retrying is harmless: a repeated encryption only yields another valid ciphertext.
        response = await self._client.call(
            "transit encrypt", lambda c: c.adapter.post(path, json=body)
        )
        return self._wrapped(response["data"]["ciphertext"])

    async def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        """Decrypt a wrapped key; `aad` must equal the one given to `wrap`."""
        body = {"ciphertext": self._ciphertext(wrapped), **self._binding(aad)}
        path = _path(self._mount, "decrypt", self._key)
        try:
            response = await self._client.call(
                "transit decrypt", lambda c: c.adapter.post(path, json=body)
            )
        except VaultRequestFailed as exc:
            raise self._refusal(exc, wrapped) from None
        try:
            key = base64.b64decode(response["data"]["plaintext"], validate=True)
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise KeyUnavailable("Vault returned a plaintext that is not base64") from None
        if len(key) != KEY_BYTES:
            raise IntegrityError("wrapped key does not hold a data key")
        return key

    async def rewrap(self, wrapped: WrappedKey, aad: bytes) -> WrappedKey:
        """Re-wrap under the latest version (Transit's rewrap with a derived key)."""
        if not self._derived:
            return await self.wrap(await self.unwrap(wrapped, aad), aad)
        await self._info.fresh()
        body = {"ciphertext": self._ciphertext(wrapped), **self._binding(aad)}
        path = _path(self._mount, "rewrap", self._key)
        try:
            response = await self._client.call(
                "transit rewrap", lambda c: c.adapter.post(path, json=body)
            )
        except VaultRequestFailed as exc:
            raise self._refusal(exc, wrapped) from None
        return self._wrapped(response["data"]["ciphertext"])

    async def rotate(self) -> int:
        """Create a new Transit key version, make it active and return it."""
        path = _path(self._mount, "keys", self._key, "rotate")
        await self._client.call(
            "transit key rotate", lambda c: c.adapter.post(path), idempotent=False
        )
        await self._info.load()
        return self.active_version

    def _wrapped(self, ciphertext: str) -> WrappedKey:
        version, blob = _parse_vault_blob(ciphertext, "ciphertext")
        return WrappedKey(version, blob)

    @staticmethod
    def _ciphertext(wrapped: WrappedKey) -> str:
        return f"vault:v{wrapped.kek_version}:{_b64(wrapped.blob)}"

    def _refusal(self, exc: VaultRequestFailed, wrapped: WrappedKey) -> Exception:
        text = " ".join(exc.server_errors).lower()
        if exc.status == 400 and any(marker in text for marker in _AUTH_FAILURES):
            return IntegrityError("wrapped key failed authentication")
        if exc.status == 400 and "version" in text:
            return KeyUnavailable(
                f"transit key version {wrapped.kek_version} may not decrypt (archived or retired)"
            )
        return exc

    def __repr__(self) -> str:
        return (
            f"TransitKeyWrapper(key={self._mount}/{self._key}, versions={sorted(self.versions())},"
            f" active={self.active_version}, derived={self._derived})"
        )


class TransitSigner:
    """`CheckpointSigner` backed by an ed25519 Transit key: Vault signs, the key stays there.

    Signs with the version read at `start` (pinned, so `key_id` and `public_key` always match
    the signature); a restart picks up a rotated key. `trusted_keys` gives every version's
    public key for verification.
    """

    def __init__(self, client: VaultClient, mount: str = "transit", key: str = "strongroom-audit"):
        self._client = client
        self._mount = mount
        self._key = key
        self._version = 0
        self._public = b""
        self._key_id = ""
        self._trusted: dict[str, bytes] = {}

    async def start(self) -> None:
        info = _KeyInfo(self._client, self._mount, self._key, ttl=0.0)
        data = await info.load()
        if data.get("type") != "ed25519":
            raise KeyConfigError(f"transit signing key {self._key!r} must be of type ed25519")
        trusted: dict[str, bytes] = {}
        publics: dict[int, bytes] = {}
        for label, entry in dict(data.get("keys") or {}).items():
            try:
                public = base64.b64decode(entry["public_key"], validate=True)
            except (binascii.Error, ValueError, KeyError, TypeError):
                raise KeyConfigError(
                    f"transit signing key {self._key!r} has no public key"
                ) from None
            publics[int(label)] = public
            trusted[key_id_of(public)] = public
        self._version = int(data["latest_version"])
        self._public = publics[self._version]
        self._key_id = key_id_of(self._public)
        self._trusted = trusted

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key of the pinned version."""
        return self._public

    def trusted_keys(self) -> dict[str, bytes]:
        """Every version's public key, by key id."""
        return dict(self._trusted)

    async def sign(self, message: bytes) -> bytes:
        body = {"input": _b64(message), "key_version": self._version}
        path = _path(self._mount, "sign", self._key)
        response = await self._client.call(
            "transit sign", lambda c: c.adapter.post(path, json=body)
        )
        version, signature = _parse_vault_blob(response["data"]["signature"], "signature")
        if version != self._version or len(signature) != 64:
            raise KeyUnavailable("Vault signed with another key version than requested")
        return signature

    def __repr__(self) -> str:
        return f"TransitSigner(key={self._mount}/{self._key}, key_id={self._key_id!r})"
