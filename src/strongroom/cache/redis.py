"""The Redis client, with timeouts on connect and every command."""

from __future__ import annotations

import redis.asyncio as aioredis

from strongroom.settings import Settings


def create_redis(url: str, settings: Settings) -> aioredis.Redis:
    return aioredis.from_url(
        url,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        health_check_interval=30,
    )
