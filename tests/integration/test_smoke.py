from __future__ import annotations

import httpx

from tests.conftest import TenantKeys, customer


async def test_create_and_read_masked(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str
) -> None:
    headers = await tenant.headers("records:read", "records:write")
    created = await client.post(
        customers, json={"subject_id": "cust-1", "data": customer()}, headers=headers
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["data"]["email"] == "j•••@e•••••.com"
    got = await client.get(f"{customers}/{body['id']}", headers=headers)
    assert got.status_code == 200, got.text
    assert got.json()["data"] == body["data"]
