"""Rate limiting per API key, on the real Redis, and the local fallback when Redis is away."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from strongroom.app import create_app
from strongroom.cache.ratelimit import RateLimiter
from strongroom.settings import Settings
from tests.conftest import Servers, TenantKeys


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


@pytest.fixture
async def redis_client(servers: Servers) -> AsyncIterator[aioredis.Redis]:
    connection = aioredis.from_url(servers.redis_url)
    yield connection
    await connection.aclose()


class CountingScript:
    """Wraps the limiter's real Redis script to count the round trips it makes."""

    def __init__(self, script: Any) -> None:
        self.script = script
        self.calls = 0

    async def __call__(self, **kwargs: Any) -> Any:
        self.calls += 1
        return await self.script(**kwargs)


async def test_a_busy_key_takes_leases_instead_of_a_round_trip_per_request(
    redis_client: aioredis.Redis,
) -> None:
    limiter = RateLimiter(redis_client, rate=1000.0, burst=2000)
    counting = CountingScript(limiter._script)
    limiter._script = counting  # type: ignore[assignment]
    key = f"lease-{uuid.uuid4().hex}"
    decisions = [await limiter.check(key) for _ in range(400)]
    assert all(d.allowed for d in decisions)
    assert counting.calls < 40  # leases grow 1, 2, 4, ... up to 50 requests
    assert all(0 <= d.remaining <= 2000 for d in decisions)


async def test_replicas_sharing_redis_never_admit_more_than_the_burst(
    redis_client: aioredis.Redis,
) -> None:
    rate, burst = 1000.0, 200
    replicas = [RateLimiter(redis_client, rate=rate, burst=burst) for _ in range(3)]
    key = f"shared-{uuid.uuid4().hex}"
    started = time.monotonic()
    admitted = 0
    for n in range(1200):
        admitted += (await replicas[n % 3].check(key)).allowed
    elapsed = time.monotonic() - started
    # GCRA admits the burst at once plus the rate over time, whoever asks; leases are charged
    # when granted, so three replicas together stay inside the same envelope.
    assert admitted <= burst + rate * elapsed + 1
    assert admitted >= burst  # and the burst itself is never refused


async def test_an_unspent_lease_is_handed_back(redis_client: aioredis.Redis) -> None:
    limiter = RateLimiter(redis_client, rate=1000.0, burst=2000)
    key = f"refund-{uuid.uuid4().hex}"
    for _ in range(100):  # grows the lease
        await limiter.check(key)
    lease = limiter._leases[key]
    assert lease.left > 0
    held_us = int(await redis_client.get(f"strongroom:rl:{key}")) - int(time.time() * 1e6)
    left = lease.left
    lease.expires = 0.0  # as if the lease ran out of time with requests unspent
    await limiter.check(key)
    after_us = int(await redis_client.get(f"strongroom:rl:{key}")) - int(time.time() * 1e6)
    # Handing back `left` requests moves the key's TAT back by `left` intervals (1 ms each);
    # the new, smaller lease moves it forward by its size; time passing only moves it back.
    new_lease = limiter._leases[key].size
    assert after_us <= held_us - (left - new_lease) * 1000 + 1000


async def test_concurrent_requests_share_one_refill_instead_of_stampeding(
    redis_client: aioredis.Redis,
) -> None:
    limiter = RateLimiter(redis_client, rate=1000.0, burst=2000)
    counting = CountingScript(limiter._script)
    limiter._script = counting  # type: ignore[assignment]
    key = f"crowd-{uuid.uuid4().hex}"
    decisions = await asyncio.gather(*(limiter.check(key) for _ in range(300)))
    assert all(d.allowed for d in decisions)
    charged_us = int(await redis_client.get(f"strongroom:rl:{key}")) - int(time.time() * 1e6)
    # Charged: the 300 admitted plus at most one unspent lease (50 at 1 ms each), not a lease
    # per waiting request.
    assert charged_us <= (300 + 50) * 1000
    assert counting.calls < 40
