"""Migration 0006 moves the chain out of audit_events: a chain sealed the old way (chain columns
on each event) verifies after it, and the events it left unsealed are sealed after it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import asyncpg
import pytest

from strongroom.audit.chain import GENESIS_HASH, canonical_record, link_hash
from strongroom.audit.events import COLUMNS
from strongroom.audit.signing import Ed25519Signer
from strongroom.audit.verify import verify_chain
from strongroom.store.migrate import load_migrations
from tests.conftest import Servers, with_database
from tests.integration.chain.conftest import Chain, scratch_database

_CHAIN_TABLE = 6


@pytest.fixture
async def before_0006(servers: Servers) -> AsyncIterator[str]:
    """A database migrated up to the version before the chain table."""
    async with scratch_database(servers.admin_url, "sr_chain_old") as name:
        url = with_database(servers.admin_url, name)
        connection = await asyncpg.connect(url)
        try:
            for migration in load_migrations("data"):
                if migration.version < _CHAIN_TABLE:
                    await connection.execute(migration.sql)
        finally:
            await connection.close()
        yield url


async def _seal_the_old_way(connection: asyncpg.Connection, count: int) -> None:
    """What the sealer did before 0006: set the chain columns of each event, in seq order."""
    rows = await connection.fetch(
        f"SELECT {', '.join(COLUMNS)} FROM audit_events ORDER BY seq LIMIT $1", count
    )
    previous = GENESIS_HASH
    for position, row in enumerate(rows, start=1):
        digest = link_hash(previous, canonical_record(row))
        await connection.execute(
            "UPDATE audit_events SET chain_position = $1, prev_hash = $2, hash = $3 WHERE id = $4",
            position,
            previous,
            digest,
            row["id"],
        )
        previous = digest
    await connection.execute(
        "UPDATE audit_chain_head SET position = $1, hash = $2 WHERE id = 1", count, previous
    )


async def test_an_old_chain_survives_the_move(before_0006: str) -> None:
    connection = await asyncpg.connect(before_0006)
    try:
        chain = Chain(before_0006, connection, Ed25519Signer.from_master_key(os.urandom(32)))
        events = await chain.add(7)
        await _seal_the_old_way(connection, 5)

        async with connection.transaction():  # 0006 and the migrations after it
            for migration in load_migrations("data"):
                if migration.version >= _CHAIN_TABLE:
                    await connection.execute(migration.sql)

        links = await connection.fetch(
            "SELECT c.position, e.id FROM audit_chain c JOIN audit_events e "
            "ON e.seq = c.event_seq ORDER BY c.position"
        )
        assert [(row["position"], row["id"]) for row in links] == [
            (n, event.id) for n, event in enumerate(events[:5], start=1)
        ]
        report = await verify_chain(connection, chain.keys)
        assert report.ok, report.first_problem
        assert (report.checked, report.unsealed) == (5, 2)

        assert await chain.seal() == 2
        report = await verify_chain(connection, chain.keys)
        assert report.ok, report.first_problem
        assert (report.checked, report.unsealed, report.head_position) == (7, 0, 7)
        columns = {
            row["column_name"]
            for row in await connection.fetch(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'audit_events'"
            )
        }
        assert not columns & {"chain_position", "prev_hash", "hash"}
    finally:
        await connection.close()
