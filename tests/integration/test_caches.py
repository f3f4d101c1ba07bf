"""Per-process caches of API keys and schemas follow changes made anywhere, and are bypassed
while the change listener is disconnected."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from strongroom.store.changes import APPLICATION
from tests.conftest import TenantKeys, customer


async def eventually(check, attempts: int = 100) -> None:  # type: ignore[no-untyped-def]
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the change did not reach the service")


async def test_a_schema_changed_elsewhere_is_seen(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str, db: asyncpg.Pool
) -> None:
    headers = await tenant.headers("records:read", "records:write")
    assert (await client.get(customers, headers=headers)).status_code == 200  # cached now
    # Another replica (here: plain SQL) adds a field.
    await db.execute(
        'UPDATE collections SET fields = fields || \'{"tier": {"type": "text", '
        '"sensitive": false, "searchable": false, "mask": "partial", '
        "\"required\": false}}'::jsonb WHERE tenant_id = $1::uuid AND name = 'customers'",
        tenant.id,
    )

    async def accepts_the_new_field() -> bool:
        data = {**customer(), "tier": "gold"}
        response = await client.post(
            customers, json={"subject_id": "c", "data": data}, headers=headers
        )
        return response.status_code == 201

    await eventually(accepts_the_new_field)


async def test_keys_are_checked_in_the_database_while_the_listener_is_down(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str, db: asyncpg.Pool
) -> None:
    headers = await tenant.headers("records:read")
    assert (await client.get(customers, headers=headers)).status_code == 200
    key_id = (await tenant.key("records:read")).split("_")[1]
    # Cut the listener and revoke in the same transaction: whatever the timing, the service
    # must not answer from a cache it can no longer trust.
    async with db.acquire() as connection, connection.transaction():
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            APPLICATION,
        )
        await connection.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1", key_id)

    async def refused() -> bool:
        return (await client.get(customers, headers=headers)).status_code == 401

    await eventually(refused)
    for _ in range(20):  # and it stays refused: no stale entry comes back after reconnecting
        assert await refused()
        await asyncio.sleep(0.01)
