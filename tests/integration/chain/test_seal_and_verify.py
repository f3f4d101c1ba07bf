"""Sealing committed events and verifying the chain against tampering, on real PostgreSQL."""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime

import asyncpg
import pytest

from strongroom.audit.chain import GENESIS_HASH, canonical_record, link_hash
from strongroom.audit.events import COLUMNS
from strongroom.audit.signing import Ed25519Signer
from strongroom.audit.verify import verify_chain
from tests.integration.chain.conftest import AT_POSITION, Chain

# Small pages, so that problems and checkpoints fall on page boundaries too.
PAGE = 4
LINKED = "audit_chain c JOIN audit_events e ON e.seq = c.event_seq"
# Values: position, prev_hash, hash, event id.
_LINK_OF_EVENT = (
    "(position, event_seq, prev_hash, hash) SELECT $1, seq, $2, $3 FROM audit_events WHERE id = $4"
)


async def test_sealed_chain_verifies(chain: Chain) -> None:
    events = await chain.add(25)
    assert await chain.seal(batch_size=10) == 25

    rows = await chain.connection.fetch(
        f"SELECT e.id, c.position, c.prev_hash, c.hash FROM {LINKED} ORDER BY e.seq"
    )
    assert [row["position"] for row in rows] == list(range(1, 26))
    assert [row["id"] for row in rows] == [event.id for event in events]
    assert bytes(rows[0]["prev_hash"]) == GENESIS_HASH
    for earlier, later in itertools.pairwise(rows):
        assert bytes(later["prev_hash"]) == bytes(earlier["hash"])

    report = await verify_chain(chain.connection, chain.keys, page_size=PAGE)
    assert report.ok, report.first_problem
    assert report.first_problem is None
    assert report.checked == 25
    assert report.head_position == report.last_position == 25
    assert report.unsealed == 0
    assert report.checkpoints_verified == 1  # one round, one checkpoint at its end
    assert report.to_json().startswith('{"ok":true,')


async def test_hashes_are_the_documented_formula(chain: Chain) -> None:
    await chain.add(3)
    await chain.seal()
    columns = ", ".join(f"e.{column}" for column in COLUMNS)
    rows = await chain.connection.fetch(
        f"SELECT {columns}, c.prev_hash, c.hash FROM {LINKED} ORDER BY c.position"
    )
    previous = GENESIS_HASH
    for row in rows:
        assert bytes(row["hash"]) == link_hash(previous, canonical_record(row))
        previous = bytes(row["hash"])


async def test_verify_counts_unsealed_events(chain: Chain) -> None:
    await chain.add(4)
    await chain.seal()
    await chain.add(3)
    report = await verify_chain(chain.connection, chain.keys)
    assert report.ok
    assert report.checked == 4
    assert report.unsealed == 3
    assert report.oldest_unsealed_at is not None


async def test_empty_chain_verifies(chain: Chain) -> None:
    report = await verify_chain(chain.connection, chain.keys)
    assert report.ok
    assert report.checked == 0
    assert report.head_position == 0


async def test_changed_event(chain: Chain) -> None:
    await chain.add(20)
    await chain.seal()
    target = await chain.event_id(7)
    await chain.tamper("UPDATE audit_events SET actor = 'someone-else' WHERE id = $1", target)

    report = await verify_chain(chain.connection, chain.keys, page_size=PAGE)
    assert not report.ok
    problem = report.first_problem
    assert problem is not None
    assert (problem.kind, problem.position, problem.event_id) == ("changed", 7, target)
    assert report.checked == 6


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("fields", ["email"]),
        ("purpose", None),
        ("occurred_at", datetime(2025, 1, 1, 0, 0, 0, 1, tzinfo=UTC)),
        ("subject_ref", b"\x00" * 32),
        ("client", ""),
    ],
)
async def test_every_column_is_covered(chain: Chain, column: str, value: object) -> None:
    await chain.add(5)
    await chain.seal()
    target = await chain.event_id(3)
    await chain.tamper(f"UPDATE audit_events SET {column} = $1 WHERE id = $2", value, target)

    problem = (await verify_chain(chain.connection, chain.keys)).first_problem
    assert problem is not None
    assert (problem.kind, problem.position) == ("changed", 3)


@pytest.mark.parametrize("what", ["event", "link", "both"])
async def test_deleted_event(chain: Chain, what: str) -> None:
    await chain.add(20)
    await chain.seal()
    if what in ("event", "both"):
        await chain.connection.execute(f"DELETE FROM audit_events WHERE {AT_POSITION}", 9)
    if what in ("link", "both"):
        await chain.tamper("DELETE FROM audit_chain WHERE position = 9")

    problem = (await verify_chain(chain.connection, chain.keys, page_size=PAGE)).first_problem
    assert problem is not None
    assert (problem.kind, problem.position, problem.event_id) == ("missing", 9, None)


@pytest.mark.parametrize(
    "delete",
    [
        "DELETE FROM audit_events e USING audit_chain c "
        "WHERE e.seq = c.event_seq AND c.position > 17",
        "DELETE FROM audit_chain WHERE position > 17",
    ],
)
async def test_deleted_tail(chain: Chain, delete: str) -> None:
    await chain.add(20)
    await chain.seal()
    await chain.tamper(delete)

    problem = (await verify_chain(chain.connection, chain.keys, page_size=PAGE)).first_problem
    assert problem is not None
    assert (problem.kind, problem.position) == ("missing", 18)


async def test_forged_event_with_made_up_position(chain: Chain) -> None:
    await chain.add(12)
    await chain.seal()
    [forged] = await chain.add(1)
    await chain.tamper(
        f"INSERT INTO audit_chain {_LINK_OF_EVENT}", 13, os.urandom(32), os.urandom(32), forged.id
    )

    problem = (await verify_chain(chain.connection, chain.keys, page_size=PAGE)).first_problem
    assert problem is not None
    assert (problem.kind, problem.position, problem.event_id) == ("inserted", 13, forged.id)


async def test_forged_event_that_links_correctly_beyond_the_head(chain: Chain) -> None:
    await chain.add(12)
    await chain.seal()
    head = bytes(
        await chain.connection.fetchval("SELECT hash FROM audit_chain WHERE position = 12")
    )
    [forged] = await chain.add(1)
    row = await chain.connection.fetchrow(
        f"SELECT {', '.join(COLUMNS)} FROM audit_events WHERE id = $1", forged.id
    )
    await chain.tamper(
        f"INSERT INTO audit_chain {_LINK_OF_EVENT}",
        13,
        head,
        link_hash(head, canonical_record(row)),
        forged.id,
    )

    problem = (await verify_chain(chain.connection, chain.keys)).first_problem
    assert problem is not None
    assert (problem.kind, problem.position, problem.event_id) == ("inserted", 13, forged.id)


async def test_replaced_event_with_recomputed_hash(chain: Chain) -> None:
    await chain.add(12)
    await chain.seal()
    original = await chain.connection.fetchrow(
        f"SELECT e.id, c.prev_hash FROM {LINKED} WHERE c.position = 6"
    )
    assert original is not None
    await chain.connection.execute("DELETE FROM audit_events WHERE id = $1", original["id"])
    [forged] = await chain.add(1, actor="intruder")
    row = await chain.connection.fetchrow(
        f"SELECT {', '.join(COLUMNS)} FROM audit_events WHERE id = $1", forged.id
    )
    prev = bytes(original["prev_hash"])
    await chain.tamper(
        "UPDATE audit_chain SET hash = $1, "
        "event_seq = (SELECT seq FROM audit_events WHERE id = $2) WHERE position = 6",
        link_hash(prev, canonical_record(row)),
        forged.id,
    )

    problem = (await verify_chain(chain.connection, chain.keys, page_size=PAGE)).first_problem
    assert problem is not None
    assert (problem.kind, problem.position, problem.event_id) == ("inserted", 6, forged.id)


async def _swap_content(chain: Chain, first: int, second: int) -> None:
    """Exchange the events of two links, each link keeping its position and hashes."""
    swap = "UPDATE audit_chain SET event_seq = $2 WHERE position = $1"
    seqs = await chain.connection.fetch(
        "SELECT position, event_seq FROM audit_chain WHERE position = ANY($1::bigint[])",
        [first, second],
    )
    seq = {row["position"]: row["event_seq"] for row in seqs}
    await chain.tamper(swap, first, -1)
    await chain.tamper(swap, second, seq[first])
    await chain.tamper(swap, first, seq[second])


@pytest.mark.parametrize(("first", "second"), [(5, 6), (4, 15)])
async def test_swapped_events(chain: Chain, first: int, second: int) -> None:
    await chain.add(20)
    await chain.seal()
    target = await chain.event_id(second)
    await _swap_content(chain, first, second)

    problem = (await verify_chain(chain.connection, chain.keys, page_size=PAGE)).first_problem
    assert problem is not None
    assert (problem.kind, problem.position, problem.event_id) == ("reordered", first, target)
    assert f"position {second}" in problem.detail


async def test_moved_event(chain: Chain) -> None:
    await chain.add(20)
    await chain.seal()
    target = await chain.event_id(8)
    # Positions exchanged, each row keeping its own links.
    await chain.tamper("UPDATE audit_chain SET position = 1000000 WHERE position = 8")
    await chain.tamper("UPDATE audit_chain SET position = 8 WHERE position = 11")
    await chain.tamper("UPDATE audit_chain SET position = 11 WHERE position = 1000000")

    problem = (await verify_chain(chain.connection, chain.keys, page_size=PAGE)).first_problem
    assert problem is not None
    assert (problem.kind, problem.position) == ("reordered", 8)
    assert problem.event_id != target  # the event now at 8 is the one sealed at 11
    assert "position 11" in problem.detail


async def test_forged_checkpoint_signature(chain: Chain) -> None:
    await chain.add(25)
    await chain.seal(batch_size=10)
    await chain.add(5)
    await chain.seal(checkpoint_interval=0)
    positions = [
        row["position"]
        for row in await chain.connection.fetch(
            "SELECT position FROM audit_checkpoints ORDER BY position"
        )
    ]
    assert positions == [25, 30]
    await chain.tamper(
        "UPDATE audit_checkpoints SET signature = $1 WHERE position = 25", os.urandom(64)
    )

    report = await verify_chain(chain.connection, chain.keys, page_size=PAGE)
    problem = report.first_problem
    assert problem is not None
    assert (problem.kind, problem.position) == ("forged_checkpoint", 25)
    assert report.checked == 24


async def test_checkpoint_signed_by_an_untrusted_key(chain: Chain) -> None:
    await chain.add(5)
    await chain.seal(checkpoint_interval=0)
    report = await verify_chain(
        chain.connection, {Ed25519Signer.from_master_key(os.urandom(32)).key_id: b"\x01" * 32}
    )
    assert report.first_problem is not None
    assert report.first_problem.kind == "forged_checkpoint"
    assert "not trusted" in report.first_problem.detail


async def test_rewritten_chain_is_caught_by_its_checkpoint(chain: Chain) -> None:
    await chain.add(10)
    await chain.seal()
    await _rewrite_from(chain, 4, actor="intruder")

    report = await verify_chain(chain.connection, chain.keys, page_size=PAGE)
    problem = report.first_problem
    assert problem is not None
    assert (problem.kind, problem.position) == ("checkpoint_mismatch", 10)


async def _rewrite_from(chain: Chain, position: int, **changes: str) -> None:
    """An intruder without the signing key changes an event and recomputes every hash after it
    (and the head), so the chain is consistent in itself."""
    sets = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=2))
    await chain.tamper(
        f"UPDATE audit_events SET {sets} WHERE {AT_POSITION}", position, *changes.values()
    )
    columns = ", ".join(f"e.{column}" for column in COLUMNS)
    rows = await chain.connection.fetch(
        f"SELECT c.position, c.prev_hash, {columns} FROM {LINKED} "
        "WHERE c.position >= $1 ORDER BY c.position",
        position,
    )
    previous = bytes(rows[0]["prev_hash"])
    for row in rows:
        digest = link_hash(previous, canonical_record(row))
        await chain.tamper(
            "UPDATE audit_chain SET prev_hash = $1, hash = $2 WHERE position = $3",
            previous,
            digest,
            row["position"],
        )
        previous = digest
    await chain.tamper("UPDATE audit_chain_head SET hash = $1", previous)


async def test_events_are_immutable_and_unsealed_ones_cannot_be_deleted(chain: Chain) -> None:
    await chain.add(2)
    await chain.seal()
    [unsealed] = await chain.add(1)
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="immutable"):
        await chain.connection.execute(
            f"UPDATE audit_events SET outcome = 'failure' WHERE {AT_POSITION}", 1
        )
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="immutable"):
        await chain.connection.execute(
            "UPDATE audit_events SET purpose = 'x' WHERE id = $1", unsealed.id
        )
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="cannot be changed"):
        await chain.connection.execute("UPDATE audit_chain SET position = 9 WHERE position = 2")
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="cannot be changed"):
        await chain.connection.execute(
            "UPDATE audit_chain SET hash = $1 WHERE position = 1", bytes(32)
        )
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="not sealed"):
        await chain.connection.execute("DELETE FROM audit_events WHERE id = $1", unsealed.id)
    assert (await verify_chain(chain.connection, chain.keys)).ok


async def test_an_event_written_around_the_sealer_is_caught(chain: Chain) -> None:
    """An event inserted with the id of a transaction the sealer has passed is never sealed;
    verification names it instead of counting it as waiting."""
    await chain.add(3)
    await chain.seal()
    await chain.add(1)
    await chain.seal()  # the horizon is now past the first transactions
    forged = await chain.connection.fetchval(
        "INSERT INTO audit_events (id, occurred_at, action, outcome, xact) "
        "VALUES (gen_random_uuid(), now(), 'record.read', 'success', '3') RETURNING id"
    )
    assert await chain.seal() == 0

    report = await verify_chain(chain.connection, chain.keys)
    assert report.unsealed == 0
    assert report.checked == 4
    problem = report.first_problem
    assert problem is not None
    assert (problem.kind, problem.position, problem.event_id) == ("inserted", None, forged)


async def test_an_event_forged_inside_a_sealed_transaction_is_caught(chain: Chain) -> None:
    """An event forged with the id of the transaction the cursor stopped in, and a seq before
    the cursor's, is behind the cursor too: reported, not left waiting."""
    await chain.add(4)
    assert await chain.seal() == 4
    last = await chain.connection.fetchrow(
        "SELECT xact, seq FROM audit_events ORDER BY seq DESC LIMIT 1"
    )
    assert last is not None
    # Where a batch that ended with this event, once its transaction had ended, leaves the cursor.
    await chain.connection.execute(
        "UPDATE audit_chain_head SET horizon = $1, horizon_seq = $2", last["xact"], last["seq"]
    )
    forged = await chain.connection.fetchval(
        "INSERT INTO audit_events (id, seq, occurred_at, action, outcome, xact) "
        "VALUES (gen_random_uuid(), 0, now(), 'record.read', 'success', $1) RETURNING id",
        last["xact"],
    )
    assert await chain.seal() == 0

    report = await verify_chain(chain.connection, chain.keys)
    assert report.unsealed == 0
    problem = report.first_problem
    assert problem is not None
    assert (problem.kind, problem.event_id) == ("inserted", forged)


async def test_sealing_appends_links_and_leaves_events_untouched(chain: Chain) -> None:
    """Sealing never updates an event: each keeps the one row version it was inserted as."""
    await chain.add(6)
    before = {
        row["id"]: row["ctid"]
        for row in await chain.connection.fetch("SELECT id, ctid FROM audit_events")
    }
    assert await chain.seal() == 6
    after = {
        row["id"]: row["ctid"]
        for row in await chain.connection.fetch("SELECT id, ctid FROM audit_events")
    }
    assert after == before
    assert await chain.connection.fetchval("SELECT count(*) FROM audit_chain") == 6
