"""Record retention: delete records ``retention_days`` after their last update.

A deletion by retention is an erasure of the record like any other: each deleted record gets a
``record.delete`` audit event (actor ``strongroom``, outcome ``success``) in the transaction that
deletes it. Records of subjects under a legal hold (on the subject or on its whole tenant) are
kept. Batches are small transactions; a transaction-scoped advisory lock lets one replica work at
a time while the others skip the round.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from strongroom.audit.events import AuditEvent
from strongroom.audit.store import DbConnection, insert_events
from strongroom.resilience.background import BackgroundTask

log = logging.getLogger("strongroom.store.record_retention")

ACTOR = "strongroom"
RETENTION_LOCK_KEY = 0x5372_5265_7465_6E  # "SrReten"

_EXPIRED = """
SELECT r.id
FROM records r JOIN collections c ON c.id = r.collection_id
WHERE c.retention_days IS NOT NULL
  AND r.updated_at < now() - make_interval(days => c.retention_days)
  AND NOT EXISTS (
      SELECT 1 FROM legal_holds h
      WHERE h.tenant_id = r.tenant_id AND h.released_at IS NULL
        AND (h.subject_ref IS NULL OR h.subject_ref = r.subject_ref))
ORDER BY r.seq
LIMIT $1
"""
_DELETE = f"""
WITH doomed AS ({_EXPIRED} FOR UPDATE OF r SKIP LOCKED)
DELETE FROM records r USING doomed d, collections c
WHERE r.id = d.id AND c.id = r.collection_id
RETURNING r.id, r.tenant_id, r.subject_ref, c.name
"""


async def count_expired(connection: DbConnection, limit: int = 1_000_000) -> int:
    """How many records retention would delete now (for ``--dry-run``)."""
    rows = await connection.fetch(_EXPIRED, limit)
    return len(rows)


async def delete_expired_batch(connection: DbConnection, batch: int) -> int | None:
    """Delete up to ``batch`` expired records with their audit events, in one transaction.
    None when another process holds the retention lock."""
    async with connection.transaction():
        if not await connection.fetchval(
            "SELECT pg_try_advisory_xact_lock($1)", RETENTION_LOCK_KEY
        ):
            return None
        rows = await connection.fetch(_DELETE, batch)
        events = [
            AuditEvent(
                action="record.delete",
                outcome="success",
                tenant_id=str(row["tenant_id"]),
                actor=ACTOR,
                resource=f"collections/{row['name']}/records/{row['id']}",
                subject_ref=bytes(row["subject_ref"]),
                purpose="retention",
            )
            for row in rows
        ]
        if events:
            await insert_events(connection, events)
    return len(rows)


async def apply_record_retention(connection: DbConnection, batch: int = 500) -> int:
    """Delete every expired record; returns how many went (0 if another process is at it)."""
    total = 0
    while True:
        deleted = await delete_expired_batch(connection, batch)
        if not deleted:
            return total
        total += deleted
        if deleted < batch:
            return total


class RecordRetentionJob:
    """Runs :func:`apply_record_retention` every ``interval`` seconds on a pooled connection."""

    def __init__(self, pool: asyncpg.Pool, interval: float = 3600.0, batch: int = 500) -> None:
        self._pool = pool
        self._interval = interval
        self._batch = batch
        self._background = BackgroundTask("strongroom-record-retention")

    async def start(self) -> None:
        self._background.start(self._run())

    async def stop(self) -> None:
        await self._background.stop()

    async def run_once(self) -> int:
        async with self._pool.acquire() as connection:
            return await apply_record_retention(connection, self._batch)

    async def _run(self) -> None:
        while True:
            try:
                deleted = await self.run_once()
                if deleted:
                    log.info("record retention deleted %d records", deleted)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("record retention round failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(self._interval)
