"""Retention per action class cuts a prefix of the chain, honours legal holds, and leaves a
chain that still verifies from its signed anchor."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from strongroom.audit.retention import apply_retention, parse_policies
from strongroom.audit.verify import verify_chain
from tests.integration.chain.conftest import Chain

NOW = datetime(2026, 6, 1, tzinfo=UTC)
POLICIES = {"access": 30, "reveal": 365, "change": 0, "privacy": 3650, "security": 90}


async def add_at(chain: Chain, days_ago: int, action: str, tenant: str, **extra: object) -> None:
    await chain.add(
        1, action=action, tenant_id=tenant, occurred_at=NOW - timedelta(days=days_ago), **extra
    )


async def tenant(chain: Chain) -> str:
    tenant_id = uuid.uuid4()
    await chain.connection.execute(
        "INSERT INTO tenants (id, name, purposes) VALUES ($1, $2, '{support}')",
        tenant_id,
        "t" + tenant_id.hex[:12],
    )
    return str(tenant_id)


async def test_cuts_through_the_last_expired_event_before_the_first_kept(chain: Chain) -> None:
    t = await tenant(chain)
    await add_at(chain, 100, "record.read", t)  # 1 expired (access 30)
    await add_at(chain, 95, "auth.denied", t)  # 2 expired (security 90)
    await add_at(chain, 60, "record.reveal", t)  # 3 kept (reveal 365) -> cut through 2
    await add_at(chain, 50, "record.read", t)  # 4 expired, but behind 3: waits
    await chain.seal()

    dry = await apply_retention(
        chain.connection, POLICIES, chain.signer, chain.keys, now=NOW, dry_run=True
    )
    assert (dry.cut_through, dry.removed, dry.dry_run) == (2, 2, True)
    assert await chain.count() == 4

    done = await apply_retention(chain.connection, POLICIES, chain.signer, chain.keys, now=NOW)
    assert (done.cut_through, done.removed, done.first_kept_position) == (2, 2, 3)
    positions = [
        r["position"]
        for r in await chain.connection.fetch(
            "SELECT c.position FROM audit_chain c JOIN audit_events e ON e.seq = c.event_seq "
            "ORDER BY c.position"
        )
    ]
    assert positions == [3, 4]
    retention_events = await chain.connection.fetchval(
        "SELECT count(*) FROM audit_events WHERE action = 'audit.retention'"
    )
    assert retention_events == 1
    await chain.seal()
    report = await verify_chain(chain.connection, chain.keys)
    assert report.ok, report.to_json()


async def test_forever_classes_and_unsealed_events_stop_the_cut(chain: Chain) -> None:
    t = await tenant(chain)
    await add_at(chain, 4000, "record.create", t)  # change = 0 days: kept forever
    await add_at(chain, 4000, "record.read", t)
    await chain.seal()
    result = await apply_retention(chain.connection, POLICIES, chain.signer, chain.keys, now=NOW)
    assert result.removed == 0
    assert result.cut_through is None
    # Unsealed events are never touched (the trigger forbids it, and the cut stops at the head).
    await add_at(chain, 4000, "record.read", t)
    again = await apply_retention(chain.connection, POLICIES, chain.signer, chain.keys, now=NOW)
    assert again.removed == 0


async def test_legal_holds_keep_a_tenant_or_a_subject(chain: Chain) -> None:
    held, free = await tenant(chain), await tenant(chain)
    subject = b"s" * 32
    await add_at(chain, 100, "record.read", free)  # 1
    await add_at(chain, 100, "record.read", held, subject_ref=subject)  # 2 (subject held)
    await add_at(chain, 100, "record.read", free)  # 3
    await chain.seal()
    hold_id = uuid.uuid4()
    await chain.connection.execute(
        "INSERT INTO legal_holds (id, tenant_id, subject_ref, reason, created_by) "
        "VALUES ($1, $2::uuid, $3, 'litigation', 'k')",
        hold_id,
        held,
        subject,
    )
    result = await apply_retention(chain.connection, POLICIES, chain.signer, chain.keys, now=NOW)
    assert (result.cut_through, result.first_kept_position) == (1, 2)

    await chain.connection.execute(
        "UPDATE legal_holds SET released_at = now() WHERE id = $1", hold_id
    )
    await chain.connection.execute(
        "INSERT INTO legal_holds (id, tenant_id, subject_ref, reason, created_by) "
        "VALUES ($1, $2::uuid, NULL, 'regulator', 'k')",
        uuid.uuid4(),
        held,
    )
    still = await apply_retention(chain.connection, POLICIES, chain.signer, chain.keys, now=NOW)
    assert still.removed == 0  # the whole tenant is held now
    await chain.connection.execute("UPDATE legal_holds SET released_at = now()")
    last = await apply_retention(chain.connection, POLICIES, chain.signer, chain.keys, now=NOW)
    assert last.cut_through == 3
    await chain.seal()
    assert (await verify_chain(chain.connection, chain.keys)).ok


def test_policies_parse_over_the_defaults() -> None:
    policies = parse_policies("access=7, reveal=0")
    assert policies["access"] == 7
    assert policies["reveal"] == 0
    assert policies["change"] > 0
    for bad in ("access", "everything=3", "access=-1", "access=x"):
        with pytest.raises(ValueError, match="class=days"):
            parse_policies(bad)
