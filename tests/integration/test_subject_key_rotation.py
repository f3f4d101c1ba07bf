"""Per-subject data key rotation re-encrypts the subject's records and destroys the old key."""

from __future__ import annotations

import asyncpg
import httpx
import orjson

from tests.conftest import TenantKeys, customer


async def test_rotation_reencrypts_and_destroys_the_old_key(
    client: httpx.AsyncClient,
    tenant: TenantKeys,
    customers: str,
    db: asyncpg.Pool,
    keys_db: asyncpg.Pool,
) -> None:
    headers = await tenant.headers("admin", X_Purpose="support")
    headers["X-Purpose"] = headers.pop("X_Purpose")
    mine = [
        await client.post(
            customers, json={"subject_id": "rotate-me", "data": customer(n)}, headers=headers
        )
        for n in range(3)
    ]
    other = await client.post(
        customers, json={"subject_id": "bystander", "data": customer(9)}, headers=headers
    )
    ids = [r.json()["id"] for r in mine]
    before = {
        r["id"]: orjson.loads(r["data"])
        for r in await db.fetch(
            "SELECT id::text, data FROM records WHERE id = ANY($1::uuid[])", ids
        )
    }
    other_before = await db.fetchval(
        "SELECT data FROM records WHERE id = $1::uuid", other.json()["id"]
    )

    rotated = await client.post("/v1/subjects/rotate-me/rotate-key", headers=headers)
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert (body["dek_version"], body["records_reencrypted"], body["old_keys_destroyed"]) == (
        2,
        3,
        1,
    )

    after = {
        r["id"]: {"data": orjson.loads(r["data"]), "dek_version": r["dek_version"]}
        for r in await db.fetch(
            "SELECT id::text, data, dek_version FROM records WHERE id = ANY($1::uuid[])", ids
        )
    }
    for record_id in ids:
        assert after[record_id]["dek_version"] == 2
        assert after[record_id]["data"]["email"] != before[record_id]["email"]  # new ciphertext
        assert after[record_id]["data"]["plan"] == before[record_id]["plan"]  # plain field kept
    assert (
        await db.fetchval("SELECT data FROM records WHERE id = $1::uuid", other.json()["id"])
        == other_before
    )
    versions = await keys_db.fetch(
        "SELECT dek_version FROM subject_keys WHERE tenant_id = $1::uuid ORDER BY 1", tenant.id
    )
    assert [v["dek_version"] for v in versions] == [1, 2]  # the bystander's 1, the subject's 2

    for n, response in enumerate(mine):
        revealed = await client.get(
            response.headers["location"], params={"reveal": "email,card"}, headers=headers
        )
        assert revealed.status_code == 200, revealed.text
        assert revealed.json()["data"]["email"] == f"jane.doe{n}@example.com"
        assert revealed.json()["subject_id"] == "rotate-me"
    more = await client.post(
        customers, json={"subject_id": "rotate-me", "data": customer(5)}, headers=headers
    )
    assert more.status_code == 201
    assert (
        await db.fetchval("SELECT dek_version FROM records WHERE id = $1::uuid", more.json()["id"])
        == 2
    )
    event = await db.fetchrow(
        "SELECT action, resource FROM audit_events WHERE id = $1::uuid", body["audit_event_id"]
    )
    assert event["action"] == "key.rotate"


async def test_rotation_refusals(client: httpx.AsyncClient, tenant: TenantKeys) -> None:
    admin = await tenant.headers("admin")
    assert (await client.post("/v1/subjects/nobody/rotate-key", headers=admin)).status_code == 404
    assert (await client.post("/v1/subjects/%0Abad/rotate-key", headers=admin)).status_code == 400
    writer = await tenant.headers("records:write")
    assert (await client.post("/v1/subjects/nobody/rotate-key", headers=writer)).status_code == 403
