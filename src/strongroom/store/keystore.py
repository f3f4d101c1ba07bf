"""Wrapped tenant and subject keys, in the key store database."""

from __future__ import annotations

import uuid

import asyncpg

from strongroom.crypto import WrappedKey


class PgKeyStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get_tenant_key(self, tenant_id: str) -> WrappedKey | None:
        row = await self._pool.fetchrow(
            "SELECT kek_version, wrapped FROM tenant_keys WHERE tenant_id = $1",
            uuid.UUID(tenant_id),
        )
        return WrappedKey(row["kek_version"], bytes(row["wrapped"])) if row else None

    async def add_tenant_key(self, tenant_id: str, wrapped: WrappedKey) -> WrappedKey:
        await self._pool.execute(
            "INSERT INTO tenant_keys (tenant_id, kek_version, wrapped) VALUES ($1, $2, $3) "
            "ON CONFLICT (tenant_id) DO NOTHING",
            uuid.UUID(tenant_id),
            wrapped.kek_version,
            wrapped.blob,
        )
        stored = await self.get_tenant_key(tenant_id)
        assert stored is not None
        return stored

    async def get_subject_key(
        self, tenant_id: str, subject_ref: bytes, dek_version: int | None
    ) -> tuple[int, WrappedKey] | None:
        row = await self._pool.fetchrow(
            "SELECT dek_version, kek_version, wrapped FROM subject_keys "
            "WHERE tenant_id = $1 AND subject_ref = $2 "
            "AND ($3::int IS NULL OR dek_version = $3) "
            "ORDER BY dek_version DESC LIMIT 1",
            uuid.UUID(tenant_id),
            subject_ref,
            dek_version,
        )
        if row is None:
            return None
        return row["dek_version"], WrappedKey(row["kek_version"], bytes(row["wrapped"]))

    async def add_subject_key(
        self, tenant_id: str, subject_ref: bytes, dek_version: int, wrapped: WrappedKey
    ) -> tuple[int, WrappedKey]:
        """Store the key unless that version exists; either way, answer the stored one (a
        racing writer's key wins, so every record of the subject uses the same key)."""
        row = await self._pool.fetchrow(
            "INSERT INTO subject_keys (tenant_id, subject_ref, dek_version, kek_version, wrapped) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING "
            "RETURNING dek_version, kek_version, wrapped",
            uuid.UUID(tenant_id),
            subject_ref,
            dek_version,
            wrapped.kek_version,
            wrapped.blob,
        )
        if row is not None:
            return row["dek_version"], WrappedKey(row["kek_version"], bytes(row["wrapped"]))
        stored = await self.get_subject_key(tenant_id, subject_ref, dek_version)
        assert stored is not None
        return stored

    async def newest_or_add_subject_key(
        self, tenant_id: str, subject_ref: bytes, wrapped: WrappedKey
    ) -> tuple[int, WrappedKey]:
        # One round trip for the common case of a record's first write for a subject.
        row = await self._pool.fetchrow(
            """
            WITH newest AS (
                SELECT dek_version, kek_version, wrapped FROM subject_keys
                WHERE tenant_id = $1 AND subject_ref = $2
                ORDER BY dek_version DESC LIMIT 1
            ), added AS (
                INSERT INTO subject_keys (tenant_id, subject_ref, dek_version, kek_version, wrapped)
                SELECT $1, $2, 1, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM newest)
                ON CONFLICT DO NOTHING
                RETURNING dek_version, kek_version, wrapped
            )
            SELECT * FROM newest UNION ALL SELECT * FROM added
            """,
            uuid.UUID(tenant_id),
            subject_ref,
            wrapped.kek_version,
            wrapped.blob,
        )
        if row is not None:
            return row["dek_version"], WrappedKey(row["kek_version"], bytes(row["wrapped"]))
        # A racing writer stored version 1 after this statement's snapshot: read it.
        stored = await self.get_subject_key(tenant_id, subject_ref, None)
        assert stored is not None
        return stored

    async def delete_subject_keys(self, tenant_id: str, subject_ref: bytes) -> int:
        """Crypto-shredding: destroy every version of the subject's wrapped data key."""
        status = await self._pool.execute(
            "DELETE FROM subject_keys WHERE tenant_id = $1 AND subject_ref = $2",
            uuid.UUID(tenant_id),
            subject_ref,
        )
        return int(status.rsplit(" ", 1)[-1])

    async def delete_subject_keys_below(
        self, tenant_id: str, subject_ref: bytes, dek_version: int
    ) -> int:
        """Destroy the versions a DEK rotation replaced (after the records were re-encrypted)."""
        status = await self._pool.execute(
            "DELETE FROM subject_keys WHERE tenant_id = $1 AND subject_ref = $2 "
            "AND dek_version < $3",
            uuid.UUID(tenant_id),
            subject_ref,
            dek_version,
        )
        return int(status.rsplit(" ", 1)[-1])
