"""The sealer: one leader, every committed event sealed exactly once, in seal order."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from strongroom.audit.chain import read_head
from strongroom.audit.events import AuditEvent
from strongroom.audit.sealer import _UNSEALED, AuditSealer, seal_batch, seal_batch_from
from strongroom.audit.store import insert_event
from strongroom.audit.verify import chain_status, verify_chain
from tests.integration.chain.conftest import Chain, until
from tests.integration.plans import plan_nodes


async def _head_at_least(chain: Chain, position: int) -> bool:
    return (await read_head(chain.connection)).position >= position


async def _positions(chain: Chain) -> dict[uuid.UUID, int]:
    rows = await chain.connection.fetch(
        "SELECT e.id, c.position FROM audit_chain c JOIN audit_events e ON e.seq = c.event_seq"
    )
    return {row["id"]: row["position"] for row in rows}


async def test_two_sealers_one_leader(chain: Chain) -> None:
    first, second = chain.sealer(batch_size=7), chain.sealer(batch_size=7)
    try:
        await chain.add(5)
        await asyncio.gather(first.step(), second.step())
        assert sorted([first.leading, second.leading]) == [False, True]
        leader, follower = (first, second) if first.leading else (second, first)

        async def produce() -> None:
            for _ in range(20):
                await chain.add(3)
                await asyncio.sleep(0)

        async def seal(sealer: AuditSealer) -> None:
            for _ in range(20):
                await sealer.step()
                await asyncio.sleep(0)

        await asyncio.gather(produce(), seal(first), seal(second))
        assert await leader.step() >= 0
        assert not follower.leading

        positions = await _positions(chain)
        assert len(positions) == 65
        assert sorted(positions.values()) == list(range(1, 66))
        assert follower.sealed_total == 0
        assert leader.sealed_total == 65
        assert (await verify_chain(chain.connection, chain.keys)).ok

        # The leader goes away: the other one takes over and continues the same chain.
        await leader.stop()
        await chain.add(4)
        assert await follower.step() == 4
        assert follower.status()["leading"] is True
        assert sorted((await _positions(chain)).values()) == list(range(1, 70))
        assert (await verify_chain(chain.connection, chain.keys)).ok
    finally:
        await first.stop()
        await second.stop()


async def test_concurrent_batches_never_seal_twice(chain: Chain) -> None:
    """Even without the leader lock (a split brain), batches serialise on the chain head."""
    await chain.add(200)
    others = [await asyncpg.connect(chain.url) for _ in range(4)]
    try:

        async def drain(connection: asyncpg.Connection) -> int:
            total = 0
            while count := await seal_batch(connection, 9):
                total += count
            return total

        counts = await asyncio.gather(*(drain(connection) for connection in others))
    finally:
        for connection in others:
            await connection.close()
    assert sum(counts) == 200
    assert sorted((await _positions(chain)).values()) == list(range(1, 201))
    assert (await read_head(chain.connection)).position == 200
    assert (await verify_chain(chain.connection, chain.keys)).ok


async def test_events_committed_out_of_seq_order(chain: Chain) -> None:
    slow = await asyncpg.connect(chain.url)
    try:
        early = AuditEvent(action="record.update", outcome="success", tenant_id=None, actor="a")
        late = AuditEvent(action="record.read", outcome="success", tenant_id=None, actor="b")
        transaction = slow.transaction()
        await transaction.start()
        await insert_event(slow, early)  # takes the lower seq, commits last
        await insert_event(chain.connection, late)
        seqs = {
            row["id"]: row["seq"] for row in await slow.fetch("SELECT id, seq FROM audit_events")
        }
        assert seqs[early.id] < seqs[late.id]

        assert await chain.seal() == 1
        assert await _positions(chain) == {late.id: 1}
        await transaction.commit()
    finally:
        await slow.close()

    assert await chain.seal() == 1
    assert await chain.seal() == 0
    assert await _positions(chain) == {late.id: 1, early.id: 2}
    report = await verify_chain(chain.connection, chain.keys)
    assert report.ok
    assert report.checked == 2


async def test_background_task_seals_and_checkpoints_on_stop(chain: Chain) -> None:
    sealer = chain.sealer(interval=0.05, checkpoint_every=1_000, checkpoint_interval=3_600)
    await sealer.start()
    try:
        await until(lambda: sealer.leading)
        await chain.add(3)
        assert await chain.seal() == 0  # a second process, held off by the running leader
        await until(lambda: _head_at_least(chain, 3))
        await chain.add(2)
    finally:
        await sealer.stop()
    assert sealer.status()["leading"] is False
    assert (await read_head(chain.connection)).position == 5
    checkpoints = [
        row["position"]
        for row in await chain.connection.fetch(
            "SELECT position FROM audit_checkpoints ORDER BY position"
        )
    ]
    assert checkpoints[-1] == 5  # the last round on stop signs the head
    report = await verify_chain(chain.connection, chain.keys)
    assert report.ok
    assert report.checkpoints_verified == len(checkpoints)


async def test_sealer_recovers_when_its_connection_is_killed(chain: Chain) -> None:
    sealer = chain.sealer(interval=0.05, retry_interval=0.05)
    await sealer.start()
    try:
        await chain.add(2)
        await until(lambda: sealer.leading)
        await chain.connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'strongroom-sealer' AND datname = current_database()"
        )
        await chain.add(3)
        await until(lambda: _head_at_least(chain, 5))
    finally:
        await sealer.stop()
    assert (await verify_chain(chain.connection, chain.keys)).ok


async def test_chain_status_for_reports(chain: Chain) -> None:
    status = await chain_status(chain.connection)
    assert status["head_position"] == 0
    assert status["last_checkpoint"] is None
    await chain.add(3)
    await chain.seal()
    await chain.add(2)
    status = await chain_status(chain.connection)
    assert status["head_position"] == 3
    assert status["unsealed"] == 2
    assert status["last_checkpoint"] == {
        "position": 3,
        "signed_at": status["last_checkpoint"]["signed_at"],  # type: ignore[index]
        "key_id": chain.signer.key_id,
    }
    assert status["anchor"] is None


async def test_a_backlog_drains_in_bounded_rounds(chain: Chain) -> None:
    await chain.add(95)
    sealer = chain.sealer(batch_size=4, checkpoint_every=1)
    try:
        assert await sealer.step() == 40  # ten batches, then a checkpoint
        assert await sealer.step() == 40
        assert await sealer.step() == 15
    finally:
        await sealer.stop()
    checkpoints = await chain.connection.fetch("SELECT position FROM audit_checkpoints")
    assert sorted(row["position"] for row in checkpoints) == [40, 80, 95]
    assert (await verify_chain(chain.connection, chain.keys)).ok


async def test_a_backlog_drains_reading_about_what_each_batch_seals(chain: Chain) -> None:
    # A backlog of one transaction's events (a bulk load, a restore, a sealer that was down) on
    # a table PostgreSQL never analyzed: each batch must start where the last one stopped,
    # through the (xact, seq) index, instead of reading the sealed part of the backlog again.
    # (Whether the head's cursor itself can follow depends on transactions elsewhere on the
    # server; the sealer's resume point does not.)
    backlog = 30_000
    await chain.connection.execute(
        "INSERT INTO audit_events (id, occurred_at, tenant_id, action, outcome) "
        "SELECT gen_random_uuid(), now(), gen_random_uuid(), 'record.read', 'success' "
        f"FROM generate_series(1, {backlog})"
    )
    sealer = chain.sealer(batch_size=1_000)
    try:
        connection = await sealer._connect()
        assert await connection.fetchval("SHOW max_parallel_workers_per_gather") == "0"
        sealed, resume = await seal_batch_from(connection, 1_000, None)
        assert sealed == 1_000
        sealed, resume = await seal_batch_from(connection, 1_000, resume)
        assert sealed == 1_000
        assert resume is not None
        explained = await connection.fetchval(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {_UNSEALED}", *resume, 1_000
        )
        nodes = plan_nodes(explained)
        kinds = [node["Node Type"] for node in nodes]
        assert "Seq Scan" not in kinds, kinds
        assert "Gather" not in kinds, kinds
        [scan] = [node for node in nodes if node.get("Relation Name") == "audit_events"]
        assert scan.get("Index Name") == "audit_events_xact_seq", scan
        assert scan["Actual Rows"] <= 1_000, explained  # not the 2 000 sealed before it
        sealed = 2_000
        while (step := await sealer.step()) > 0:
            sealed += step
        assert sealed == backlog
    finally:
        await sealer.stop()
    assert (await read_head(chain.connection)).position == backlog


async def test_resumed_batches_leave_an_older_transactions_events_for_the_cursor(
    chain: Chain,
) -> None:
    # A transaction that began before a backlog and commits while it drains: the batches that
    # resume past the cursor cannot see its events; a batch from the cursor seals them.
    slow = await asyncpg.connect(chain.url)
    try:
        transaction = slow.transaction()
        await transaction.start()
        straggler = AuditEvent(
            action="record.update", outcome="success", tenant_id=None, actor="slow"
        )
        await insert_event(slow, straggler)
        await chain.add(25)
        sealer = chain.sealer(batch_size=10)
        try:
            assert await sealer.step() == 25  # 10, 10, then 5: back to the cursor
            await transaction.commit()
            assert await sealer.step() == 1
            assert await sealer.step() == 0
        finally:
            await sealer.stop()
    finally:
        await slow.close()
    positions = await _positions(chain)
    assert len(positions) == 26
    assert positions[straggler.id] == 26
    report = await verify_chain(chain.connection, chain.keys)
    assert report.ok, report.first_problem
    assert report.checked == 26
