"""A streamed export outlives the pool's idle-in-transaction limit while its client is slow."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from strongroom.audit.query import EventFilter, stream_export
from strongroom.audit.store import insert_events
from tests.conftest import Databases
from tests.integration.audit.conftest import event


async def test_a_slow_reader_still_gets_the_whole_export(audit_db: Databases) -> None:
    tenant = str(uuid.uuid4())
    # Sessions that idle in a transaction for 1 s are ended, as the service's pool ends them
    # (after twice the statement timeout, at least 10 s).
    pool = await asyncpg.create_pool(
        audit_db.data_url,
        min_size=1,
        max_size=1,
        server_settings={"idle_in_transaction_session_timeout": "1000"},
    )
    assert pool is not None
    try:
        async with pool.acquire() as connection:
            await insert_events(connection, [event(n, tenant_id=tenant) for n in range(50)])
        lines = 0
        async for chunk in stream_export(pool, EventFilter(tenant_id=tenant), "jsonl", batch=10):
            lines += chunk.count(b"\n")
            await asyncio.sleep(1.5)  # the client drains slowly: the server waits meanwhile
        assert lines == 50
    finally:
        await pool.close()
