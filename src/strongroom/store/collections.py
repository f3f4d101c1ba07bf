"""Collection schemas."""

from __future__ import annotations

import uuid

import asyncpg

from strongroom.audit.events import AuditEvent
from strongroom.audit.store import insert_event
from strongroom.domain.ports import StoredCollection
from strongroom.domain.schema import CollectionSchema

_COLUMNS = "id, tenant_id, name, fields, version, created_at, updated_at"


class PgCollectionRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, tenant_id: str, name: str) -> StoredCollection | None:
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
                INSERT INTO collections (tenant_id, name, fields) VALUES ($1, $2, $3)
                ON CONFLICT (tenant_id, name) DO UPDATE
                   SET fields = EXCLUDED.fields, version = collections.version + 1,
                       updated_at = now()
                RETURNING {_COLUMNS}, (xmax = 0) AS created
                """,
                uuid.UUID(tenant_id),
                schema.name,
                schema.to_json(),
            )
            await insert_event(connection, event)
        assert row is not None
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
        schema=CollectionSchema.from_stored(row["name"], row["fields"]),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
