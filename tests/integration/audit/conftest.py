"""A fresh database per audit test, so row counts and outages never leak between tests."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from strongroom.audit.events import AuditEvent
from tests.conftest import Databases, Servers, create_databases, drop_databases


@pytest.fixture
async def audit_db(servers: Servers) -> AsyncIterator[Databases]:
    created = await create_databases(servers.admin_url, prefix="sr_audit")
    yield created
    admin = await asyncpg.connect(servers.admin_url)
    try:  # a test may have closed the database to connections
        await admin.execute(f'ALTER DATABASE "{created.names[0]}" WITH ALLOW_CONNECTIONS true')
    finally:
        await admin.close()
    await drop_databases(servers.admin_url, created)


@pytest.fixture
async def reader(audit_db: Databases) -> AsyncIterator[asyncpg.Connection]:
    """An independent connection to check what is really stored."""
    connection = await asyncpg.connect(audit_db.data_url)
    yield connection
    await connection.close()


def event(n: int = 0, **overrides: object) -> AuditEvent:
    values: dict[str, object] = {
        "action": "record.reveal",
        "outcome": "success",
        "tenant_id": str(uuid.uuid4()),
        "actor": f"key-{n}",
        "resource": f"customers/{n}",
        "fields": ("email", "card"),
        "purpose": "support",
        "request_id": f"req-{n}",
    }
    values.update(overrides)
    return AuditEvent(**values)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
