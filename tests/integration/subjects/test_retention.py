"""Per-collection record retention: `retention_days` in the schema, executed by
`strongroom records retention` (and hourly in the service) as audited deletions."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import Databases, Servers, TenantKeys
from tests.integration.subjects.conftest import strongroom

VISITS = {
    "retention_days": 30,
    "fields": {
        "email": {"type": "email", "searchable": True},
        "page": {"type": "text", "sensitive": False},
    },
}


@pytest.mark.parametrize("value", [0, -1, 36_501, "30", True, 1.5])
async def test_bad_retention_is_refused(
    client: httpx.AsyncClient, tenant: TenantKeys, value: object
) -> None:
    response = await client.put(
        "/v1/collections/visits",
        json={**VISITS, "retention_days": value},
        headers=await tenant.headers("admin"),
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["location"] == "/retention_days"


async def test_retention_deletes_expired_records_except_held_ones(
    client: httpx.AsyncClient,
    tenant: TenantKeys,
    db: asyncpg.Pool,
    databases: Databases,
    servers: Servers,
    master_key: str,
    tmp_path: Path,
) -> None:
    admin = await tenant.headers("admin")
    put = await client.put("/v1/collections/visits", json=VISITS, headers=admin)
    assert put.status_code == 201, put.text
    assert put.json()["retention_days"] == 30
    writer = await tenant.headers("records:write")
    ids: dict[str, str] = {}
    for name in ("expired", "held", "fresh"):
        created = await client.post(
            "/v1/collections/visits/records",
            json={
                "subject_id": f"{name}-{uuid.uuid4().hex[:6]}",
                "data": {"email": f"{name}@example.com", "page": "/"},
            },
            headers=writer,
        )
        assert created.status_code == 201, created.text
        ids[name] = created.json()["id"]
    held_subject = await db.fetchval(
        "SELECT subject_ref FROM records WHERE id = $1::uuid", ids["held"]
    )
    hold = await db.execute(
        "INSERT INTO legal_holds (id, tenant_id, subject_ref, reason, created_by) "
        "VALUES ($1, $2::uuid, $3, 'audit', 'test')",
        uuid.uuid4(),
        tenant.id,
        held_subject,
    )
    assert hold == "INSERT 0 1"
    await db.execute(
        "UPDATE records SET updated_at = now() - interval '31 days' WHERE id = ANY($1::uuid[])",
        [uuid.UUID(ids["expired"]), uuid.UUID(ids["held"])],
    )

    home = tmp_path / "home"
    dry = strongroom(databases, servers, master_key, "records", "retention", "--dry-run", home=home)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) == {"expired": 1}
    ran = strongroom(databases, servers, master_key, "records", "retention", home=home)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == {"deleted": 1}

    left = {
        str(r["id"])
        for r in await db.fetch(
            "SELECT id FROM records WHERE id = ANY($1::uuid[])",
            [uuid.UUID(i) for i in ids.values()],
        )
    }
    assert left == {ids["held"], ids["fresh"]}
    assert (
        await db.fetchval(
            "SELECT count(*) FROM record_index WHERE record_id = $1::uuid", ids["expired"]
        )
        == 0
    )
    event = await db.fetchrow(
        "SELECT actor, outcome, subject_ref, tenant_id::text AS tenant FROM audit_events "
        "WHERE action = 'record.delete' AND resource = $1",
        f"collections/visits/records/{ids['expired']}",
    )
    assert event is not None
    assert (event["actor"], event["outcome"], event["tenant"]) == (
        "strongroom",
        "success",
        tenant.id,
    )
    assert event["subject_ref"] is not None

    # Nothing left to do on a second run.
    again = strongroom(databases, servers, master_key, "records", "retention", home=home)
    assert json.loads(again.stdout) == {"deleted": 0}
