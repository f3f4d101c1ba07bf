"""The audit search's plan on an analyzed trail shared by a large and a small tenant: it walks
the events backwards and stops once the page is full, instead of reading and sorting the
tenant's whole trail (which took over 100 ms per search under load, growing with the trail),
and for the small tenant it walks only that tenant's events (migrations 0007 and 0008)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from strongroom.audit.query import EventFilter, search
from tests.conftest import Databases
from tests.integration.plans import plan_nodes

LARGE, SMALL = 60_000, 300

_FILL = """
INSERT INTO audit_events (id, occurred_at, tenant_id, actor, action, resource, purpose, outcome)
SELECT gen_random_uuid(), now() - make_interval(secs => $2 - n), $1, 'key-' || (n % 7),
       CASE WHEN n % 50 = 0 THEN 'record.reveal' ELSE 'record.read' END,
       'customers/' || n, CASE WHEN n % 50 = 0 THEN 'support' END, 'success'
FROM generate_series(1, $2) AS n
"""


@pytest.fixture
async def trail(audit_db: Databases) -> AsyncIterator[tuple[asyncpg.Pool, str, str]]:
    """A large and a small tenant's events, the large one's mostly reads, then ANALYZE."""
    large, small = str(uuid.uuid4()), str(uuid.uuid4())
    pool = await asyncpg.create_pool(audit_db.data_url, min_size=1, max_size=2)
    assert pool is not None
    async with pool.acquire() as connection:
        await connection.execute(_FILL, uuid.UUID(large), LARGE)
        await connection.execute(_FILL, uuid.UUID(small), SMALL)
        await connection.execute("ANALYZE audit_events")
    yield pool, large, small
    await pool.close()


@pytest.mark.parametrize("size", ["large", "small"])
async def test_newest_first_search_walks_one_tenants_events_backwards(
    trail: tuple[asyncpg.Pool, str, str], size: str
) -> None:
    pool, large, small = trail
    tenant = large if size == "large" else small
    where = EventFilter(tenant, action="record.reveal", purpose="support")
    clause, arguments = where.where()
    statement = (
        f"SELECT seq FROM audit_events WHERE {clause} ORDER BY seq DESC LIMIT ${len(arguments) + 1}"
    )
    explained = await pool.fetchval(f"EXPLAIN (FORMAT JSON) {statement}", *arguments, 21)
    nodes = plan_nodes(explained)
    kinds = [node["Node Type"] for node in nodes]
    assert "Sort" not in kinds, kinds
    scans = [node for node in nodes if node.get("Relation Name") == "audit_events"]
    assert [(n["Node Type"], n.get("Scan Direction")) for n in scans] == [
        ("Index Scan", "Backward")
    ], kinds
    if size == "small":  # the walk must not step over the large tenant's events
        assert scans[0]["Index Name"] == "audit_events_tenant_seq"
    # And the search itself answers the newest matches first, only the tenant's.
    events, cursor = await search(pool, where, None, 20)
    expected = (LARGE if size == "large" else SMALL) // 50
    assert len(events) == min(20, expected)
    assert all(e["tenant_id"] == tenant and e["purpose"] == "support" for e in events)
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs, reverse=True)
    assert (cursor is not None) == (expected > 20)
