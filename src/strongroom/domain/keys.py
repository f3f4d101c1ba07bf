"""Subject data keys and tenant index keys: created on first use, wrapped by the master key,
unwrapped on demand and kept unwrapped only in a bounded in-process cache."""

from __future__ import annotations

import os
from collections.abc import Awaitable
from typing import TypeVar

from strongroom.crypto import (
    BlindIndex,
    DekCache,
    FieldCipher,
    KeyUnavailable,
    KeyWrapper,
    WrappedKey,
    subject_key_aad,
    tenant_root_key_aad,
)
from strongroom.crypto import IntegrityError as CryptoIntegrityError
from strongroom.domain.errors import IntegrityFailure, NotFound, ServiceUnavailable
from strongroom.domain.ports import KeyStore

_KEY_BYTES = 32
T = TypeVar("T")
CacheKey = tuple[str, bytes, int | None]


def subject_of(key: CacheKey) -> tuple[str, bytes]:
    """The group of a cached data key: its subject (tenant, pseudonym). The data-key cache is
    made with it, so that forgetting a subject drops its keys without scanning the cache."""
    return key[0], key[1]


class KeyService:
    """Hands out a tenant's :class:`BlindIndex` and a subject's :class:`FieldCipher`."""

    def __init__(
        self, store: KeyStore, wrapper: KeyWrapper, cache: DekCache[CacheKey, FieldCipher]
    ):
        self._store = store
        self._wrapper = wrapper
        self._cache = cache
        # Tenant root keys: one per tenant, needed on every request; kept for the process life.
        self._indexes: dict[str, BlindIndex] = {}

    @property
    def wrapper(self) -> KeyWrapper:
        return self._wrapper

    async def tenant_index(self, tenant_id: str) -> BlindIndex:
        index = self._indexes.get(tenant_id)
        if index is not None:
            return index
        aad = tenant_root_key_aad(tenant_id)
        wrapped = await self._store.get_tenant_key(tenant_id)
        if wrapped is None:
            root = os.urandom(_KEY_BYTES)
            wrapped = await self._store.add_tenant_key(
                tenant_id, await self._call(self._wrapper.wrap(root, aad))
            )
        root = await self._unwrap(wrapped, aad)
        index = BlindIndex(root)
        self._indexes[tenant_id] = index
        return index

    async def subject_cipher(
        self,
        tenant_id: str,
        subject_ref: bytes,
        dek_version: int | None = None,
        *,
        create: bool = False,
    ) -> FieldCipher:
        """The cipher of a subject's data key (``dek_version`` None: the newest, created when
        ``create`` and the subject has none yet)."""
        cached = self._cache.get((tenant_id, subject_ref, dek_version))
        if cached is not None:
            return cached
        aad = subject_key_aad(tenant_id, subject_ref)
        if create and dek_version is None and not self._wrapper.remote:
            # Look up or create in one statement, with a key made ready in case it is new
            # (microseconds of work, against a round trip to the key store).
            dek = os.urandom(_KEY_BYTES)
            ours = await self._call(self._wrapper.wrap(dek, aad))
            version, wrapped = await self._store.newest_or_add_subject_key(
                tenant_id, subject_ref, ours
            )
            if wrapped != ours:
                dek = await self._unwrap(wrapped, aad)
        else:
            found = await self._store.get_subject_key(tenant_id, subject_ref, dek_version)
            if found is None:
                if not create or dek_version is not None:
                    raise NotFound("no key for this subject")
                wrapped = await self._call(self._wrapper.wrap(os.urandom(_KEY_BYTES), aad))
                found = await self._store.add_subject_key(tenant_id, subject_ref, 1, wrapped)
            version, wrapped = found
            dek = await self._unwrap(wrapped, aad)
        cipher = FieldCipher(dek, version)
        self._cache.put((tenant_id, subject_ref, version), cipher)
        if dek_version is None:
            self._cache.put((tenant_id, subject_ref, None), cipher)
        return cipher

    async def new_subject_version(self, tenant_id: str, subject_ref: bytes) -> FieldCipher:
        """A fresh data key for the subject, one version above its newest (DEK rotation).

        Raises NotFound when the subject has no key. New records use it at once; records under
        older versions keep decrypting until they are re-encrypted."""
        found = await self._store.get_subject_key(tenant_id, subject_ref, None)
        if found is None:
            raise NotFound("no key for this subject")
        aad = subject_key_aad(tenant_id, subject_ref)
        wrapped = await self._call(self._wrapper.wrap(os.urandom(_KEY_BYTES), aad))
        version, stored = await self._store.add_subject_key(
            tenant_id, subject_ref, found[0] + 1, wrapped
        )
        self.forget_subject(tenant_id, subject_ref)
        return FieldCipher(await self._unwrap(stored, aad), version)

    async def destroy_old_versions(self, tenant_id: str, subject_ref: bytes, keep: int) -> int:
        """Destroy the subject's key versions below ``keep`` (their records were re-encrypted)."""
        destroyed = await self._store.delete_subject_keys_below(tenant_id, subject_ref, keep)
        self.forget_subject(tenant_id, subject_ref)
        return destroyed

    def forget_subject(self, tenant_id: str, subject_ref: bytes) -> None:
        self._cache.evict_group((tenant_id, subject_ref))

    async def _unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        try:
            return await self._call(self._wrapper.unwrap(wrapped, aad))
        except CryptoIntegrityError:
            raise IntegrityFailure("a stored key failed authentication") from None

    @staticmethod
    async def _call(awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except KeyUnavailable as exc:
            raise ServiceUnavailable(f"the key provider cannot serve: {exc}") from None
