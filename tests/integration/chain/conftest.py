"""A fresh, migrated database per test (copied from a template), so every test starts from an
empty chain."""

from __future__ import annotations

import asyncio
import inspect
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from strongroom.audit.events import AuditEvent
from strongroom.audit.sealer import AuditSealer
from strongroom.audit.signing import Ed25519Signer
from strongroom.audit.store import insert_events
from strongroom.store.migrate import migrate
from tests.conftest import Servers, with_database

# Selects the event sealed at the position given as $1.
AT_POSITION = "seq = (SELECT event_seq FROM audit_chain WHERE position = $1)"


@dataclass
class Chain:
    """A database with the audit chain tables, a signer and helpers to fill and seal it."""

    url: str
    connection: asyncpg.Connection
    signer: Ed25519Signer

    @property
    def keys(self) -> dict[str, bytes]:
        return {self.signer.key_id: self.signer.public_key}

    def sealer(self, **options: object) -> AuditSealer:
        options.setdefault("checkpoint_every", 10)
        return AuditSealer(self.url, self.signer, **options)  # type: ignore[arg-type]

    async def add(self, count: int, **overrides: object) -> list[AuditEvent]:
        base = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=await self.count())
        events = []
        for n in range(count):
            values: dict[str, object] = {
                "action": "record.read",
                "outcome": "success",
                "tenant_id": str(uuid.uuid4()),
                "actor": f"{n:016x}",
                "resource": f"customers/{n}",
                "subject_ref": os.urandom(32),
                "fields": ("email", "card"),
                "purpose": "support",
                "request_id": f"req-{n}",
                "trace_id": os.urandom(16).hex(),
                "client": "203.0.113.7",
                "occurred_at": base + timedelta(microseconds=n * 1_001),
            }
            values.update(overrides)
            events.append(AuditEvent(**values))  # type: ignore[arg-type]
        await insert_events(self.connection, events)
        return events

    async def count(self) -> int:
        return int(await self.connection.fetchval("SELECT count(*) FROM audit_events"))

    async def seal(self, **options: object) -> int:
        sealer = self.sealer(**options)
        try:
            return await sealer.step()
        finally:
            await sealer.stop()

    async def event_id(self, position: int) -> uuid.UUID:
        found = await self.connection.fetchval(
            f"SELECT id FROM audit_events WHERE {AT_POSITION}", position
        )
        assert isinstance(found, uuid.UUID)
        return found

    async def tamper(self, sql: str, *args: object) -> str:
        """Run ``sql`` as an intruder with superuser rights: triggers do not stop it."""
        async with self.connection.transaction():
            await self.connection.execute("SET LOCAL session_replication_role = replica")
            return str(await self.connection.execute(sql, *args))


async def until(condition: Callable[[], object], seconds: float = 10.0) -> None:
    """Wait until ``condition()`` (a value or an awaitable) is true, polling."""
    async with asyncio.timeout(seconds):
        while True:
            outcome = condition()
            if inspect.isawaitable(outcome):
                outcome = await outcome
            if outcome:
                return
            await asyncio.sleep(0.01)


@asynccontextmanager
async def scratch_database(
    admin_url: str, prefix: str, template: str | None = None
) -> AsyncIterator[str]:
    """A database of its own (a copy of ``template`` if given), dropped afterwards; yields its
    name."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(admin_url)
    try:
        copy = f' TEMPLATE "{template}"' if template else ""
        await admin.execute(f'CREATE DATABASE "{name}"{copy}')
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
async def chain_template(servers: Servers) -> AsyncIterator[str]:
    """A migrated database that each test's database is copied from (faster than migrating)."""
    async with scratch_database(servers.admin_url, "sr_chain_template") as name:
        connection = await asyncpg.connect(with_database(servers.admin_url, name))
        try:
            await migrate(connection, "data")
        finally:
            await connection.close()
        yield name


@pytest.fixture
async def chain(servers: Servers, chain_template: str) -> AsyncIterator[Chain]:
    async with scratch_database(servers.admin_url, "sr_chain", chain_template) as name:
        url = with_database(servers.admin_url, name)
        connection = await asyncpg.connect(url)
        try:
            yield Chain(url, connection, Ed25519Signer.from_master_key(os.urandom(32)))
        finally:
            await connection.close()
