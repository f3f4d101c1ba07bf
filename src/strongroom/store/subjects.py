"""Subject-level reads and deletes: everything one data subject has in a tenant, and its erasure.

The subject is found by its pseudonym (``subject_ref``); the id itself is never stored.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from strongroom.audit.events import AuditEvent
from strongroom.audit.store import DbConnection, insert_event
from strongroom.domain.ports import AccessEvent, ErasureMark, StoredCollection, StoredRecord
from strongroom.domain.schema import CollectionSchema
from strongroom.store.records import record_from_row

_RECORD_COLUMNS = (
    "id, tenant_id, collection_id, subject_ref, subject_ct, dek_version, data, version, seq, "
    "created_at, updated_at"
)
_HISTORY = (
    "SELECT id, occurred_at, actor, action, resource, fields, purpose, outcome FROM audit_events "
    "WHERE tenant_id = $1 AND subject_ref = $2 ORDER BY seq"
)


class PgSubjectSnapshot:
    """Reads on one connection inside a repeatable-read transaction: records, schemas and
    history all describe the same moment. Rows come through server-side cursors."""

    def __init__(
        self, connection: DbConnection, tenant_id: str, subject_ref: bytes, batch: int
    ) -> None:
        self._connection = connection
        self._tenant = uuid.UUID(tenant_id)
        self._subject_ref = subject_ref
        self._batch = batch

    async def collections(self) -> list[StoredCollection]:
        rows = await self._connection.fetch(
            "SELECT id, tenant_id, name, fields, retention_days, version, created_at, updated_at "
            "FROM collections WHERE tenant_id = $1 ORDER BY name",
            self._tenant,
        )
        return [
            StoredCollection(
                id=row["id"],
                tenant_id=str(row["tenant_id"]),
                schema=CollectionSchema.from_stored(
                    row["name"], row["fields"], row["retention_days"]
                ),
                version=row["version"],
                created_at=row["created_at"],
                updated_at=row["updated_at"],
            )
            for row in rows
        ]

    async def records(self) -> AsyncIterator[StoredRecord]:
        cursor = self._connection.cursor(
            f"SELECT {_RECORD_COLUMNS} FROM records WHERE tenant_id = $1 AND subject_ref = $2 "
            "ORDER BY collection_id, seq",
            self._tenant,
            self._subject_ref,
            prefetch=self._batch,
        )
        async for row in cursor:
            yield record_from_row(row)

    async def history(self) -> AsyncIterator[AccessEvent]:
        cursor = self._connection.cursor(
            _HISTORY, self._tenant, self._subject_ref, prefetch=self._batch
        )
        async for row in cursor:
            yield AccessEvent(
                id=str(row["id"]),
                occurred_at=row["occurred_at"],
                actor=row["actor"],
                action=row["action"],
                resource=row["resource"],
                fields=tuple(row["fields"]),
                purpose=row["purpose"],
                outcome=row["outcome"],
            )


class PgSubjectRepository:
    def __init__(self, pool: asyncpg.Pool, batch: int = 500) -> None:
        self._pool = pool
        self._batch = batch

    async def record_count(self, tenant_id: str, subject_ref: bytes) -> int:
        count = await self._pool.fetchval(
            "SELECT count(*) FROM records WHERE tenant_id = $1 AND subject_ref = $2",
            uuid.UUID(tenant_id),
            subject_ref,
        )
        return int(count)

    @asynccontextmanager
    async def snapshot(
        self, tenant_id: str, subject_ref: bytes
    ) -> AsyncIterator[PgSubjectSnapshot]:
        async with (
            self._pool.acquire() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield PgSubjectSnapshot(connection, tenant_id, subject_ref, self._batch)

    async def last_erasure(self, tenant_id: str, subject_ref: bytes) -> ErasureMark | None:
        row = await self._pool.fetchrow(
            "SELECT id, occurred_at FROM audit_events WHERE tenant_id = $1 AND subject_ref = $2 "
            "AND action = 'subject.erase' AND outcome = 'success' ORDER BY seq DESC LIMIT 1",
            uuid.UUID(tenant_id),
            subject_ref,
        )
        return ErasureMark(str(row["id"]), row["occurred_at"]) if row else None

    async def erase(self, tenant_id: str, subject_ref: bytes, event: AuditEvent) -> int:
        async with self._pool.acquire() as connection, connection.transaction():
            # record_index rows go with their records (ON DELETE CASCADE).
            status = await connection.execute(
                "DELETE FROM records WHERE tenant_id = $1 AND subject_ref = $2",
                uuid.UUID(tenant_id),
                subject_ref,
            )
            await insert_event(connection, event)
        return int(status.rsplit(" ", 1)[-1])
