"""Updates without If-Match apply to the current record even when they race; ids are
canonical whatever case the caller uses."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import TenantKeys, customer


async def test_racing_updates_without_if_match_all_apply(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str
) -> None:
    headers = await tenant.headers("records:read", "records:write")
    created = await client.post(
        customers, json={"subject_id": "race", "data": customer()}, headers=headers
    )
    url = created.headers["location"]
    results = await asyncio.gather(
        *(client.patch(url, json={"data": {"score": n}}, headers=headers) for n in range(12))
    )
    assert [r.status_code for r in results] == [200] * 12
    final = await client.get(url, headers=headers)
    assert final.json()["version"] == 13
    # With If-Match the same race is refused, never silently applied.
    stale = await client.patch(
        url, json={"data": {"score": 1}}, headers={**headers, "If-Match": '"1"'}
    )
    assert stale.status_code == 412


async def test_uppercase_ids_reach_the_same_record_and_keep_it_decryptable(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str
) -> None:
    headers = await tenant.headers("records:read", "records:write", "records:reveal")
    created = await client.post(
        customers, json={"subject_id": "case", "data": customer(3)}, headers=headers
    )
    record_id = created.json()["id"]
    upper = f"{customers}/{record_id.upper()}"
    patched = await client.patch(
        upper, json={"data": {"email": "new.address@example.com"}}, headers=headers
    )
    assert patched.status_code == 200, patched.text
    revealed = await client.get(
        f"{customers}/{record_id}",
        params={"reveal": "email"},
        headers={**headers, "X-Purpose": "support"},
    )
    assert revealed.status_code == 200, revealed.text
    assert revealed.json()["data"]["email"] == "new.address@example.com"
