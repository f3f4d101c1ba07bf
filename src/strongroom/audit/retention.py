"""Retention of the audit trail: policies per action class, legal holds, and the chain cut.

Each action belongs to a class with its own retention (in days; 0 keeps forever). Because the
trail is a hash chain, retention removes a *prefix*: it cuts through the last event before the
first one that must be kept — not yet expired under its class, or covered by an active legal
hold (for its tenant, or for its subject) — and leaves a signed anchor there, so the rest still
verifies. An expired event that stands behind one that must be kept waits for it; nothing that
must be kept is ever removed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from strongroom.audit.anchor import cut_chain
from strongroom.audit.chain import read_anchor, read_head
from strongroom.audit.events import AuditEvent
from strongroom.audit.signing import CheckpointSigner, PublicKeys
from strongroom.audit.store import DbConnection, insert_event
from strongroom.resilience.background import BackgroundTask

log = logging.getLogger("strongroom.audit.retention")

ACTION_CLASSES: Mapping[str, tuple[str, ...]] = {
    "access": ("record.read", "record.search", "audit.read"),
    "reveal": ("record.reveal",),
    "change": ("collection.put", "record.create", "record.update", "record.delete"),
    "privacy": (
        "subject.export",
        "subject.erase",
        "audit.export",
        "legal_hold.place",
        "legal_hold.release",
        "audit.retention",
    ),
    "security": ("auth.denied", "ratelimit.exceeded", "key.rotate"),
}
# Days; 0 keeps forever. Changes and data-subject requests are kept the longest.
DEFAULT_POLICIES: Mapping[str, int] = {
    "access": 365,
    "reveal": 2_555,
    "change": 2_555,
    "privacy": 3_650,
    "security": 730,
}
# Advisory lock key of the retention job (one runner across replicas).
_LOCK_KEY = 0x5374726F6E68


def parse_policies(spec: str | None) -> dict[str, int]:
    """``access=365,reveal=2555`` over the defaults; raises ValueError with one line."""
    policies = dict(DEFAULT_POLICIES)
    if not spec:
        return policies
    for part in spec.split(","):
        name, sep, days = part.strip().partition("=")
        if not sep or name not in ACTION_CLASSES or not days.isdigit():
            raise ValueError(
                f"retention entries are class=days with a class among "
                f"{', '.join(ACTION_CLASSES)}; got {part.strip()!r}"
            )
        policies[name] = int(days)
    return policies


@dataclass(frozen=True, slots=True)
class RetentionResult:
    cut_through: int | None
    removed: int
    first_kept_position: int | None
    dry_run: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "cut_through": self.cut_through,
            "removed": self.removed,
            "first_kept_position": self.first_kept_position,
            "dry_run": self.dry_run,
        }


def _arrays(policies: Mapping[str, int]) -> tuple[list[str], list[int]]:
    actions: list[str] = []
    days: list[int] = []
    for name, members in ACTION_CLASSES.items():
        for action in members:
            actions.append(action)
            days.append(policies.get(name, 0))
    return actions, days


# The first sealed event (in chain order, after the anchor) that must be kept. Unknown actions
# and classes with 0 days are kept forever.
_FIRST_KEPT = """
SELECT c.position
FROM audit_chain c
JOIN audit_events e ON e.seq = c.event_seq
LEFT JOIN unnest($1::text[], $2::int[]) AS p(action, days) ON p.action = e.action
WHERE c.position > $3
  AND (
    p.days IS NULL OR p.days = 0
    OR e.occurred_at >= $4::timestamptz - make_interval(days => p.days)
    OR EXISTS (
      SELECT 1 FROM legal_holds h
      WHERE h.released_at IS NULL AND h.tenant_id = e.tenant_id
        AND (h.subject_ref IS NULL OR h.subject_ref = e.subject_ref)
    )
  )
ORDER BY c.position
LIMIT 1
"""


async def apply_retention(
    connection: DbConnection,
    policies: Mapping[str, int],
    signer: CheckpointSigner,
    public_keys: PublicKeys,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
) -> RetentionResult:
    """Cut the chain through the last removable event; audited as ``audit.retention``."""
    moment = now or datetime.now(UTC)
    anchor = await read_anchor(connection)
    start = 0 if anchor is None else anchor.position
    head = await read_head(connection)
    actions, days = _arrays(policies)
    first_kept = await connection.fetchval(_FIRST_KEPT, actions, days, start, moment)
    through = (first_kept - 1) if first_kept is not None else head.position
    if through <= start:
        return RetentionResult(None, 0, first_kept, dry_run)
    removed = through - start
    if dry_run:
        return RetentionResult(through, removed, first_kept, True)
    await cut_chain(connection, through, signer, public_keys)
    async with connection.transaction():
        await insert_event(
            connection,
            AuditEvent(
                action="audit.retention",
                outcome="success",
                tenant_id=None,
                actor="strongroom",
                resource=f"audit/chain/positions/{start + 1}-{through}",
            ),
        )
    log.info("audit retention removed %d events (positions %d-%d)", removed, start + 1, through)
    return RetentionResult(through, removed, first_kept, False)


async def retention_state(
    connection: DbConnection, policies: Mapping[str, int], tenant_id: str
) -> dict[str, Any]:
    """For the compliance report: policies, where the chain starts, holds in force."""
    anchor = await read_anchor(connection)
    oldest = await connection.fetchval(
        "SELECT min(occurred_at) FROM audit_events WHERE tenant_id = $1::uuid", tenant_id
    )
    holds = await connection.fetchval(
        "SELECT count(*) FROM legal_holds WHERE tenant_id = $1::uuid AND released_at IS NULL",
        tenant_id,
    )
    return {
        "policies_days": dict(policies),
        "classes": {name: list(members) for name, members in ACTION_CLASSES.items()},
        "chain_starts_after": None if anchor is None else anchor.position,
        "last_cut_at": None if anchor is None else anchor.cut_at,
        "oldest_event_at": oldest,
        "active_legal_holds": holds,
    }


class RetentionJob:
    """Runs retention every ``interval`` seconds on one replica (advisory lock)."""

    def __init__(
        self,
        dsn: str,
        policies: Mapping[str, int],
        signer: CheckpointSigner,
        public_keys: PublicKeys,
        interval: float,
    ) -> None:
        self._dsn = dsn
        self._policies = policies
        self._signer = signer
        self._public_keys = public_keys
        self._interval = interval
        self._background = BackgroundTask("strongroom-audit-retention")
        self.last_result: RetentionResult | None = None

    async def start(self) -> None:
        if self._interval > 0:
            self._background.start(self._run())

    async def stop(self) -> None:
        await self._background.stop()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.run_once()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("audit retention did not run: %s", type(exc).__name__)
            except Exception:  # a failed round must not end the schedule
                log.exception("audit retention failed")

    async def run_once(self) -> RetentionResult | None:
        connection = await asyncpg.connect(self._dsn)
        try:
            if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY):
                return None  # another replica is on it
            try:
                self.last_result = await apply_retention(
                    connection, self._policies, self._signer, self._public_keys
                )
                return self.last_result
            finally:
                await connection.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
        finally:
            await connection.close()
