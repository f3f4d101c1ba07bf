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
from tests.integration.chain.conftest import Chain

# Small pages, so that problems and checkpoints fall on page boundaries too.
PAGE = 4


async def test_sealed_chain_verifies(chain: Chain) -> None:
    events = await chain.add(25)
    assert await chain.seal(batch_size=10) == 25

    rows = await chain.connection.fetch(
        "SELECT id, chain_position, prev_hash, hash FROM audit_events ORDER BY seq"
    )
    assert [row["chain_position"] for row in rows] == list(range(1, 26))
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
    rows = await chain.connection.fetch(
        f"SELECT {', '.join(COLUMNS)}, prev_hash, hash FROM audit_events ORDER BY chain_position"
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


async def test_deleted_event(chain: Chain) -> None:
    await chain.add(20)
    await chain.seal()
    await chain.connection.execute("DELETE FROM audit_events WHERE chain_position = 9")

    problem = (await verify_chain(chain.connection, chain.keys, page_size=PAGE)).first_problem
    assert problem is not None
    assert (problem.kind, problem.position, problem.event_id) == ("missing", 9, None)


async def test_deleted_tail(chain: Chain) -> None:
    await chain.add(20)
    await chain.seal()
    await chain.connection.execute("DELETE FROM audit_events WHERE chain_position > 17")

    problem = (await verify_chain(chain.connection, chain.keys, page_size=PAGE)).first_problem
    assert problem is not None
    assert (problem.kind, problem.position) == ("missing", 18)


async def test_forged_event_with_made_up_position(chain: Chain) -> None:
    await chain.add(12)
    await chain.seal()
    [forged] = await chain.add(1)
    await chain.tamper(
        "UPDATE audit_events SET chain_position = 13, prev_hash = $1, hash = $2 WHERE id = $3",
        os.urandom(32),
        os.urandom(32),
        forged.id,
    )

    problem = (await verify_chain(chain.connection, chain.keys, page_size=PAGE)).first_problem
    assert problem is not None
    assert (problem.kind, problem.position, problem.event_id) == ("inserted", 13, forged.id)


async def test_forged_event_that_links_correctly_beyond_the_head(chain: Chain) -> None:
    await chain.add(12)
    await chain.seal()
    head = bytes(
        await chain.connection.fetchval("SELECT hash FROM audit_events WHERE chain_position = 12")
    )
    [forged] = await chain.add(1)
    row = await chain.connection.fetchrow(
        f"SELECT {', '.join(COLUMNS)} FROM audit_events WHERE id = $1", forged.id
    )
    await chain.tamper(
        "UPDATE audit_events SET chain_position = 13, prev_hash = $1, hash = $2 WHERE id = $3",
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
        "SELECT id, prev_hash FROM audit_events WHERE chain_position = 6"
    )
    assert original is not None
    await chain.connection.execute("DELETE FROM audit_events WHERE id = $1", original["id"])
    [forged] = await chain.add(1, actor="intruder")
    row = await chain.connection.fetchrow(
        f"SELECT {', '.join(COLUMNS)} FROM audit_events WHERE id = $1", forged.id
    )
    prev = bytes(original["prev_hash"])
    await chain.tamper(
        "UPDATE audit_events SET chain_position = 6, prev_hash = $1, hash = $2 WHERE id = $3",
        prev,
        link_hash(prev, canonical_record(row)),
        forged.id,
    )

    problem = (await verify_chain(chain.connection, chain.keys, page_size=PAGE)).first_problem
    assert problem is not None
    assert (problem.kind, problem.position, problem.event_id) == ("inserted", 6, forged.id)


async def _swap_content(chain: Chain, first: int, second: int) -> None:
    """Exchange every event column (id included) of two sealed rows, keeping their positions
    and chain links."""
    columns = ", ".join(COLUMNS)
    a = await chain.connection.fetchrow(
        f"SELECT {columns} FROM audit_events WHERE chain_position = $1", first
    )
    b = await chain.connection.fetchrow(
        f"SELECT {columns} FROM audit_events WHERE chain_position = $1", second
    )
    sets = ", ".join(f"{column} = ${i}" for i, column in enumerate(COLUMNS, start=2))
    update = f"UPDATE audit_events SET {sets} WHERE chain_position = $1"
    await chain.tamper(
        "UPDATE audit_events SET id = gen_random_uuid() WHERE chain_position = $1", first
    )
    assert a is not None
    assert b is not None
    await chain.tamper(update, second, *a.values())
    await chain.tamper(update, first, *b.values())


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
    await chain.tamper("UPDATE audit_events SET chain_position = 1000000 WHERE chain_position = 8")
    await chain.tamper("UPDATE audit_events SET chain_position = 8 WHERE chain_position = 11")
    await chain.tamper("UPDATE audit_events SET chain_position = 11 WHERE chain_position = 1000000")

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
        f"UPDATE audit_events SET {sets} WHERE chain_position = $1", position, *changes.values()
    )
    rows = await chain.connection.fetch(
        f"SELECT chain_position, prev_hash, {', '.join(COLUMNS)} FROM audit_events "
        "WHERE chain_position >= $1 ORDER BY chain_position",
        position,
    )
    previous = bytes(rows[0]["prev_hash"])
    for row in rows:
        digest = link_hash(previous, canonical_record(row))
        await chain.tamper(
            "UPDATE audit_events SET prev_hash = $1, hash = $2 WHERE chain_position = $3",
            previous,
            digest,
            row["chain_position"],
        )
        previous = digest
    await chain.tamper("UPDATE audit_chain_head SET hash = $1", previous)


async def test_events_are_immutable_and_unsealed_ones_cannot_be_deleted(chain: Chain) -> None:
    await chain.add(2)
    await chain.seal()
    [unsealed] = await chain.add(1)
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="immutable"):
        await chain.connection.execute(
            "UPDATE audit_events SET outcome = 'failure' WHERE chain_position = 1"
        )
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="immutable"):
        await chain.connection.execute(
            "UPDATE audit_events SET purpose = 'x' WHERE id = $1", unsealed.id
        )
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="immutable"):
        await chain.connection.execute(
            "UPDATE audit_events SET chain_position = 9 WHERE chain_position = 2"
        )
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="not sealed"):
        await chain.connection.execute("DELETE FROM audit_events WHERE id = $1", unsealed.id)
    assert (await verify_chain(chain.connection, chain.keys)).ok
