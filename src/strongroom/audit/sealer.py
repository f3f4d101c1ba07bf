"""The sealer: links committed audit events into the hash chain and signs checkpoints.

One replica leads at a time. The leader holds an advisory lock that lives as long as a connection
of its own (never a pooled one, never through a transaction-mode pooler); the others retry now
and then and take over when the leader's connection ends. Every ``interval`` the leader seals
what is committed and unsealed, in batches, one transaction each, and at the end of the round
signs a checkpoint of the head once ``checkpoint_every`` events were sealed since the last one or
``checkpoint_interval`` seconds passed.

**Seal order.** The chain is ordered by sealing, not by ``seq``. A batch locks the chain head
row, selects the committed events that are not in ``audit_chain`` yet, in (``xact``, ``seq``)
order (the transaction that wrote each, then its insert order), appends
one link per event after the head and moves the head, all in one transaction. ``seq`` is taken at
insert, but transactions commit in any order: an event whose transaction commits after a batch's
snapshot is not visible to that batch, and the next batch picks it up.

**What is left to seal.** Every event records the transaction that wrote it (``xact``), and the
head records a *cursor* (``horizon``, ``horizon_seq``): every committed event at or before it in
(``xact``, ``seq``) order is sealed. The batch reads the xmin of its snapshot in the statement that
locks the head: every transaction below that xmin had ended, so its events (if it committed) are
all visible to the select that follows. The batch seals the first ``limit`` unsealed events after
the cursor, in that order, and moves the cursor:

- when it took them all (fewer than its limit), to the xmin (every visible event below it is
  sealed, and no transaction below it can add one);
- when it was full and its last event's transaction is below the xmin, to that event (every
  unsealed event before it would have sorted into the batch, and its transaction had ended, so
  none of its events was invisible);
- when it was full otherwise, to the xmin, if that is ahead (an invisible transaction between
  the xmin and the last event must stay after the cursor).

So the work queue is "after the cursor, and no link", found through the index on (``xact``,
``seq``). The cursor cannot pass a transaction that was still running when the batch began,
anywhere on the server; while one holds it back, a backlog would be read again from the cursor by
every batch. So the sealer also remembers, in memory, where its last full batch stopped, and
starts the next batch there; such a batch seals but never moves the cursor (events it skipped, of
transactions that were invisible, are still after the cursor), and the first batch that is not
full sends the next one back to the cursor, which then seals the stragglers and moves. A batch
reads about as many events as it seals, even while a backlog of millions drains.
Nothing is skipped, because the cursor only passes events that were sealed and transactions that
had ended; nothing is sealed twice, because the head row lock serialises batches (even two
leaders after a network split) and a link's position and event are both unique. A transaction
that stays open for long holds the cursor back; sealing still works, over a longer window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from strongroom.audit.chain import (
    UNSEALED_AFTER_CURSOR,
    ChainPoint,
    Cursor,
    canonical_record,
    link_hash,
    read_head,
)
from strongroom.audit.events import COLUMNS
from strongroom.audit.signing import ALGORITHM, CheckpointSigner, checkpoint_message
from strongroom.audit.store import DbConnection
from strongroom.observability.tracing import untraced

log = logging.getLogger("strongroom.audit.sealer")

SEALER_LOCK_KEY = 0x5372_4175_6469_74  # "SrAudit": the leader's advisory lock
_BATCHES_PER_ROUND = 10

_LOCK_HEAD = (
    "SELECT position, hash, horizon, horizon_seq, pg_snapshot_xmin(pg_current_snapshot()) AS xmin "
    "FROM audit_chain_head WHERE id = 1 FOR UPDATE"
)
_UNSEALED = (
    f"SELECT e.seq, e.xact, {', '.join(f'e.{name}' for name in COLUMNS)} FROM audit_events e "
    f"WHERE {UNSEALED_AFTER_CURSOR} ORDER BY e.xact, e.seq LIMIT $3"
)
_SEAL = (
    "INSERT INTO audit_chain (position, event_seq, prev_hash, hash) "
    "SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[])"
)
_MOVE_HORIZON = "UPDATE audit_chain_head SET horizon = $1, horizon_seq = $2 WHERE id = 1"
_MOVE_HEAD = (
    "UPDATE audit_chain_head SET position = $1, hash = $2, horizon = $3, horizon_seq = $4, "
    "sealed_at = now() WHERE id = 1"
)
_LAST_CHECKPOINT = (
    "SELECT position, signed_at FROM audit_checkpoints ORDER BY position DESC LIMIT 1"
)
_INSERT_CHECKPOINT = (
    "INSERT INTO audit_checkpoints (position, hash, signed_at, key_id, signature) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (position) DO NOTHING"
)
_REGISTER_KEY = (
    "INSERT INTO audit_signing_keys (key_id, algorithm, public_key) VALUES ($1, $2, $3) "
    "ON CONFLICT (key_id) DO NOTHING"
)


class ChainConflict(RuntimeError):
    """A batch found events sealed under it: another sealer ran despite the lock."""


async def seal_batch(connection: DbConnection, limit: int) -> int:
    """Seal up to ``limit`` committed events after the chain head; returns how many."""
    sealed, _ = await seal_batch_from(connection, limit, None)
    return sealed


async def seal_batch_from(
    connection: DbConnection, limit: int, resume: Cursor | None
) -> tuple[int, Cursor | None]:
    """Seal up to ``limit`` committed events, looking from ``resume`` if it is past the head's
    cursor, else from the cursor. Returns how many, and where the next batch may resume (None:
    from the cursor)."""
    async with connection.transaction():
        head = await connection.fetchrow(_LOCK_HEAD)
        if head is None:
            raise RuntimeError("audit_chain_head is empty; run the migrations")
        cursor = (head["horizon"], head["horizon_seq"])
        from_cursor = resume is None or resume <= cursor
        start = cursor if resume is None or from_cursor else resume
        rows = await connection.fetch(_UNSEALED, *start, limit)
        # Only a batch that looked from the cursor knows what lies between the cursor and its
        # last event; one that resumed further on moves nothing.
        moved = _next_cursor(cursor, head["xmin"], rows, limit) if from_cursor else cursor
        after: Cursor | None = (rows[-1]["xact"], rows[-1]["seq"]) if len(rows) == limit else None
        if not rows:
            if moved != cursor:
                await connection.execute(_MOVE_HORIZON, *moved)
            return 0, None
        seqs: list[int] = []
        positions: list[int] = []
        prev_hashes: list[bytes] = []
        hashes: list[bytes] = []
        prev, position = bytes(head["hash"]), head["position"]
        for row in rows:
            position += 1
            digest = link_hash(prev, canonical_record(row))
            seqs.append(row["seq"])
            positions.append(position)
            prev_hashes.append(prev)
            hashes.append(digest)
            prev = digest
        try:
            await connection.execute(_SEAL, positions, seqs, prev_hashes, hashes)
        except asyncpg.UniqueViolationError as exc:
            raise ChainConflict("events were sealed by someone else during this batch") from exc
        await connection.execute(_MOVE_HEAD, position, prev, *moved)
    return len(rows), after


def _next_cursor(cursor: Cursor, xmin: int, rows: Sequence[Any], limit: int) -> Cursor:
    """Where the cursor goes after a batch that sealed ``rows`` (see the module docstring).
    Every transaction below the snapshot's ``xmin`` had ended before the select, so all of its
    events were visible to it."""
    if len(rows) == limit and rows[-1]["xact"] < xmin:
        return (rows[-1]["xact"], rows[-1]["seq"])
    return max(cursor, (xmin, 0))


async def write_checkpoint(
    connection: DbConnection,
    signer: CheckpointSigner,
    *,
    every: int = 1_000,
    interval: float = 60.0,
    force: bool = False,
) -> ChainPoint | None:
    """Sign the chain head when ``every`` events were sealed since the last checkpoint, when
    ``interval`` seconds passed, or when ``force`` is true (and the head moved). Returns the
    checkpoint written, if any."""
    head = await read_head(connection)
    if head.position == 0:
        return None
    signed_at = datetime.now(UTC)
    last = await connection.fetchrow(_LAST_CHECKPOINT)
    if last is not None:
        if head.position <= last["position"]:
            return None
        due = (
            force
            or head.position - last["position"] >= every
            or (signed_at - last["signed_at"]).total_seconds() >= interval
        )
        if not due:
            return None
    message = checkpoint_message(head.position, head.hash, signed_at, signer.key_id)
    signature = await signer.sign(message)
    await connection.execute(
        _INSERT_CHECKPOINT, head.position, head.hash, signed_at, signer.key_id, signature
    )
    return head


async def register_signing_key(connection: DbConnection, signer: CheckpointSigner) -> None:
    """Publish the signer's public key next to the checkpoints it signs."""
    await connection.execute(_REGISTER_KEY, signer.key_id, ALGORITHM, signer.public_key)


class AuditSealer:
    """The background sealer of one process; at most one process leads at a time.

    ``start()`` runs it as a task; ``stop()`` lets the current round finish, seals what is left,
    writes a last checkpoint, and closes its connection (which releases the leadership).
    ``step()`` runs one round by hand (tests, tools).
    """

    def __init__(
        self,
        dsn: str,
        signer: CheckpointSigner,
        *,
        interval: float = 1.0,
        batch_size: int = 5_000,
        checkpoint_every: int = 1_000,
        checkpoint_interval: float = 60.0,
        retry_interval: float = 5.0,
        timeout: float = 30.0,
    ) -> None:
        if batch_size < 1 or checkpoint_every < 1:
            raise ValueError("batch_size and checkpoint_every must be positive")
        self._dsn = dsn
        self._signer = signer
        self.interval = interval
        self.batch_size = batch_size
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval = checkpoint_interval
        self.retry_interval = retry_interval
        self._timeout = timeout
        self._connection: asyncpg.Connection | None = None
        self._leading = False
        self._backlog = False
        self._resume: Cursor | None = None  # where the last full batch stopped
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.head_position = 0
        self.sealed_total = 0
        self.last_round_at: float | None = None
        self.last_error: str | None = None

    @property
    def leading(self) -> bool:
        """Whether this process holds the sealer lock."""
        return self._leading

    def status(self) -> dict[str, object]:
        """For health details and metrics."""
        return {
            "leading": self._leading,
            "head_position": self.head_position,
            "sealed_total": self.sealed_total,
            "seconds_since_round": (
                None if self.last_round_at is None else time.monotonic() - self.last_round_at
            ),
            "last_error": self.last_error,
        }

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the sealer is already running")
        self._stopping.clear()
        self._task = asyncio.create_task(untraced(self._run()), name="strongroom-audit-sealer")

    async def stop(self, grace: float = 10.0) -> None:
        """Finish the round in progress, seal and checkpoint what is left, release the lock."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, grace)
            except TimeoutError:
                log.warning("the audit sealer did not stop within %.1f s", grace)
        await self._disconnect()

    async def step(self, *, force_checkpoint: bool = False) -> int:
        """One round: lead if possible, seal everything available, checkpoint when due.
        Returns the number of events sealed (0 when another process leads)."""
        connection = await self._connect()
        if not self._leading:
            self._leading = bool(
                await connection.fetchval("SELECT pg_try_advisory_lock($1)", SEALER_LOCK_KEY)
            )
            if not self._leading:
                return 0
            log.info("this process now seals the audit chain")
            await register_signing_key(connection, self._signer)
        sealed, self._backlog = 0, False
        # A bounded round, so that checkpoints keep coming while a backlog drains.
        for _ in range(_BATCHES_PER_ROUND):
            count, self._resume = await seal_batch_from(connection, self.batch_size, self._resume)
            sealed += count
            if count < self.batch_size:
                break
        else:
            self._backlog = True
        await write_checkpoint(
            connection,
            self._signer,
            every=self.checkpoint_every,
            interval=self.checkpoint_interval,
            force=force_checkpoint,
        )
        self.sealed_total += sealed
        self.head_position = (await read_head(connection)).position
        self.last_round_at = time.monotonic()
        self.last_error = None
        return sealed

    async def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                delay = await self._round()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
            if self._leading:
                await self.step(force_checkpoint=True)
        except asyncio.CancelledError:
            raise
        except Exception:  # the last round on shutdown; the next leader picks up the rest
            log.exception("the audit sealer could not finish its last round")

    async def _round(self) -> float:
        """Run one step and say how long to wait before the next."""
        try:
            await self.step()
        except Exception as exc:  # a background loop must outlive any failure; it reconnects
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("audit sealing failed, retrying: %s", self.last_error)
            await self._disconnect()
            return self.retry_interval
        if not self._leading:
            return self.retry_interval
        return 0.0 if self._backlog else self.interval

    async def _connect(self) -> asyncpg.Connection:
        if self._connection is not None and not self._connection.is_closed():
            return self._connection
        self._leading, self._resume = False, None
        connection = await asyncpg.connect(
            self._dsn,
            timeout=self._timeout,
            command_timeout=self._timeout,
            server_settings={
                "application_name": "strongroom-sealer",
                # A leader whose host vanished must not keep the lock forever.
                "tcp_keepalives_idle": "15",
                "tcp_keepalives_interval": "5",
                "tcp_keepalives_count": "3",
                # Every statement the sealer runs is written for an index walk that stops after
                # a batch: the events after the cursor in (xact, seq) order, each probed once in
                # audit_chain. Without statistics (a restore, a server without autovacuum) the
                # planner takes the rows after the cursor for few and prefers to read them all,
                # hash the whole chain and sort: the batch would cost the backlog, not itself.
                # These settings leave it the walk; they apply to this connection only.
                "enable_seqscan": "off",
                "enable_bitmapscan": "off",
                "enable_hashjoin": "off",
                "enable_mergejoin": "off",
                "max_parallel_workers_per_gather": "0",
            },
        )
        if connection.get_server_version().major >= 14:
            # A leader whose process hangs goes idle; the server then closes its connection.
            idle_ms = int(max(self.interval, self.retry_interval, 1.0) * 1000 * 10)
            await connection.execute(f"SET idle_session_timeout = {max(idle_ms, 60_000)}")
        self._connection = connection
        return connection

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        was_leading, self._leading = self._leading, False
        if connection is None or connection.is_closed():
            return
        try:
            await connection.close(timeout=self._timeout)
        except Exception:  # closing is best effort; the server frees the lock with the connection
            connection.terminate()
        if was_leading:
            log.info("this process no longer seals the audit chain")
