"""Per-API-key rate limiting: GCRA in Redis (one atomic script call per request), with a local
limiter per process when Redis cannot answer, so serving continues in a degraded mode."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("strongroom.ratelimit")

# GCRA: the key holds the theoretical arrival time (TAT) in microseconds.
# KEYS[1] key; ARGV: now_us, emission_interval_us, burst_tolerance_us
_GCRA = """
local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
if tat < now then tat = now end
local allow_at = tat + interval - tolerance
if allow_at > now then
  return {0, allow_at - now, tat - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {1, 0, new_tat - now}
"""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float
    retry_after: float

    def headers(self) -> list[tuple[bytes, bytes]]:
        values = [
            (b"RateLimit-Limit", str(self.limit).encode()),
            (b"RateLimit-Remaining", str(self.remaining).encode()),
            (b"RateLimit-Reset", str(math.ceil(self.reset_seconds)).encode()),
        ]
        if not self.allowed:
            values.append((b"Retry-After", str(max(1, math.ceil(self.retry_after))).encode()))
        return values


class RateLimiter:
    """``rate`` requests per second per key, with bursts up to ``burst`` requests."""

    def __init__(self, redis: aioredis.Redis, rate: float, burst: int) -> None:
        self._redis = redis
        self._rate = rate
        self._burst = burst
        self._interval_us = int(1_000_000 / rate)
        self._tolerance_us = self._interval_us * burst  # exactly `burst` requests at once
        self._script = redis.register_script(_GCRA)
        self._local: dict[str, float] = {}
        self.degraded = False

    async def check(self, key: str) -> Decision:
        now_us = int(time.time() * 1_000_000)
        try:
            allowed, wait_us, used_us = await self._script(
                keys=[f"strongroom:rl:{key}"],
                args=[now_us, self._interval_us, self._tolerance_us],
            )
            if self.degraded:
                log.info("rate limiting is back on Redis")
            self.degraded = False
        except (RedisError, OSError, TimeoutError):
            if not self.degraded:
                log.warning("Redis unavailable: rate limiting falls back to this process")
            self.degraded = True
            allowed, wait_us, used_us = self._local_check(key, now_us)
        return self._decision(bool(allowed), int(wait_us), int(used_us))

    def _local_check(self, key: str, now_us: int) -> tuple[int, int, int]:
        tat = max(self._local.get(key, now_us), now_us)
        allow_at = tat + self._interval_us - self._tolerance_us
        if allow_at > now_us:
            return 0, int(allow_at - now_us), int(tat - now_us)
        if len(self._local) > 100_000:  # bound memory: forget idle keys wholesale
            self._local.clear()
        self._local[key] = tat + self._interval_us
        return 1, 0, int(tat + self._interval_us - now_us)

    def _decision(self, allowed: bool, wait_us: int, used_us: int) -> Decision:
        used = math.ceil(used_us / self._interval_us)
        return Decision(
            allowed=allowed,
            limit=self._burst,
            remaining=max(0, self._burst - used),
            reset_seconds=used_us / 1_000_000,
            retry_after=wait_us / 1_000_000,
        )
