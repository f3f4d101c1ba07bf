"""The verification walk on synthetic chains held in memory: every kind of damage, at every
position, with every page size. (The same walk runs against PostgreSQL in the integration
tests; here an in-memory stand-in answers its few queries.)"""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.audit.chain import GENESIS_HASH, canonical_event, canonical_record, link_hash
from strongroom.audit.events import COLUMNS, AuditEvent
from strongroom.audit.signing import Ed25519Signer, anchor_message, checkpoint_message
from strongroom.audit.verify import VerifyReport, verify_chain

_PRIVATE = Ed25519PrivateKey.generate()
SIGNER = Ed25519Signer(_PRIVATE)
KEYS = {SIGNER.key_id: SIGNER.public_key}
WHEN = datetime(2025, 1, 1, tzinfo=UTC)


def _event(n: int) -> AuditEvent:
    return AuditEvent(
        action="record.read",
        outcome="success",
        tenant_id=str(uuid.UUID(int=n % 3 + 1)),
        actor=f"actor-{n}",
        resource=f"customers/{n}",
        id=uuid.UUID(int=1_000 + n),
        occurred_at=WHEN + timedelta(seconds=n),
    )


@dataclass
class MemoryChain:
    """Sealed rows by position, the head, the anchor and checkpoints, as the tables hold them."""

    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    head: tuple[int, bytes] = (0, GENESIS_HASH)
    anchor: dict[str, Any] | None = None
    checkpoints: dict[int, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def sealed(cls, count: int, *, checkpoint_every: int = 0) -> MemoryChain:
        chain = cls()
        previous = GENESIS_HASH
        for position in range(1, count + 1):
            event = _event(position)
            digest = link_hash(previous, canonical_event(event))
            row = dict(zip(COLUMNS, event.as_row(), strict=True))
            row.update(
                chain_position=position,
                event_seq=position,
                event_gone=False,
                prev_hash=previous,
                hash=digest,
            )
            chain.rows[position] = row
            previous = digest
            if checkpoint_every and position % checkpoint_every == 0:
                chain.sign_checkpoint(position, digest)
        chain.head = (count, previous)
        return chain

    def sign_checkpoint(self, position: int, digest: bytes) -> None:
        message = checkpoint_message(position, digest, WHEN, SIGNER.key_id)
        self.checkpoints[position] = {
            "position": position,
            "hash": digest,
            "signed_at": WHEN,
            "key_id": SIGNER.key_id,
            "signature": _sign(message),
            "public_key": SIGNER.public_key,
        }

    def cut(self, through: int) -> None:
        digest = self.rows[through]["hash"]
        self.anchor = {
            "position": through,
            "hash": digest,
            "cut_at": WHEN,
            "key_id": SIGNER.key_id,
            "signature": _sign(anchor_message(through, digest, WHEN, SIGNER.key_id)),
        }
        for position in [p for p in self.rows if p <= through]:
            del self.rows[position]

    def swap_content(self, first: int, second: int) -> None:
        a, b = self.rows[first], self.rows[second]
        for column in COLUMNS:
            a[column], b[column] = b[column], a[column]

    # The queries of the walk, answered from memory.

    @asynccontextmanager
    async def transaction(self, **options: object) -> Any:
        yield

    async def fetchrow(self, query: str, *args: Any) -> dict[str, Any] | None:
        if "FROM audit_anchor" in query:
            return self.anchor
        if "count(*)" in query:  # waiting to be sealed
            return {"n": 0, "oldest": None}
        if "e.seq) <= ($1, $2)" in query:  # events the sealer passed without linking them
            return None
        if "SELECT horizon, horizon_seq" in query:  # the sealer's cursor
            return {"horizon": 0, "horizon_seq": 0}
        if "FROM audit_chain_head" in query:
            return {"position": self.head[0], "hash": self.head[1]}
        if "c.position <= $1" in query:
            found = sorted(p for p in self.rows if p <= args[0])
            return self.rows[found[0]] if found else None
        raise AssertionError(f"unexpected query {query}")

    async def fetch(self, query: str, *args: Any) -> list[dict[str, Any]]:
        if "FROM audit_checkpoints" in query:
            after, limit = args
            return [self.checkpoints[p] for p in sorted(self.checkpoints) if p > after][:limit]
        if "c.position <= $2" in query:
            after, through, limit = args
            found = sorted(p for p in self.rows if after < p <= through)
        else:
            after, limit = args
            found = sorted(p for p in self.rows if p > after)
        return [self.rows[p] for p in found[:limit]]

    async def verify(self, page_size: int = 4) -> VerifyReport:
        return await verify_chain(self, KEYS, page_size=page_size)  # type: ignore[arg-type]


def _sign(message: bytes) -> bytes:
    return _PRIVATE.sign(message)


def _kind_at(report: VerifyReport) -> tuple[str, int | None]:
    assert report.first_problem is not None, "expected a problem"
    return report.first_problem.kind, report.first_problem.position


@pytest.mark.parametrize("page_size", [1, 2, 5, 100])
async def test_intact_chain(page_size: int) -> None:
    chain = MemoryChain.sealed(23, checkpoint_every=5)
    report = await chain.verify(page_size)
    assert report.ok
    assert (report.checked, report.checkpoints_verified) == (23, 4)


_sizes = st.integers(min_value=2, max_value=30)
_pages = st.integers(min_value=1, max_value=7)


@settings(max_examples=60, deadline=None)
@given(_sizes, st.data(), _pages)
async def test_changed_anywhere(size: int, data: st.DataObject, page_size: int) -> None:
    chain = MemoryChain.sealed(size)
    position = data.draw(st.integers(1, size))
    chain.rows[position]["purpose"] = "changed"
    report = await chain.verify(page_size)
    assert _kind_at(report) == ("changed", position)
    assert report.first_problem is not None
    assert report.first_problem.event_id == uuid.UUID(int=1_000 + position)
    assert report.checked == position - 1


@settings(max_examples=60, deadline=None)
@given(_sizes, st.data(), _pages)
async def test_missing_anywhere(size: int, data: st.DataObject, page_size: int) -> None:
    chain = MemoryChain.sealed(size)
    position = data.draw(st.integers(1, size))
    del chain.rows[position]
    assert _kind_at(await chain.verify(page_size)) == ("missing", position)


@settings(max_examples=60, deadline=None)
@given(_sizes, st.data(), _pages)
async def test_swapped_anywhere(size: int, data: st.DataObject, page_size: int) -> None:
    chain = MemoryChain.sealed(size)
    first = data.draw(st.integers(1, size - 1))
    second = data.draw(st.integers(first + 1, size))
    chain.swap_content(first, second)
    report = await chain.verify(page_size)
    assert _kind_at(report) == ("reordered", first)
    assert report.first_problem is not None
    assert f"position {second}" in report.first_problem.detail


async def test_forged_row_that_does_not_link() -> None:
    chain = MemoryChain.sealed(8)
    chain.rows[5]["prev_hash"] = b"\x07" * 32
    assert _kind_at(await chain.verify()) == ("inserted", 5)


async def test_replaced_rows_with_recomputed_hashes() -> None:
    chain = MemoryChain.sealed(8)
    forged = dict(chain.rows[1], actor="intruder", prev_hash=b"\x07" * 32)
    forged["hash"] = link_hash(forged["prev_hash"], canonical_record(forged))
    chain.rows[1] = forged
    report = await chain.verify()
    assert _kind_at(report) == ("inserted", 1)
    assert report.first_problem is not None
    assert "the genesis" in report.first_problem.detail

    chain = MemoryChain.sealed(8)
    forged = dict(chain.rows[4], actor="intruder")
    forged["hash"] = link_hash(forged["prev_hash"], canonical_record(forged))
    chain.rows[4] = forged
    report = await chain.verify()
    assert _kind_at(report) == ("inserted", 4)
    assert report.first_problem is not None
    assert "replaced" in report.first_problem.detail


async def test_row_beyond_the_head() -> None:
    chain = MemoryChain.sealed(8)
    chain.head = (7, chain.rows[7]["hash"])
    assert _kind_at(await chain.verify()) == ("inserted", 8)


async def test_head_that_disagrees() -> None:
    chain = MemoryChain.sealed(8)
    chain.head = (8, b"\x09" * 32)
    assert _kind_at(await chain.verify()) == ("head_mismatch", 8)


async def test_checkpoints_forged_mismatched_and_beyond_the_end() -> None:
    chain = MemoryChain.sealed(12, checkpoint_every=4)
    chain.checkpoints[8]["signature"] = bytes(64)
    assert _kind_at(await chain.verify()) == ("forged_checkpoint", 8)

    chain = MemoryChain.sealed(12, checkpoint_every=4)
    chain.sign_checkpoint(8, b"\x05" * 32)
    assert _kind_at(await chain.verify()) == ("checkpoint_mismatch", 8)

    chain = MemoryChain.sealed(12, checkpoint_every=4)
    chain.sign_checkpoint(20, b"\x05" * 32)
    assert _kind_at(await chain.verify()) == ("checkpoint_mismatch", 20)


async def test_anchor() -> None:
    chain = MemoryChain.sealed(20, checkpoint_every=5)
    chain.cut(7)
    report = await chain.verify()
    assert report.ok
    assert (report.checked, report.checkpoints_before_anchor, report.checkpoints_verified) == (
        13,
        1,
        3,
    )

    chain.rows[3] = dict(chain.rows[8], chain_position=3)
    assert _kind_at(await chain.verify()) == ("inserted", 3)
    del chain.rows[3]

    assert chain.anchor is not None
    chain.anchor["position"] = 9
    assert _kind_at(await chain.verify()) == ("forged_anchor", 9)
