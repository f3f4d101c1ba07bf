"""Verification of the audit chain: recompute every sealed event's hash and report the first
broken link.

The walk starts at the retention anchor (or the genesis), reads sealed events in position order a
page at a time inside one repeatable-read snapshot, and checks for each position that it is the
next one, that the stored ``prev_hash`` links to the hash recomputed so far and that the event's
content gives its stored hash. Signed checkpoints (from the database, and optionally from an
export kept elsewhere) are checked on the way against the recomputed hashes. Memory stays bounded
whatever the chain's length.

Kinds of problem, each reported with its position (and event id when there is an event):

``changed``             the content at a position no longer gives its hash
``missing``             a position is absent (a deleted link, a link whose event was deleted, or
                        a tail shorter than the head)
``inserted``            a row that the chain does not vouch for: it does not link to its
                        predecessor, sits beyond the chain head or before the anchor, replaced an
                        event with a recomputed hash, or is an event the sealer should have sealed
                        and did not (written around the service)
``reordered``           content or links that belong at another position of the chain
``forged_checkpoint``   a checkpoint's signature does not verify under a trusted key
``checkpoint_mismatch`` an authentic checkpoint disagrees with the recomputed chain
``checkpoint_missing``  a checkpoint in the export is gone from the database
``forged_anchor``       the retention anchor's signature does not verify
``head_mismatch``       the recorded chain head disagrees with the recomputed chain
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from strongroom.audit.chain import (
    GENESIS_HASH,
    LINK_SELECT,
    LINKED_EVENTS,
    NOT_LINKED,
    UNSEALED_AFTER_CURSOR,
    Anchor,
    ChainPoint,
    Cursor,
    canonical_record,
    link_hash,
    read_anchor,
    read_head,
)
from strongroom.audit.checkpoints import Checkpoint, iter_checkpoints
from strongroom.audit.signing import (
    PublicKeys,
    anchor_message,
    checkpoint_message,
    signature_valid,
)
from strongroom.audit.store import DbConnection

PAGE_SIZE = 5_000

_EVENTS = (
    f"SELECT {LINK_SELECT} FROM {LINKED_EVENTS} "
    "WHERE c.position > $1 AND c.position <= $2 ORDER BY c.position LIMIT $3"
)
_LINKS = (
    "SELECT position AS chain_position, prev_hash, hash FROM audit_chain "
    "WHERE position > $1 ORDER BY position LIMIT $2"
)
_BEFORE_ANCHOR = (
    f"SELECT c.position AS chain_position, e.id, e.tenant_id FROM {LINKED_EVENTS} "
    "WHERE c.position <= $1 ORDER BY c.position LIMIT 1"
)
# Waiting to be sealed: the events after the sealer's cursor ($1, $2: see sealer.py) that have no
# link yet. The cursor is a bound value, not a subquery, so that the planner sees how few rows are
# after it and reads them through the index on (xact, seq) (a subquery's value is unknown when
# planning, and the estimate makes it join the whole table).
_UNSEALED = (
    "SELECT count(*) AS n, min(e.occurred_at) AS oldest FROM audit_events e "
    f"WHERE {UNSEALED_AFTER_CURSOR}"
)
_CURSOR = "SELECT horizon, horizon_seq FROM audit_chain_head WHERE id = 1"
# An event at or before the cursor without a link was not written through the service: the
# sealer passed it after sealing every event written before it.
_STRAY = (
    "SELECT e.seq, e.id, e.tenant_id FROM audit_events e "
    "WHERE (e.xact IS NULL OR (e.xact, e.seq) <= ($1, $2)) "
    f"AND {NOT_LINKED} ORDER BY e.seq LIMIT 1"
)
_NO_LIMIT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Problem:
    """The first thing found wrong, where, and what."""

    kind: str
    position: int | None
    event_id: uuid.UUID | None
    detail: str
    tenant_id: uuid.UUID | None = None

    def as_dict(self, *, tenant_id: str | None = None) -> dict[str, object]:
        """JSON-ready; with ``tenant_id``, another tenant's event id is left out."""
        hide = tenant_id is not None and str(self.tenant_id) != tenant_id
        return {
            "kind": self.kind,
            "position": self.position,
            "event_id": None if self.event_id is None or hide else str(self.event_id),
            "detail": self.detail,
        }


@dataclass(slots=True)
class VerifyReport:
    """The outcome of a verification."""

    ok: bool = True
    checked: int = 0
    first_problem: Problem | None = None
    checkpoints_verified: int = 0
    checkpoints_before_anchor: int = 0
    anchor: Anchor | None = None
    head_position: int = 0
    last_position: int = 0
    unsealed: int = 0
    oldest_unsealed_at: datetime | None = None
    verified_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_dict(self, *, tenant_id: str | None = None) -> dict[str, object]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_problem": (
                None
                if self.first_problem is None
                else self.first_problem.as_dict(tenant_id=tenant_id)
            ),
            "checkpoints_verified": self.checkpoints_verified,
            "checkpoints_before_anchor": self.checkpoints_before_anchor,
            "anchor": None if self.anchor is None else self.anchor.as_dict(),
            "head_position": self.head_position,
            "last_position": self.last_position,
            "unsealed": self.unsealed,
            "oldest_unsealed_at": _iso(self.oldest_unsealed_at),
            "verified_at": _iso(self.verified_at),
        }

    def to_json(self, *, tenant_id: str | None = None) -> str:
        return orjson.dumps(self.as_dict(tenant_id=tenant_id)).decode()


async def chain_status(connection: DbConnection) -> dict[str, object]:
    """A cheap summary of the chain for reports and health details (no recomputation): the
    head, what waits to be sealed, the last checkpoint and the anchor."""
    head = await connection.fetchrow(
        "SELECT position, sealed_at, horizon, horizon_seq FROM audit_chain_head"
    )
    assert head is not None
    unsealed = await connection.fetchrow(_UNSEALED, head["horizon"], head["horizon_seq"])
    last = await connection.fetchrow(
        "SELECT position, signed_at, key_id FROM audit_checkpoints ORDER BY position DESC LIMIT 1"
    )
    anchor = await read_anchor(connection)
    assert unsealed is not None
    return {
        "head_position": head["position"],
        "last_sealed_at": _iso(head["sealed_at"]),
        "unsealed": unsealed["n"],
        "oldest_unsealed_at": _iso(unsealed["oldest"]),
        "last_checkpoint": None
        if last is None
        else {
            "position": last["position"],
            "signed_at": _iso(last["signed_at"]),
            "key_id": last["key_id"],
        },
        "anchor": None if anchor is None else anchor.as_dict(),
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


class ChainBroken(Exception):
    """Raised by operations that need an intact chain (see :func:`strongroom.audit.anchor`)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(f"{problem.kind} at position {problem.position}: {problem.detail}")
        self.problem = problem


async def verify_chain(
    connection: DbConnection,
    public_keys: PublicKeys,
    *,
    exported: Sequence[Checkpoint] = (),
    page_size: int = PAGE_SIZE,
) -> VerifyReport:
    """Verify the whole chain and its checkpoints in one consistent snapshot.

    ``public_keys`` are the trusted signing keys (see
    :func:`strongroom.audit.signing.trusted_keys`); ``exported`` are checkpoints kept outside
    the database, checked against the chain as well.
    """
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        return await walk_chain(connection, public_keys, exported=exported, page_size=page_size)


async def verify_checkpoint_export(
    connection: DbConnection,
    exported: Sequence[Checkpoint],
    public_keys: PublicKeys | None = None,
    *,
    page_size: int = PAGE_SIZE,
) -> VerifyReport:
    """Check an export kept elsewhere against the database: every exported checkpoint must be
    authentic, match the recomputed chain and still be in the database.

    Without ``public_keys``, the keys published in the export itself are trusted: the export is
    the independent record, and whoever rewrote the database could not have changed it.
    """
    if public_keys is None:
        public_keys = {cp.key_id: cp.public_key for cp in exported if cp.public_key is not None}
    return await verify_chain(connection, public_keys, exported=exported, page_size=page_size)


async def walk_chain(
    connection: DbConnection,
    public_keys: PublicKeys,
    *,
    exported: Sequence[Checkpoint] = (),
    through: int | None = None,
    page_size: int = PAGE_SIZE,
) -> VerifyReport:
    """The verification itself, in the caller's transaction; with ``through``, only the part of
    the chain up to that position (and its checkpoints) is checked, and the head is not."""
    walk = _Walk(connection, public_keys, exported, through, page_size)
    return await walk.run()


class _Walk:
    def __init__(
        self,
        connection: DbConnection,
        public_keys: PublicKeys,
        exported: Sequence[Checkpoint],
        through: int | None,
        page_size: int,
    ) -> None:
        self.connection = connection
        self.public_keys = public_keys
        self.through = through
        self.page_size = page_size
        self.report = VerifyReport()
        self.checkpoints = _CheckpointMerge(connection, exported, page_size)
        self.running = GENESIS_HASH
        self.cursor: Cursor = (0, 0)

    async def run(self) -> VerifyReport:
        report = self.report
        anchor = await read_anchor(self.connection)
        head = await read_head(self.connection)
        cursor = await self.connection.fetchrow(_CURSOR)
        assert cursor is not None
        self.cursor = (cursor["horizon"], cursor["horizon_seq"])
        unsealed = await self.connection.fetchrow(_UNSEALED, *self.cursor)
        assert unsealed is not None
        report.anchor = anchor
        report.head_position = head.position
        report.unsealed = unsealed["n"]
        report.oldest_unsealed_at = unsealed["oldest"]
        start = anchor.point if anchor is not None else ChainPoint(0, GENESIS_HASH)
        report.last_position = start.position
        self.running = start.hash
        problem = (
            await self._check_start(anchor, start)
            or await self._walk(start, head)
            or await self._check_end(head)
        )
        if problem is not None:
            report.ok = False
            report.first_problem = problem
        return report

    async def _check_start(self, anchor: Anchor | None, start: ChainPoint) -> Problem | None:
        if anchor is not None:
            reason = signature_valid(
                self.public_keys,
                anchor.key_id,
                anchor.signature,
                anchor_message(anchor.position, anchor.hash, anchor.cut_at, anchor.key_id),
            )
            if reason is not None:
                return Problem(
                    "forged_anchor", anchor.position, None, f"retention anchor: {reason}"
                )
        stray = await self.connection.fetchrow(_BEFORE_ANCHOR, start.position)
        if stray is not None:
            return Problem(
                "inserted",
                stray["chain_position"],
                stray["id"],
                f"sealed at position {stray['chain_position']}, at or before the anchor at "
                f"{start.position} where the chain starts",
                stray["tenant_id"],
            )
        for checkpoint, _ in await self.checkpoints.upto(start.position):
            known = start.hash if checkpoint.position == start.position else None
            problem = self._checkpoint(checkpoint, known, in_database=True)
            if problem is not None:
                return problem
        return None

    async def _walk(self, start: ChainPoint, head: ChainPoint) -> Problem | None:
        report = self.report
        running = start.hash
        expected = start.position + 1
        previous: Any = None
        limit = _NO_LIMIT if self.through is None else self.through
        after = start.position
        while True:
            rows = await self.connection.fetch(_EVENTS, after, limit, self.page_size)
            for row in rows:
                position = row["chain_position"]
                if self.through is None and position > head.position:
                    return _at(
                        "inserted",
                        row,
                        f"sealed at position {position}, beyond the chain head at {head.position}",
                    )
                if position != expected:
                    span = (
                        f"{expected}" if position == expected + 1 else f"{expected}..{position - 1}"
                    )
                    return Problem(
                        "missing",
                        expected,
                        None,
                        f"position {span} is missing: the chain goes from {expected - 1} "
                        f"to {position}",
                    )
                if row["event_gone"]:
                    return Problem(
                        "missing",
                        position,
                        None,
                        f"the event sealed at position {position} (seq {row['event_seq']}) is gone",
                    )
                canonical = canonical_record(row)
                stored_prev, stored_hash = bytes(row["prev_hash"]), bytes(row["hash"])
                computed = link_hash(running, canonical)
                if stored_prev != running or computed != stored_hash:
                    return await self._broken(row, previous, canonical, running, start)
                running = self.running = computed
                for checkpoint, in_database in await self.checkpoints.upto(position):
                    problem = self._checkpoint(checkpoint, running, in_database=in_database)
                    if problem is not None:
                        return problem
                report.checked += 1
                report.last_position = position
                expected += 1
                previous = row
            if len(rows) < self.page_size:
                return None
            after = rows[-1]["chain_position"]

    async def _check_end(self, head: ChainPoint) -> Problem | None:
        last = self.report.last_position
        end = head.position if self.through is None else self.through
        if last < end:
            return Problem(
                "missing",
                last + 1,
                None,
                f"the chain ends at position {last} but "
                + (
                    f"its head is at {end}"
                    if self.through is None
                    else f"the cut needs it to reach {end}"
                ),
            )
        if self.through is None and (last != head.position or self.running != head.hash):
            return Problem(
                "head_mismatch",
                head.position,
                None,
                f"the recorded chain head (position {head.position}) does not match the "
                f"recomputed chain, which ends at {last}",
            )
        if self.through is None:
            stray = await self.connection.fetchrow(_STRAY, *self.cursor)
            if stray is not None:
                return Problem(
                    "inserted",
                    None,
                    stray["id"],
                    f"the event with seq {stray['seq']} is in no link, though the sealer has "
                    "passed the transaction that wrote it: it was not written by the service",
                    stray["tenant_id"],
                )
        beyond = await self.checkpoints.upto(_NO_LIMIT if self.through is None else end)
        if beyond:
            checkpoint = beyond[0][0]
            return self._forged(checkpoint) or Problem(
                "checkpoint_mismatch",
                checkpoint.position,
                None,
                f"a signed checkpoint vouches for position {checkpoint.position} but the chain "
                f"ends at {last}",
            )
        return None

    def _forged(self, checkpoint: Checkpoint) -> Problem | None:
        reason = signature_valid(
            self.public_keys,
            checkpoint.key_id,
            checkpoint.signature,
            checkpoint_message(
                checkpoint.position, checkpoint.hash, checkpoint.signed_at, checkpoint.key_id
            ),
        )
        if reason is None:
            return None
        return Problem("forged_checkpoint", checkpoint.position, None, f"checkpoint: {reason}")

    def _checkpoint(
        self, checkpoint: Checkpoint, recomputed: bytes | None, *, in_database: bool
    ) -> Problem | None:
        """Check one checkpoint; ``recomputed`` is the chain's hash at its position (None
        before the anchor, where only the signature can be checked)."""
        forged = self._forged(checkpoint)
        if forged is not None:
            return forged
        if recomputed is None:
            self.report.checkpoints_before_anchor += 1
            return None
        if checkpoint.hash != recomputed:
            return Problem(
                "checkpoint_mismatch",
                checkpoint.position,
                None,
                f"the signed checkpoint says {checkpoint.hash.hex()}, the chain recomputes "
                f"{recomputed.hex()}",
            )
        if not in_database:
            return Problem(
                "checkpoint_missing",
                checkpoint.position,
                None,
                "the exported checkpoint is no longer in the database",
            )
        self.report.checkpoints_verified += 1
        return None

    async def _broken(
        self, row: Any, previous: Any, canonical: bytes, running: bytes, start: ChainPoint
    ) -> Problem:
        """Name what is wrong at ``row``, whose link or hash does not verify."""
        position = row["chain_position"]
        stored_prev, stored_hash = bytes(row["prev_hash"]), bytes(row["hash"])
        home = await self._find_home(position, canonical, running, stored_prev)
        if home is not None:
            return _at("reordered", row, home)
        if stored_prev == running:
            return _at("changed", row, "its content no longer gives the hash it was sealed with")
        where = f"position {position - 1}" if previous is not None else "the chain start"
        if link_hash(stored_prev, canonical) != stored_hash:
            return _at(
                "inserted",
                row,
                f"its prev_hash does not link to {where} and its hash does not match its content",
            )
        if previous is None:
            return _at(
                "inserted",
                row,
                "it was sealed after a different event than the chain start "
                f"({'the anchor' if start.position else 'the genesis'})",
            )
        return _at(
            "inserted",
            previous,
            f"position {position} was sealed after a different event: the event at "
            f"{position - 1} was replaced (or forged) with a recomputed hash",
        )

    async def _find_home(
        self, position: int, canonical: bytes, running: bytes, stored_prev: bytes
    ) -> str | None:
        """Look further down the chain for where the content or the links at ``position``
        belong; only runs once a problem was found."""
        after = position
        while True:
            rows = await self.connection.fetch(_LINKS, after, self.page_size)
            for row in rows:
                other = row["chain_position"]
                prev, digest = bytes(row["prev_hash"]), bytes(row["hash"])
                if link_hash(prev, canonical) == digest:
                    return f"the content at position {position} was sealed at position {other}"
                if prev == running:
                    return f"the event sealed at position {position} now sits at position {other}"
                if digest == stored_prev:
                    return f"the event at position {position} was sealed at position {other + 1}"
            if len(rows) < self.page_size:
                return None
            after = rows[-1]["chain_position"]


def _at(kind: str, row: Any, detail: str) -> Problem:
    return Problem(kind, row["chain_position"], row["id"], detail, row["tenant_id"])


class _CheckpointMerge:
    """Checkpoints from the database and from an export, handed out in position order."""

    def __init__(
        self, connection: DbConnection, exported: Sequence[Checkpoint], page_size: int
    ) -> None:
        self._stream: AsyncIterator[Checkpoint] = iter_checkpoints(
            connection, page_size=min(page_size, 1_000)
        )
        self._next: Checkpoint | None = None
        self._done = False
        self._exported = sorted(exported, key=lambda checkpoint: checkpoint.position)
        self._index = 0

    async def _peek(self) -> Checkpoint | None:
        if self._next is None and not self._done:
            self._next = await anext(self._stream, None)
            self._done = self._next is None
        return self._next

    async def upto(self, position: int) -> list[tuple[Checkpoint, bool]]:
        """Checkpoints at or before ``position`` not handed out yet, with whether each is in
        the database."""
        found: list[tuple[Checkpoint, bool]] = []
        in_database: set[int] = set()
        while (upcoming := await self._peek()) is not None and upcoming.position <= position:
            found.append((upcoming, True))
            in_database.add(upcoming.position)
            self._next = None
        while (
            self._index < len(self._exported) and self._exported[self._index].position <= position
        ):
            checkpoint = self._exported[self._index]
            found.append((checkpoint, checkpoint.position in in_database))
            self._index += 1
        found.sort(key=lambda item: item[0].position)
        return found
