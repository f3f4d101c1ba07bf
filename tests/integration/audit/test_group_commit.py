"""GroupCommitWriter against a real PostgreSQL: durability, batching, idempotence, outages."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from strongroom.audit.group_commit import GroupCommitWriter, connector
from strongroom.domain.errors import AuditUnavailable
from tests.conftest import Databases, Servers, with_database
from tests.integration.audit.conftest import event, free_port

WriterFactory = Callable[..., GroupCommitWriter]


@pytest.fixture
async def make_writer(audit_db: Databases) -> AsyncIterator[WriterFactory]:
    """Build writers on the test database (or another DSN); all are closed after the test."""
    made: list[GroupCommitWriter] = []

    def make(dsn: str | None = None, application: str = "strongroom-audit", **options: object):
        options.setdefault("timeout", 2.0)
        writer = GroupCommitWriter(
            connector(dsn or audit_db.data_url, timeout=1.0, application=application),
            **options,  # type: ignore[arg-type]
        )
        made.append(writer)
        return writer

    yield make
    for writer in made:
        await writer.close(grace=1.0)


async def stored(reader: asyncpg.Connection, ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = await reader.fetch(
        "SELECT id, count(*) AS n FROM audit_events WHERE id = ANY($1::uuid[]) GROUP BY id", ids
    )
    return {row["id"]: row["n"] for row in rows}


async def test_emitted_event_is_visible_from_another_connection(
    make_writer: WriterFactory, reader: asyncpg.Connection
) -> None:
    writer = make_writer()
    await writer.start()
    sent = event(1, subject_ref=b"\x01\x02")
    await writer.emit(sent)
    row = await reader.fetchrow("SELECT * FROM audit_events WHERE id = $1", sent.id)
    assert row is not None
    assert row["action"] == "record.reveal"
    assert row["fields"] == ["email", "card"]
    assert row["subject_ref"] == b"\x01\x02"
    assert row["tenant_id"] == uuid.UUID(sent.tenant_id)  # type: ignore[arg-type]
    assert row["seq"] is not None
    assert writer.healthy
    assert writer.events_written == 1


async def test_concurrent_emits_share_few_batches_and_land_once(
    make_writer: WriterFactory, reader: asyncpg.Connection
) -> None:
    flushes: list[int] = []
    writer = make_writer(on_flush=lambda size, seconds: flushes.append(size))
    await writer.start()
    events = [event(n) for n in range(500)]
    await asyncio.gather(*(writer.emit(e) for e in events))
    assert writer.batches < len(events) / 5
    assert sum(flushes) == len(events) == writer.events_written
    counts = await stored(reader, [e.id for e in events])
    assert len(counts) == len(events)
    assert set(counts.values()) == {1}
    assert await reader.fetchval("SELECT count(*) FROM audit_events") == len(events)


async def test_retried_batch_is_stored_once(
    make_writer: WriterFactory, reader: asyncpg.Connection
) -> None:
    writer = make_writer()
    await writer.start()
    events = [event(n) for n in range(50)]
    rows = [e.as_row() for e in events]
    # A commit whose acknowledgement was lost is retried with the very same rows.
    await writer._flush(list(rows), [])
    await writer._flush(list(rows), [])
    counts = await stored(reader, [e.id for e in events])
    assert len(counts) == 50
    assert set(counts.values()) == {1}
    seqs = await reader.fetchval("SELECT count(DISTINCT seq) FROM audit_events")
    assert seqs == 50


async def test_full_queue_rejects_without_waiting(make_writer: WriterFactory) -> None:
    # Nothing listens on the port: the flush task keeps retrying its batch, the queue fills up.
    writer = make_writer(
        dsn=f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", queue_size=3, timeout=30.0
    )
    await writer.start()
    retried = [asyncio.create_task(writer.emit(event(n))) for n in range(3)]
    await asyncio.sleep(0.05)  # the flush task took these three and retries them
    queued = [asyncio.create_task(writer.emit(event(n))) for n in range(3, 6)]
    await asyncio.sleep(0)
    assert len(writer) == 3
    started = time.monotonic()
    with pytest.raises(AuditUnavailable, match="saturated"):
        await writer.emit(event(6))
    assert time.monotonic() - started < 1.0
    assert writer.events_rejected == 1
    assert not writer.healthy
    for task in retried + queued:
        task.cancel()
    await asyncio.gather(*retried, *queued, return_exceptions=True)


async def test_unreachable_store_fails_closed_within_timeout(make_writer: WriterFactory) -> None:
    writer = make_writer(dsn=f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", timeout=0.5)
    await writer.start()  # starting without a store only makes the writer unhealthy
    assert not writer.healthy
    started = time.monotonic()
    with pytest.raises(AuditUnavailable, match="did not confirm the event in time"):
        await writer.emit(event())
    assert time.monotonic() - started < 0.5 + 1.0
    assert not writer.healthy
    assert writer.events_timed_out == 1


async def test_terminated_connection_is_replaced_transparently(
    make_writer: WriterFactory, reader: asyncpg.Connection
) -> None:
    application = f"audit-{uuid.uuid4().hex[:8]}"
    writer = make_writer(application=application)
    await writer.start()
    await writer.emit(event(1))
    killed = await reader.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
        application,
    )
    assert killed == 1
    second = event(2)
    await writer.emit(second)
    assert await stored(reader, [second.id]) == {second.id: 1}
    assert writer.healthy


async def test_store_outage_fails_closed_then_recovers(
    make_writer: WriterFactory, reader: asyncpg.Connection, audit_db: Databases, servers: Servers
) -> None:
    application = f"audit-{uuid.uuid4().hex[:8]}"
    writer = make_writer(application=application, timeout=0.5)
    await writer.start()
    await writer.emit(event(1))
    assert writer.healthy

    admin = await asyncpg.connect(servers.admin_url)
    name = audit_db.names[0]
    try:
        await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            application,
        )
        refused = event(2)
        started = time.monotonic()
        with pytest.raises(AuditUnavailable):
            await writer.emit(refused)
        assert time.monotonic() - started < 0.5 + 1.0
        assert not writer.healthy
        assert writer.flush_failures >= 1

        await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
    finally:
        await admin.close()

    third = event(3)
    await writer.emit(third)
    assert writer.healthy
    # The refused event stayed queued and was written on recovery: over-report, never under.
    fresh = await asyncpg.connect(with_database(servers.admin_url, name))
    try:
        assert await stored(fresh, [refused.id, third.id]) == {refused.id: 1, third.id: 1}
    finally:
        await fresh.close()


async def test_close_writes_everything_queued(
    make_writer: WriterFactory, reader: asyncpg.Connection
) -> None:
    writer = make_writer(batch_size=64)
    await writer.start()
    events = [event(n) for n in range(2000)]
    tasks = [asyncio.create_task(writer.emit(e)) for e in events]
    await asyncio.sleep(0)  # every task has queued its event, none is confirmed yet
    assert len(writer) == len(events)
    await writer.close()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results == [None] * len(events)
    counts = await stored(reader, [e.id for e in events])
    assert len(counts) == len(events)
    with pytest.raises(AuditUnavailable):
        await writer.emit(event())


async def test_refused_event_fails_alone(
    make_writer: WriterFactory, reader: asyncpg.Connection
) -> None:
    writer = make_writer()
    await writer.start()
    good = [event(n) for n in range(20)]
    bad = event(99, actor="nul\x00byte")  # PostgreSQL text cannot hold NUL
    results = await asyncio.gather(
        *(writer.emit(e) for e in [*good[:10], bad, *good[10:]]), return_exceptions=True
    )
    assert [type(r) for r in results].count(AuditUnavailable) == 1
    assert isinstance(results[10], AuditUnavailable)
    assert len(await stored(reader, [e.id for e in good])) == 20
    assert await stored(reader, [bad.id]) == {}
    assert writer.events_failed == 1
    assert writer.healthy
