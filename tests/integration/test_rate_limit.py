"""Rate limiting per API key, on the real Redis, and the local fallback when Redis is away."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from strongroom.app import create_app
from strongroom.cache.ratelimit import RateLimiter
from strongroom.settings import Settings
from tests.conftest import TenantKeys


@pytest.fixture
async def strict_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings.with_overrides(rate_limit=1.0, rate_burst=3))
    await application.start()
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://strongroom.test") as c:
        yield c
    await application.stop()


async def test_over_the_rate_gets_429_with_headers_and_an_audit_event(
    strict_client: httpx.AsyncClient, tenant: TenantKeys, db: asyncpg.Pool
) -> None:
    headers = await tenant.headers("records:read")
    statuses = []
    last = None
    for _ in range(8):
        last = await strict_client.post(
            "/v1/mask", json={"type": "email", "value": "a@b.co"}, headers=headers
        )
        statuses.append(last.status_code)
    assert statuses[:3] == [200, 200, 200]  # the burst
    assert statuses[3:] == [429] * 5  # one per second afterwards; the loop takes far less
    assert last is not None
    assert last.status_code == 429
    assert int(last.headers["retry-after"]) >= 1
    assert last.headers["ratelimit-limit"] == "3"
    assert last.headers["ratelimit-remaining"] == "0"
    assert last.headers["content-type"] == "application/problem+json"
    assert last.json()["type"].endswith("/rate-limited")
    refused = await db.fetchval(
        "SELECT count(*) FROM audit_events WHERE action = 'ratelimit.exceeded' "
        "AND tenant_id = $1::uuid",
        tenant.id,
    )
    assert refused == statuses.count(429)


async def test_allowed_responses_carry_ratelimit_headers(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    response = await client.post(
        "/v1/mask",
        json={"type": "card", "value": "4111111111111111"},
        headers=await tenant.headers("records:read"),
    )
    assert response.status_code == 200
    assert int(response.headers["ratelimit-remaining"]) <= int(response.headers["ratelimit-limit"])


async def test_falls_back_to_a_local_limiter_when_redis_is_unreachable() -> None:
    dead = aioredis.from_url(
        "redis://127.0.0.1:1/0", socket_connect_timeout=0.2, socket_timeout=0.2
    )
    limiter = RateLimiter(dead, rate=1.0, burst=2)
    decisions = [await limiter.check("k") for _ in range(5)]
    assert limiter.degraded
    assert [d.allowed for d in decisions[:2]] == [True, True]
    assert not decisions[-1].allowed
    assert (await limiter.check("other")).allowed
    await dead.aclose()
