"""Legal holds: who placed them, why, and whether they still hold."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from strongroom.audit.events import AuditEvent
from strongroom.audit.store import insert_event
from strongroom.domain.errors import NotFound

_COLUMNS = "id, tenant_id, subject_ref, reason, created_by, created_at, released_at, released_by"


@dataclass(frozen=True, slots=True)
class LegalHold:
    id: str
    tenant_id: str
    subject_ref: bytes | None
    reason: str
    created_by: str
    created_at: datetime
    released_at: datetime | None
    released_by: str | None

    @property
    def active(self) -> bool:
        return self.released_at is None


class LegalHoldRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def place(
        self,
        tenant_id: str,
        subject_ref: bytes | None,
        reason: str,
        actor: str,
        event: AuditEvent,
    ) -> LegalHold:
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                f"INSERT INTO legal_holds (id, tenant_id, subject_ref, reason, created_by) "
                f"VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}",
                uuid.uuid4(),
                uuid.UUID(tenant_id),
                subject_ref,
                reason,
                actor,
            )
            await insert_event(connection, event)
        assert row is not None
        return _hold(row)

    async def release(
        self, tenant_id: str, hold_id: str, actor: str, event: AuditEvent
    ) -> LegalHold:
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                f"UPDATE legal_holds SET released_at = now(), released_by = $3 "
                f"WHERE id = $1 AND tenant_id = $2 AND released_at IS NULL RETURNING {_COLUMNS}",
                uuid.UUID(hold_id),
                uuid.UUID(tenant_id),
                actor,
            )
            if row is None:
                raise NotFound("no active legal hold with this id")
            await insert_event(connection, event)
        return _hold(row)

    async def find(self, tenant_id: str, active_only: bool = False) -> list[LegalHold]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM legal_holds WHERE tenant_id = $1 "
            "AND ($2::bool IS FALSE OR released_at IS NULL) ORDER BY created_at",
            uuid.UUID(tenant_id),
            active_only,
        )
        return [_hold(row) for row in rows]

    async def holding(self, tenant_id: str, subject_ref: bytes | None) -> list[LegalHold]:
        """Active holds that cover the tenant as a whole or this subject."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM legal_holds WHERE tenant_id = $1 AND released_at IS NULL "
            "AND (subject_ref IS NULL OR subject_ref = $2) ORDER BY created_at",
            uuid.UUID(tenant_id),
            subject_ref,
        )
        return [_hold(row) for row in rows]


def _hold(row: asyncpg.Record) -> LegalHold:
    return LegalHold(
        id=str(row["id"]),
        tenant_id=str(row["tenant_id"]),
        subject_ref=bytes(row["subject_ref"]) if row["subject_ref"] is not None else None,
        reason=row["reason"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        released_at=row["released_at"],
        released_by=row["released_by"],
    )
