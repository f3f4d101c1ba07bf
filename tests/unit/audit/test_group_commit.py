"""GroupCommitWriter's queueing, timeouts, retries and shutdown, against an in-memory store."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Sequence

import asyncpg
import pytest

from strongroom.audit.events import AuditEvent
from strongroom.audit.group_commit import BatchConnection, GroupCommitWriter
from strongroom.domain.errors import AuditUnavailable


class FakeStore:
    """audit_events as a dict; ``down`` refuses connections and breaks open ones; ``gate``
    holds every write until set."""

    def __init__(self) -> None:
        self.rows: dict[object, tuple[object, ...]] = {}
        self.down = False
        self.gate = asyncio.Event()
        self.gate.set()
        self.writes: list[tuple[str, int]] = []  # (path, rows) of each committed write
        self.connects = 0

    async def connect(self) -> BatchConnection:
        self.connects += 1
        if self.down:
            raise ConnectionRefusedError("connection refused")
        return FakeConnection(self)


class FakeConnection:
    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.staged: list[Sequence[object]] = []
        self.closed = False

    def _check(self) -> None:
        if self.store.down or self.closed:
            self.closed = True
            raise ConnectionResetError("connection lost")

    async def execute(self, query: str, *args: object, timeout: float | None = None) -> str:  # noqa: ASYNC109  # asyncpg's signature
        self._check()
        if query.startswith("INSERT"):
            await self.store.gate.wait()
            self._check()
            for row in self.staged:
                self.store.rows.setdefault(row[0], tuple(row))
            self.store.writes.append(("idempotent", len(self.staged)))
            self.staged = []
        return "OK"

    async def copy_records_to_table(
        self,
        table_name: str,
        *,
        records: Iterable[Sequence[object]],
        columns: Iterable[str] | None = None,
        schema_name: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  # asyncpg's signature
    ) -> str:
        self._check()
        rows = list(records)
        if schema_name == "pg_temp":
            self.staged = rows
            return f"COPY {len(rows)}"
        await self.store.gate.wait()
        self._check()
        if any(row[0] in self.store.rows for row in rows):
            raise asyncpg.UniqueViolationError("duplicate key value violates audit_events_pkey")
        for row in rows:
            self.store.rows[row[0]] = tuple(row)
        self.store.writes.append(("copy", len(rows)))
        return f"COPY {len(rows)}"

    def is_closed(self) -> bool:
        return self.closed

    async def close(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109  # asyncpg's signature
        self.closed = True

    def terminate(self) -> None:
        self.closed = True


def event(n: int = 0, **overrides: object) -> AuditEvent:
    values: dict[str, object] = {
        "action": "record.read",
        "outcome": "success",
        "tenant_id": None,
        "actor": f"key-{n}",
    }
    values.update(overrides)
    return AuditEvent(**values)  # type: ignore[arg-type]


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


async def started(store: FakeStore, **options: object) -> GroupCommitWriter:
    options.setdefault("timeout", 1.0)
    writer = GroupCommitWriter(store.connect, **options)  # type: ignore[arg-type]
    await writer.start()
    return writer


async def test_emit_returns_after_the_write(store: FakeStore) -> None:
    writer = await started(store)
    sent = event()
    await writer.emit(sent)
    assert sent.id in store.rows
    assert writer.events_written == 1
    assert writer.batches == 1
    assert writer.healthy
    await writer.close()


async def test_batches_respect_batch_size(store: FakeStore) -> None:
    sizes: list[int] = []
    writer = await started(store, batch_size=4, on_flush=lambda n, seconds: sizes.append(n))
    store.gate.clear()
    tasks = [asyncio.create_task(writer.emit(event(n))) for n in range(10)]
    await asyncio.sleep(0.05)
    store.gate.set()
    await asyncio.gather(*tasks)
    assert max(sizes) <= 4
    assert sum(sizes) == 10
    assert len(store.rows) == 10
    assert writer.last_batch_size == sizes[-1]
    await writer.close()


async def test_full_queue_rejects_at_once_and_reports_unhealthy(store: FakeStore) -> None:
    writer = await started(store, queue_size=10, timeout=10.0)
    store.gate.clear()  # the first batch hangs in its commit; later events wait in the queue
    first = asyncio.create_task(writer.emit(event(0)))
    await asyncio.sleep(0.05)
    queued = [asyncio.create_task(writer.emit(event(n))) for n in range(1, 10)]
    await asyncio.sleep(0)
    assert len(writer) == 9
    assert writer.healthy  # 90 % full is still healthy
    queued.append(asyncio.create_task(writer.emit(event(10))))
    await asyncio.sleep(0)
    assert len(writer) == 10
    assert not writer.healthy
    began = time.monotonic()
    with pytest.raises(AuditUnavailable, match="saturated"):
        await writer.emit(event(11))
    assert time.monotonic() - began < 0.5
    assert writer.events_rejected == 1
    store.gate.set()
    await asyncio.gather(first, *queued)
    assert len(store.rows) == 11
    assert writer.healthy
    await writer.close()


async def test_timeout_fails_closed_and_the_event_is_still_written(store: FakeStore) -> None:
    writer = await started(store, timeout=0.1)
    store.gate.clear()
    late = event()
    with pytest.raises(AuditUnavailable, match="did not confirm the event in time"):
        await writer.emit(late)
    assert writer.events_timed_out == 1
    store.gate.set()
    await writer.emit(event(1))
    # Over-report, never under-report: the refused caller's event was written anyway.
    assert late.id in store.rows
    await writer.close()


async def test_store_failure_retries_idempotently_and_recovers(store: FakeStore) -> None:
    writer = await started(store, timeout=5.0)
    await writer.emit(event(0))
    store.down = True
    pending = asyncio.create_task(writer.emit(event(1)))
    await asyncio.sleep(0.1)
    assert not writer.healthy
    assert writer.flush_failures >= 1
    assert not pending.done()
    store.down = False
    await asyncio.wait_for(pending, 2.0)
    assert writer.healthy
    assert store.writes[0] == ("copy", 1)
    assert store.writes[-1] == ("idempotent", 1)  # a retry skips ids an earlier try stored
    assert store.connects >= 2
    await writer.close()


async def test_a_stored_id_does_not_fail_the_batch(store: FakeStore) -> None:
    writer = await started(store)
    again = event()
    await writer.emit(again)
    await writer.emit(again)  # the same event twice: stored once, both calls succeed
    assert len(store.rows) == 1
    assert [path for path, _ in store.writes] == ["copy", "idempotent"]
    assert writer.healthy
    await writer.close()


async def test_failing_hook_does_not_stop_the_writer(store: FakeStore) -> None:
    def broken(size: int, seconds: float) -> None:
        raise RuntimeError("exporter down")

    writer = await started(store, on_flush=broken)
    await writer.emit(event(0))
    await writer.emit(event(1))
    assert len(store.rows) == 2
    await writer.close()


async def test_malformed_event_fails_its_caller_only(store: FakeStore) -> None:
    writer = await started(store)
    with pytest.raises(ValueError, match="hexadecimal UUID"):
        await writer.emit(event(tenant_id="not-a-uuid"))
    assert len(writer) == 0
    await writer.emit(event(tenant_id=str(uuid.uuid4())))
    await writer.close()


async def test_emit_outside_start_and_close_is_refused(store: FakeStore) -> None:
    writer = GroupCommitWriter(store.connect, timeout=1.0)
    with pytest.raises(AuditUnavailable):
        await writer.emit(event())
    assert not writer.healthy
    await writer.start()
    await writer.close()
    with pytest.raises(AuditUnavailable):
        await writer.emit(event())
    assert not writer.healthy


async def test_close_drains_the_queue(store: FakeStore) -> None:
    writer = await started(store, batch_size=16)
    tasks = [asyncio.create_task(writer.emit(event(n))) for n in range(200)]
    await asyncio.sleep(0)
    await writer.close()
    assert await asyncio.gather(*tasks) == [None] * 200
    assert len(store.rows) == 200


async def test_close_gives_up_after_grace_when_the_store_is_down(store: FakeStore) -> None:
    writer = await started(store, timeout=30.0)
    store.down = True
    waiting = asyncio.create_task(writer.emit(event()))
    await asyncio.sleep(0.05)
    began = time.monotonic()
    await writer.close(grace=0.2)
    assert time.monotonic() - began < 2.0
    with pytest.raises(AuditUnavailable):
        await waiting
    assert store.rows == {}
