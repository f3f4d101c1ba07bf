"""Legal holds over the API: placed and released by admins, listed by auditors, audited."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from tests.conftest import TenantKeys


async def test_place_list_release(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys, db: asyncpg.Pool
) -> None:
    admin = await tenant.headers("admin")
    placed = await client.post(
        "/v1/legal-holds", json={"reason": "litigation 114", "subject_id": "cust-9"}, headers=admin
    )
    assert placed.status_code == 201, placed.text
    hold = placed.json()
    assert hold["scope"] == "subject"
    assert "cust-9" not in placed.text
    whole = await client.post("/v1/legal-holds", json={"reason": "regulator"}, headers=admin)
    assert whole.json()["scope"] == "tenant"

    auditor = await tenant.headers("audit:read")
    listed = await client.get("/v1/legal-holds", params={"active": "true"}, headers=auditor)
    assert {h["id"] for h in listed.json()["items"]} == {hold["id"], whole.json()["id"]}

    # Another tenant can neither see nor release it.
    other = await other_tenant.headers("admin")
    assert (await client.get("/v1/legal-holds", headers=other)).json()["items"] == []
    assert (await client.delete(f"/v1/legal-holds/{hold['id']}", headers=other)).status_code == 404

    released = await client.delete(f"/v1/legal-holds/{hold['id']}", headers=admin)
    assert released.status_code == 200
    assert released.json()["released_at"] is not None
    again = await client.delete(f"/v1/legal-holds/{hold['id']}", headers=admin)
    assert again.status_code == 404
    active = await client.get("/v1/legal-holds", params={"active": "true"}, headers=auditor)
    assert [h["id"] for h in active.json()["items"]] == [whole.json()["id"]]

    actions = [
        r["action"]
        for r in await db.fetch(
            "SELECT action FROM audit_events WHERE tenant_id = $1::uuid "
            "AND action LIKE 'legal_hold%' ORDER BY seq",
            tenant.id,
        )
    ]
    assert actions == ["legal_hold.place", "legal_hold.place", "legal_hold.release"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 422),
        ({"reason": ""}, 422),
        ({"reason": "x" * 1001}, 422),
        ({"reason": "ok", "subject_id": ""}, 422),
        ({"reason": "ok", "extra": 1}, 422),
        ({"reason": "line\nbreak"}, 422),
        ([], 422),
    ],
)
async def test_bad_holds_are_refused(
    client: httpx.AsyncClient, tenant: TenantKeys, body: object, status: int, db: asyncpg.Pool
) -> None:
    before = await db.fetchval("SELECT count(*) FROM legal_holds")
    response = await client.post(
        "/v1/legal-holds", json=body, headers=await tenant.headers("admin")
    )
    assert response.status_code == status
    assert await db.fetchval("SELECT count(*) FROM legal_holds") == before


async def test_scopes(client: httpx.AsyncClient, tenant: TenantKeys) -> None:
    reader = await tenant.headers("audit:read")
    assert (
        await client.post("/v1/legal-holds", json={"reason": "x"}, headers=reader)
    ).status_code == 403
    bad_id = await client.delete(
        "/v1/legal-holds/not-a-uuid", headers=await tenant.headers("admin")
    )
    assert bad_id.status_code == 400
