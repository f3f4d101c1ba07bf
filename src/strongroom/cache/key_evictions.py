"""Cross-process eviction of unwrapped data keys over Redis pub/sub.

An erasure destroys a subject's key in the key store, but other processes may still hold it
unwrapped in their in-process cache. The erasing process publishes ``{tenant_id, subject_ref}``
on :data:`CHANNEL`; every process (itself included) subscribes and drops the subject's entries.

Pub/sub is at-most-once: a process that is disconnected when the message goes out misses it.
The cache TTL is the bound in that case, and the subscriber clears its whole cache after each
reconnect so that a gap in the subscription cannot stretch it. A forged message can only evict
(never add) keys, so the channel needs no authentication.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import orjson
import redis.asyncio as aioredis

from strongroom.resilience.background import BackgroundTask

log = logging.getLogger("strongroom.cache.key_evictions")

CHANNEL = "strongroom:keys:evict"


class RedisKeyEvictions:
    """Publishes evictions and applies those it hears: ``evict(tenant_id, subject_ref)`` for
    one subject, ``evict_all()`` after a gap in the subscription."""

    def __init__(
        self,
        redis: aioredis.Redis,
        evict: Callable[[str, bytes], None],
        evict_all: Callable[[], None],
        *,
        poll: float = 1.0,
        retry: float = 1.0,
    ) -> None:
        self._redis = redis
        self._evict = evict
        self._evict_all = evict_all
        self._poll = poll
        self._retry = retry
        self._background = BackgroundTask("strongroom-key-evictions")
        self.subscribed = asyncio.Event()

    async def publish(self, tenant_id: str, subject_ref: bytes) -> None:
        message = orjson.dumps({"tenant_id": tenant_id, "subject_ref": subject_ref.hex()})
        await self._redis.publish(CHANNEL, message)

    async def start(self) -> None:
        self._background.start(self._run())

    async def stop(self) -> None:
        await self._background.stop()

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed.clear()
                log.warning("key eviction channel lost (%s); retrying", type(exc).__name__)
                await asyncio.sleep(self._retry)

    async def _listen(self) -> None:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(CHANNEL)
            # Whatever was published while we were not listening is lost: start clean.
            self._evict_all()
            self.subscribed.set()
            while True:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=self._poll
                )
                if message is not None:
                    self._apply(message.get("data"))
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py

    def _apply(self, data: object) -> None:
        try:
            payload = orjson.loads(data)  # type: ignore[arg-type]  # bytes from Redis
            tenant_id = payload["tenant_id"]
            subject_ref = bytes.fromhex(payload["subject_ref"])
            if not isinstance(tenant_id, str):
                raise TypeError
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("ignored a malformed key eviction message")
            return
        self._evict(tenant_id, subject_ref)
