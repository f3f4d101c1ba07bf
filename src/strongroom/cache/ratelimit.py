"""Per-API-key rate limiting: GCRA in Redis shared by every replica, taken in small leases, with a
local limiter per process when Redis cannot answer, so serving continues in a degraded mode.

A busy key does not cost a Redis round trip per request: the script grants a process up to
``lease`` requests at once (charged to the key immediately, so replicas together never admit more
than the limit), and the process spends them locally. Lease sizes start at one and grow while
leases are used up quickly, up to 5 % of a second's rate and a tenth of the burst; a lease not
spent within ``_LEASE_SECONDS`` is handed back with the next call. A key at a low rate therefore
still asks Redis every time, and behaves exactly as plain GCRA."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("strongroom.ratelimit")

# GCRA: the key holds the theoretical arrival time (TAT) in microseconds. The script first takes
# back ARGV[5] requests leased earlier and never admitted, then grants up to ARGV[4] at once (as
# many as the burst has room for), and answers {granted, wait_us, used_us}: granted 0 means
# refused, wait_us until one would be allowed.
# KEYS[1] key; ARGV: now_us, emission_interval_us, burst_tolerance_us, wanted, returned
_GCRA = """
local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local wanted = tonumber(ARGV[4])
tat = tat - tonumber(ARGV[5]) * interval
if tat < now then tat = now end
local room = math.floor((now + tolerance - tat) / interval)
if room < 1 then
  return {0, tat + interval - tolerance - now, tat - now}
end
local granted = math.min(wanted, room)
local new_tat = tat + granted * interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {granted, 0, new_tat - now}
"""
_LEASE_SECONDS = 0.1


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


@dataclass(slots=True)
class _Lease:
    """Requests this process may still admit for a key, granted by Redis until ``expires``;
    ``refill`` is set while one request asks Redis for more, which the others wait for."""

    left: int = 0
    expires: float = 0.0
    size: int = 0
    used_us: int = 0
    refill: asyncio.Event | None = None


class RateLimiter:
    """``rate`` requests per second per key, with bursts up to ``burst`` requests."""

    def __init__(self, redis: aioredis.Redis, rate: float, burst: int) -> None:
        self._redis = redis
        self._rate = rate
        self._burst = burst
        self._interval_us = int(1_000_000 / rate)
        self._tolerance_us = self._interval_us * burst  # exactly `burst` requests at once
        self._max_lease = max(1, min(burst // 10, int(rate * 0.05), 64))
        self._script = redis.register_script(_GCRA)
        self._leases: dict[str, _Lease] = {}
        self._local: dict[str, float] = {}
        self.degraded = False

    async def check(self, key: str) -> Decision:
        while True:
            lease = self._leases.get(key)
            if lease is None:
                if len(self._leases) > 100_000:  # bound memory: forget idle keys wholesale
                    self._leases.clear()
                lease = self._leases[key] = _Lease()
            if lease.left > 0 and lease.expires > time.monotonic():
                lease.left -= 1
                return self._decision(True, 0, lease.used_us, lease.left)
            if lease.refill is None:
                return await self._refill(key, lease)
            await lease.refill.wait()  # then take from what it brought, or ask in turn

    async def _refill(self, key: str, lease: _Lease) -> Decision:
        if lease.left > 0:  # expired unspent: hand it back and ask for less
            size, returned = lease.size // 2, lease.left
        else:  # spent in time (or never had one): ask for more
            size, returned = lease.size * 2, 0
        size = max(1, min(size, self._max_lease))
        lease.left = 0
        lease.refill = refill = asyncio.Event()
        now_us = int(time.time() * 1_000_000)
        try:
            granted, wait_us, used_us = await self._script(
                keys=[f"strongroom:rl:{key}"],
                args=[now_us, self._interval_us, self._tolerance_us, size, returned],
            )
            if self.degraded:
                log.info("rate limiting is back on Redis")
            self.degraded = False
        except (RedisError, OSError, TimeoutError):
            if not self.degraded:
                log.warning("Redis unavailable: rate limiting falls back to this process")
            self.degraded = True
            allowed, wait_us, used_us = self._local_check(key, now_us)
            return self._decision(bool(allowed), int(wait_us), int(used_us), 0)
        finally:
            lease.refill = None
            refill.set()
        granted, used_us = int(granted), int(used_us)
        if granted <= 0:
            lease.size = 0
            return self._decision(False, int(wait_us), used_us, 0)
        lease.left, lease.size, lease.used_us = granted - 1, size, used_us
        lease.expires = time.monotonic() + _LEASE_SECONDS
        return self._decision(True, 0, used_us, lease.left)

    def _local_check(self, key: str, now_us: int) -> tuple[int, int, int]:
        tat = max(self._local.get(key, now_us), now_us)
        allow_at = tat + self._interval_us - self._tolerance_us
        if allow_at > now_us:
            return 0, int(allow_at - now_us), int(tat - now_us)
        if len(self._local) > 100_000:  # bound memory: forget idle keys wholesale
            self._local.clear()
        self._local[key] = tat + self._interval_us
        return 1, 0, int(tat + self._interval_us - now_us)

    def _decision(self, allowed: bool, wait_us: int, used_us: int, leased: int) -> Decision:
        """``used_us`` is the key's TAT ahead of now as Redis last saw it (leases included);
        ``leased`` what this process still holds of its lease, available to the caller."""
        used = math.ceil(used_us / self._interval_us)
        return Decision(
            allowed=allowed,
            limit=self._burst,
            remaining=max(0, self._burst - used) + leased,
            reset_seconds=used_us / 1_000_000,
            retry_after=wait_us / 1_000_000,
        )
