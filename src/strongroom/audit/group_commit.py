"""The group-commit audit writer: events from concurrent requests share one durable transaction.

``emit`` puts the event's row on a bounded queue and waits until a flush task has committed it.
The flush task takes everything waiting (up to ``batch_size``), writes it in one transaction on
its own connection, where ``synchronous_commit = on`` is forced, then wakes every waiting
caller. While one batch commits the next one grows, so a tiny ``linger`` suffices and the commit
cost is shared by the whole batch.

Two ways to write a batch:

- first attempt: one ``COPY`` straight into ``audit_events``, a transaction of its own (one
  round trip, and COPY's multi-row inserts write far less WAL than ``INSERT ... SELECT``);
- retry, or a batch holding an id already stored: ``BEGIN; SET LOCAL synchronous_commit = on``,
  COPY into a temporary table, ``INSERT ... SELECT ... ON CONFLICT (id) DO NOTHING``, ``COMMIT``.
  Rows an ambiguous earlier attempt did commit are skipped, never counted twice.

Failure modes, all fail closed:

- queue full: ``emit`` raises :class:`AuditUnavailable` at once (backpressure, bounded memory);
- not confirmed within ``timeout``: ``emit`` raises :class:`AuditUnavailable`; the caller
  reveals nothing;
- the store fails (connection lost, PostgreSQL down): the batch is retried on a new connection
  with exponential backoff and jitter; ``healthy`` is False until a flush succeeds again.

Over-reporting, never under-reporting: an event whose caller already got 503 stays queued and
may still be written when the store comes back. The trail can then show an attempt that was
refused; it can never miss an access that happened. Event ids are unique, so a batch retried
after an ambiguous commit (connection lost while ``COMMIT`` was in flight) never counts twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Protocol

import asyncpg

from strongroom.audit.events import COLUMNS, AuditEvent
from strongroom.domain.errors import AuditUnavailable
from strongroom.observability.tracing import recording, span, untraced

log = logging.getLogger("strongroom.audit")

_BATCH_TABLE = "strongroom_audit_batch"
_COLUMN_LIST = ", ".join(COLUMNS)
# Forced on the whole connection (the fast path is a single COPY, its own transaction) and again
# with SET LOCAL in the retry transaction. The batch table copies no defaults from audit_events:
# ``seq`` is drawn from the real table's sequence when rows move, and a retry consumes no numbers
# for rows already stored.
_PREPARE_CONNECTION = (
    "SET synchronous_commit = on; "
    f"CREATE TEMP TABLE IF NOT EXISTS {_BATCH_TABLE} ON COMMIT DELETE ROWS AS "
    f"SELECT {_COLUMN_LIST} FROM audit_events WITH NO DATA"
)
_BEGIN = "BEGIN; SET LOCAL synchronous_commit = on"
_MOVE_AND_COMMIT = (
    f"INSERT INTO audit_events ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM pg_temp.{_BATCH_TABLE} "
    "ON CONFLICT (id) DO NOTHING; COMMIT"
)
_TIMED_OUT = "the audit store did not confirm the event in time; nothing was revealed"
# Errors caused by the rows themselves: retrying the same batch cannot succeed.
_ROW_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)


class BatchConnection(Protocol):
    """What the writer needs from its connection (an ``asyncpg.Connection`` provides it)."""

    async def execute(
        self,
        query: str,
        *args: object,
        timeout: float | None = ...,  # noqa: ASYNC109  # asyncpg's signature
    ) -> str: ...

    async def copy_records_to_table(
        self,
        table_name: str,
        *,
        records: Iterable[Sequence[object]],
        columns: Iterable[str] | None = ...,
        schema_name: str | None = ...,
        timeout: float | None = ...,  # noqa: ASYNC109  # asyncpg's signature
    ) -> str: ...

    def is_closed(self) -> bool: ...

    async def close(self, *, timeout: float | None = ...) -> None: ...  # noqa: ASYNC109  # asyncpg's

    def terminate(self) -> None: ...


Connect = Callable[[], Awaitable[BatchConnection]]


def connector(
    dsn: str,
    *,
    timeout: float = 5.0,
    application: str = "strongroom-audit",
    server_settings: Mapping[str, str] | None = None,
) -> Connect:
    """A factory for the writer's dedicated connection to ``dsn``."""
    settings = {"application_name": application, "synchronous_commit": "on"}
    settings.update(server_settings or {})

    async def connect() -> BatchConnection:
        connection: BatchConnection = await asyncpg.connect(
            dsn, timeout=timeout, command_timeout=timeout, server_settings=settings
        )
        return connection

    return connect


class GroupCommitWriter:
    """The :class:`~strongroom.domain.ports.AuditSink` for reads and reveals: ``emit`` returns
    once the event is committed with ``synchronous_commit = on``, shared with concurrent events.

    Call ``await start()`` in the application's startup and ``await close()`` at shutdown (it
    writes everything queued before returning). ``len(writer)`` is the queue depth; ``healthy``
    feeds the readiness probe; the counters and ``on_flush`` feed metrics.
    """

    def __init__(
        self,
        connect: Connect,
        *,
        timeout: float,
        batch_size: int = 512,
        linger: float = 0.002,
        queue_size: int = 10_000,
        command_timeout: float = 5.0,
        max_backoff: float = 1.0,
        on_flush: Callable[[int, float], None] | None = None,
    ) -> None:
        if batch_size < 1 or queue_size < 1:
            raise ValueError("batch_size and queue_size must be positive")
        self._connect = connect
        self._timeout = timeout
        self._batch_size = batch_size
        self._linger = linger
        self._capacity = queue_size
        self._high_water = queue_size * 9 // 10
        self._command_timeout = command_timeout
        # Backoff stays short enough for several retries inside one caller's deadline.
        self._max_backoff = max(0.01, min(max_backoff, timeout / 4))
        self.on_flush = on_flush
        # Rows and their callers' futures in two parallel lists: no per-event wrapper object.
        self._rows: list[tuple[object, ...]] = []
        self._waiters: list[asyncio.Future[str | None]] = []
        self._in_flight: list[asyncio.Future[str | None]] = []  # waiters of the batch being written
        # Callers time out between ``timeout`` and ``timeout + tick`` seconds after emitting.
        self._tick = max(0.001, timeout / 40)
        self._deadlines: dict[int, list[asyncio.Future[str | None]]] = {}
        self._wakeup = asyncio.Event()
        self._idle = False
        self._closing = False
        self._failing = False
        self._connection: BatchConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.events_written = 0
        self.events_rejected = 0
        self.events_timed_out = 0
        self.events_failed = 0
        self.flush_failures = 0
        self.last_batch_size = 0

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def healthy(self) -> bool:
        """False while the store fails, when the queue is over 90 % full, or when stopped."""
        return (
            not self._failing
            and len(self._rows) <= self._high_water
            and self._task is not None
            and not self._task.done()
        )

    async def start(self) -> None:
        """Open the connection (failures only mark the writer unhealthy) and start flushing."""
        if self._task is not None:
            raise RuntimeError("the audit writer is already started")
        try:
            await self._connected()
        except Exception as exc:  # reported through healthy; retried on flush
            self._failing = True
            log.warning("audit store unavailable at start: %s", _describe(exc))
        self._task = asyncio.create_task(untraced(self._run()), name="audit-group-commit")

    async def close(self, grace: float | None = 10.0) -> None:
        """Write everything queued, then stop. After ``grace`` seconds (store still down) give
        up: the callers still waiting get :class:`AuditUnavailable`, so nothing acknowledged is
        lost."""
        task = self._task
        if task is None:
            return
        self._closing = True
        self._wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            log.error("audit writer stopped with %d events not written", len(self._rows))
        finally:
            self._fail_waiters(self._in_flight, "the audit writer stopped")
            self._fail_waiters(self._waiters, "the audit writer stopped")
            self._rows.clear()
            self._waiters.clear()
            await self._disconnect(graceful=True)

    async def emit(self, event: AuditEvent) -> None:
        """Return once ``event`` is durable; raise :class:`AuditUnavailable` otherwise."""
        row = event.as_row()  # a malformed event fails its own caller, never the batch
        task = self._task
        if len(self._rows) >= self._capacity or task is None or task.done():
            self.events_rejected += 1
            raise AuditUnavailable("the audit store is saturated; nothing was revealed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str | None] = loop.create_future()
        self._rows.append(row)
        self._waiters.append(future)
        if self._idle:
            self._idle = False
            self._wakeup.set()
        # Deadlines are shared: every emit has the same timeout, so callers whose deadlines fall
        # in the same tick share one timer (a timer per call was a third of the CPU under load).
        # A bucket holds its futures until its tick fires: at most rate x timeout references.
        tick = int((loop.time() + self._timeout) / self._tick) + 1
        expiring = self._deadlines.get(tick)
        if expiring is None:
            expiring = self._deadlines[tick] = []
            loop.call_at(tick * self._tick, self._expire, tick)
        expiring.append(future)
        if recording.get():  # a sampled request sees the wait for the group commit as a span
            with span("audit.flush", **{"strongroom.audit.action": event.action}):
                refused = await future
        else:
            refused = await future  # None once stored, else why not (no exception in futures)
        if refused is not None:
            raise AuditUnavailable(refused)

    def _expire(self, tick: int) -> None:
        for future in self._deadlines.pop(tick, ()):
            if not future.done():
                self.events_timed_out += 1
                future.set_result(_TIMED_OUT)

    async def _run(self) -> None:
        while True:
            if not self._rows:
                if self._closing:
                    return
                self._idle = True
                self._wakeup.clear()
                await self._wakeup.wait()
                self._idle = False
                # Coming from idle: give concurrent requests a moment to join this batch. Right
                # after a flush there is no wait: what queued during the commit goes at once.
                if self._linger > 0 and len(self._rows) < self._batch_size and not self._closing:
                    await asyncio.sleep(self._linger)
                if not self._rows:
                    continue
            rows, waiters = self._take()
            self._in_flight = waiters
            await self._flush(rows, waiters)

    def _take(self) -> tuple[list[tuple[object, ...]], list[asyncio.Future[str | None]]]:
        count = len(self._rows)
        if count <= self._batch_size:
            rows, waiters = self._rows, self._waiters
            self._rows, self._waiters = [], []
            return rows, waiters
        size = self._batch_size
        rows, waiters = self._rows[:size], self._waiters[:size]
        del self._rows[:size], self._waiters[:size]
        return rows, waiters

    async def _flush(
        self, rows: list[tuple[object, ...]], waiters: list[asyncio.Future[str | None]]
    ) -> None:
        """Write one batch, retrying until it is stored; resolve its waiters."""
        attempt = 0
        idempotent = False
        while rows:
            started = time.perf_counter()
            try:
                await self._write(rows, idempotent=idempotent)
            except _ROW_ERRORS as exc:
                if isinstance(exc, asyncpg.UniqueViolationError) and not idempotent:
                    idempotent = True  # an id already stored: skip it, do not fail the batch
                    continue
                await self._write_one_by_one(rows, waiters)
                continue
            except Exception as exc:  # any other failure: the store is down
                # The failed attempt may have committed: every later attempt skips stored ids.
                idempotent = True
                attempt += 1
                self.flush_failures += 1
                if not self._failing or attempt == 1:
                    log.warning(
                        "audit flush of %d events failed (%s); retrying",
                        len(rows),
                        _describe(exc),
                    )
                self._failing = True
                await asyncio.sleep(self._backoff(attempt))
                continue
            self._done(rows, waiters, time.perf_counter() - started)
            return

    def _done(
        self,
        rows: list[tuple[object, ...]],
        waiters: list[asyncio.Future[str | None]],
        seconds: float,
    ) -> None:
        for waiter in waiters:
            if not waiter.done():  # callers that timed out or went away are done already
                waiter.set_result(None)
        count = len(rows)
        self.batches += 1
        self.events_written += count
        self.last_batch_size = count
        if self._failing:
            self._failing = False
            log.info("audit store available again")
        rows.clear()
        waiters.clear()
        if self.on_flush is not None:
            try:
                self.on_flush(count, seconds)
            except Exception:
                log.exception("audit on_flush hook failed")

    async def _write_one_by_one(
        self, rows: list[tuple[object, ...]], waiters: list[asyncio.Future[str | None]]
    ) -> None:
        """Isolate the rows PostgreSQL refuses: each row alone; refused ones fail their caller.
        A store failure midway propagates with the remaining rows still in ``rows``."""
        while rows:
            started = time.perf_counter()
            try:
                await self._write(rows[:1], idempotent=True)
            except _ROW_ERRORS as exc:
                log.error("audit store refused an event: %s", _describe(exc))
                self.events_failed += 1
                self._fail_waiters(waiters[:1], "the audit store refused the event")
                del rows[0], waiters[0]
                continue
            except Exception:  # the caller's retry loop handles store failures
                return
            self._done(rows[:1], waiters[:1], time.perf_counter() - started)
            del rows[0], waiters[0]

    async def _write(self, rows: Sequence[tuple[object, ...]], *, idempotent: bool) -> None:
        """Store ``rows`` in one transaction: a plain COPY, or the ON CONFLICT path that skips
        ids already stored (``idempotent``)."""
        connection = await self._connected()
        timeout = self._command_timeout
        try:
            if not idempotent:
                await connection.copy_records_to_table(
                    "audit_events", records=rows, columns=COLUMNS, timeout=timeout
                )
                return
            await connection.execute(_BEGIN, timeout=timeout)
            await connection.copy_records_to_table(
                _BATCH_TABLE, records=rows, schema_name="pg_temp", timeout=timeout
            )
            await connection.execute(_MOVE_AND_COMMIT, timeout=timeout)
        except _ROW_ERRORS:
            if idempotent:
                await self._rollback(connection)
            raise
        except BaseException:
            # Unknown state (maybe committed, maybe not): drop the connection; the retry uses a
            # new one and ON CONFLICT makes a repeated batch harmless.
            await self._disconnect(graceful=False)
            raise

    async def _rollback(self, connection: BatchConnection) -> None:
        try:
            await connection.execute("ROLLBACK", timeout=self._command_timeout)
        except Exception:  # a connection that cannot roll back is replaced
            await self._disconnect(graceful=False)

    async def _connected(self) -> BatchConnection:
        connection = self._connection
        if connection is not None and not connection.is_closed():
            return connection
        self._connection = None
        connection = await self._connect()
        try:
            await connection.execute(_PREPARE_CONNECTION, timeout=self._command_timeout)
        except BaseException:
            connection.terminate()
            raise
        self._connection = connection
        return connection

    async def _disconnect(self, *, graceful: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is None or connection.is_closed():
            return
        if graceful:
            try:
                await connection.close(timeout=self._command_timeout)
                return
            except Exception:  # noqa: S110  # falls through to terminate
                pass
        connection.terminate()

    def _backoff(self, attempt: int) -> float:
        # Full jitter: a restarted PostgreSQL is not hit by every process at the same instant.
        return random.uniform(0, min(self._max_backoff, 0.01 * 2**attempt))  # noqa: S311

    @staticmethod
    def _fail_waiters(waiters: Iterable[asyncio.Future[str | None]], detail: str) -> None:
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(f"{detail}; nothing was revealed")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


__all__ = ["BatchConnection", "Connect", "GroupCommitWriter", "connector"]
