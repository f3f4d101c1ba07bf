"""SQL for audit events, used inside the transaction of a mutation and by the writers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from strongroom.audit.events import COLUMNS, AuditEvent

# A connection, or the proxy a pool hands out: both execute statements the same way.
DbConnection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"

_INSERT = (
    f"INSERT INTO audit_events ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(COLUMNS) + 1))}) "
    "ON CONFLICT (id) DO NOTHING"
)


async def insert_event(connection: DbConnection, event: AuditEvent) -> None:
    """Write one event on ``connection`` (inside the caller's transaction)."""
    await connection.execute(_INSERT, *event.as_row())


async def insert_events(connection: DbConnection, events: Sequence[AuditEvent]) -> None:
    await connection.executemany(_INSERT, [event.as_row() for event in events])
