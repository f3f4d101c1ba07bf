"""Collection schemas."""

from __future__ import annotations

import uuid

import asyncpg

from strongroom.audit.events import AuditEvent
from strongroom.audit.store import insert_event
from strongroom.domain.ports import StoredCollection
from strongroom.domain.schema import CollectionSchema
from strongroom.store.changes import InvalidatedCache

_COLUMNS = "id, tenant_id, name, fields, retention_days, version, created_at, updated_at"


CollectionCache = InvalidatedCache[tuple[str, str], StoredCollection]


def collection_key(payload: str) -> tuple[str, str]:
    """``<tenant id>:<name>`` (the notification payload after its prefix) as a cache key."""
    tenant_id, _, name = payload.partition(":")
    return tenant_id, name


class PgCollectionRepository:
    def __init__(self, pool: asyncpg.Pool, cache: CollectionCache | None = None) -> None:
        self._pool = pool
        self._cache = cache

    async def get(self, tenant_id: str, name: str) -> StoredCollection | None:
        if self._cache is None:
            return await self._load(tenant_id, name)
        found = self._cache.get((tenant_id, name))
        if found is not None:
            return found
        generation = self._cache.generation
        found = await self._load(tenant_id, name)
        if found is not None:
            self._cache.put((tenant_id, name), found, generation)
        return found

    async def _load(self, tenant_id: str, name: str) -> StoredCollection | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM collections WHERE tenant_id = $1 AND name = $2",
            uuid.UUID(tenant_id),
            name,
        )
        return _collection(row) if row else None

    async def put(
        self, tenant_id: str, schema: CollectionSchema, event: AuditEvent
    ) -> tuple[StoredCollection, bool]:
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                f"""
                INSERT INTO collections (tenant_id, name, fields, retention_days)
                VALUES ($1, $2, $3, $4)
                ON CONFLICT (tenant_id, name) DO UPDATE
                   SET fields = EXCLUDED.fields, retention_days = EXCLUDED.retention_days,
                       version = collections.version + 1,
                       updated_at = now()
                RETURNING {_COLUMNS}, (xmax = 0) AS created
                """,
                uuid.UUID(tenant_id),
                schema.name,
                schema.to_json(),
                schema.retention_days,
            )
            await insert_event(connection, event)
        assert row is not None
        if self._cache is not None:
            self._cache.forget((tenant_id, schema.name))
        return _collection(row), bool(row["created"])

    async def has_records(self, collection_id: int) -> bool:
        return bool(
            await self._pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM records WHERE collection_id = $1)", collection_id
            )
        )


def _collection(row: asyncpg.Record) -> StoredCollection:
    return StoredCollection(
        id=row["id"],
        tenant_id=str(row["tenant_id"]),
        schema=CollectionSchema.from_stored(row["name"], row["fields"], row["retention_days"]),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
