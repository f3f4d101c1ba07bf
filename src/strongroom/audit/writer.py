"""The durable audit writer for reads and reveals: ``emit`` returns only once the event is
committed with ``synchronous_commit=on``; when the store cannot take it in time the caller gets
:class:`AuditUnavailable` and fails closed (no plaintext leaves without its event)."""

from __future__ import annotations

import asyncio

import asyncpg

from strongroom.audit.events import AuditEvent
from strongroom.audit.store import insert_event
from strongroom.domain.errors import AuditUnavailable


class DirectAuditWriter:
    """One transaction per event. Simple and durable; a group-commit writer can replace it
    behind the same :class:`~strongroom.domain.ports.AuditSink` port."""

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout
        self.healthy = True

    async def emit(self, event: AuditEvent) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                async with self._pool.acquire() as connection, connection.transaction():
                    await connection.execute("SET LOCAL synchronous_commit = on")
                    await insert_event(connection, event)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            self.healthy = False
            raise AuditUnavailable("the audit store is unavailable; nothing was revealed") from exc
        self.healthy = True
