"""Retention cuts with a signed anchor, and checkpoint exports kept outside the database."""

from __future__ import annotations

import io
import os

import pytest

from strongroom.audit.anchor import cut_chain
from strongroom.audit.chain import read_anchor
from strongroom.audit.checkpoints import (
    export_checkpoints,
    parse_checkpoint_export,
    write_checkpoint_export,
)
from strongroom.audit.signing import Ed25519Signer
from strongroom.audit.verify import ChainBroken, verify_chain, verify_checkpoint_export
from tests.integration.chain.conftest import AT_POSITION, Chain
from tests.integration.chain.test_seal_and_verify import _rewrite_from

_DELETE_THROUGH_8 = (
    "DELETE FROM audit_events e USING audit_chain c WHERE e.seq = c.event_seq AND c.position <= 8"
)


async def _sealed(chain: Chain, count: int, every: int = 10) -> None:
    """Seal ``count`` events in rounds of ``every``, each round ending with a checkpoint."""
    for start in range(0, count, every):
        await chain.add(min(every, count - start))
        await chain.seal(checkpoint_every=every)


async def test_cut_head_then_verify_from_the_anchor(chain: Chain) -> None:
    await _sealed(chain, 30)
    last_cut = await chain.connection.fetchval("SELECT hash FROM audit_chain WHERE position = 12")

    anchor = await cut_chain(chain.connection, 12, chain.signer, chain.keys, page_size=4)
    assert (anchor.position, anchor.hash) == (12, bytes(last_cut))
    assert await chain.count() == 18
    assert await read_anchor(chain.connection) == anchor

    report = await verify_chain(chain.connection, chain.keys, page_size=4)
    assert report.ok, report.first_problem
    assert report.checked == 18
    assert report.anchor == anchor
    assert report.checkpoints_before_anchor == 1  # the one at 10: its signature only
    assert report.checkpoints_verified == 2  # 20 and 30
    assert report.as_dict()["anchor"] == anchor.as_dict()

    # Cut again, up to the head: an empty chain that still verifies and still grows.
    await cut_chain(chain.connection, 30, chain.signer, chain.keys)
    assert await chain.count() == 0
    assert (await verify_chain(chain.connection, chain.keys)).ok
    await _sealed(chain, 5)
    report = await verify_chain(chain.connection, chain.keys)
    assert report.ok
    assert (report.checked, report.last_position) == (5, 35)


async def test_deleting_past_the_anchor_is_caught(chain: Chain) -> None:
    await _sealed(chain, 20)
    await cut_chain(chain.connection, 5, chain.signer, chain.keys)
    await chain.connection.execute(_DELETE_THROUGH_8)

    problem = (await verify_chain(chain.connection, chain.keys)).first_problem
    assert problem is not None
    assert (problem.kind, problem.position) == ("missing", 6)


async def test_moving_the_anchor_without_the_key_is_caught(chain: Chain) -> None:
    await _sealed(chain, 20)
    await cut_chain(chain.connection, 5, chain.signer, chain.keys)
    hash_at_8 = await chain.connection.fetchval("SELECT hash FROM audit_chain WHERE position = 8")
    await chain.connection.execute(_DELETE_THROUGH_8)
    await chain.tamper("UPDATE audit_anchor SET position = 8, hash = $1", hash_at_8)

    problem = (await verify_chain(chain.connection, chain.keys)).first_problem
    assert problem is not None
    assert (problem.kind, problem.position) == ("forged_anchor", 8)


async def test_cut_refuses_a_broken_segment(chain: Chain) -> None:
    await _sealed(chain, 20)
    await chain.tamper(f"UPDATE audit_events SET actor = 'x' WHERE {AT_POSITION}", 3)
    with pytest.raises(ChainBroken) as raised:
        await cut_chain(chain.connection, 10, chain.signer, chain.keys)
    assert (raised.value.problem.kind, raised.value.problem.position) == ("changed", 3)
    assert await chain.count() == 20
    assert await read_anchor(chain.connection) is None
    with pytest.raises(ValueError, match="not sealed yet"):
        await cut_chain(chain.connection, 21, chain.signer, chain.keys)


async def test_export_round_trip(chain: Chain) -> None:
    await _sealed(chain, 30)
    exported = await export_checkpoints(chain.connection)
    assert [item["position"] for item in exported] == [10, 20, 30]
    assert exported[0]["key_id"] == chain.signer.key_id
    assert exported[0]["public_key"] == chain.signer.public_key_pem()

    out = io.BytesIO()
    assert await write_checkpoint_export(chain.connection, out) == 3
    parsed = parse_checkpoint_export(out.getvalue().splitlines())
    assert [checkpoint.as_dict() for checkpoint in parsed] == exported

    report = await verify_checkpoint_export(chain.connection, parsed)
    assert report.ok, report.first_problem
    assert report.checkpoints_verified == 6  # each checkpoint twice: database and export


async def test_export_catches_a_rewrite_of_events_and_checkpoints(chain: Chain) -> None:
    await _sealed(chain, 30)
    out = io.BytesIO()
    await write_checkpoint_export(chain.connection, out)
    kept_elsewhere = parse_checkpoint_export(out.getvalue().splitlines())

    # The intruder rewrites an event and every hash after it, and removes the checkpoints that
    # would give it away (it cannot sign new ones): the database alone now looks consistent.
    await _rewrite_from(chain, 14, actor="intruder")
    await chain.tamper("DELETE FROM audit_checkpoints WHERE position > 10")
    assert (await verify_chain(chain.connection, chain.keys)).ok

    problem = (await verify_checkpoint_export(chain.connection, kept_elsewhere)).first_problem
    assert problem is not None
    assert (problem.kind, problem.position) == ("checkpoint_mismatch", 20)


async def test_export_notices_deleted_checkpoints(chain: Chain) -> None:
    await _sealed(chain, 30)
    kept_elsewhere = parse_checkpoint_export(await _export_lines(chain))
    await chain.tamper("DELETE FROM audit_checkpoints WHERE position = 20")
    problem = (await verify_checkpoint_export(chain.connection, kept_elsewhere)).first_problem
    assert problem is not None
    assert (problem.kind, problem.position) == ("checkpoint_missing", 20)


async def test_export_with_a_forged_line(chain: Chain) -> None:
    await _sealed(chain, 20)
    lines = await _export_lines(chain)
    intruder = Ed25519Signer.from_master_key(os.urandom(32))
    # Trusting only the operator's keys, a checkpoint signed by someone else is forged.
    forged = parse_checkpoint_export(lines)
    report = await verify_checkpoint_export(
        chain.connection, forged, {intruder.key_id: intruder.public_key}
    )
    assert report.first_problem is not None
    assert (report.first_problem.kind, report.first_problem.position) == ("forged_checkpoint", 10)


async def _export_lines(chain: Chain) -> list[bytes]:
    out = io.BytesIO()
    await write_checkpoint_export(chain.connection, out)
    return out.getvalue().splitlines()
