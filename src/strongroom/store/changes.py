"""Cache invalidation across processes: a dedicated connection LISTENs for the changes that the
database triggers announce (see migration 0005), and the caches built on it (API keys,
collection schemas) drop entries at once. While the listener is not connected the caches are
bypassed, so a missed notification can never keep a revoked key alive."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import asyncpg

from strongroom.observability.tracing import untraced

log = logging.getLogger("strongroom.cache")

CHANNEL = "strongroom_changes"
APPLICATION = "strongroom-changes"
K = TypeVar("K")
V = TypeVar("V")


class ChangeListener:
    """LISTEN on :data:`CHANNEL`; calls every subscriber with each payload, and with ``None``
    ("forget everything") whenever the connection is (re)established."""

    def __init__(self, dsn: str, retry_seconds: float = 1.0) -> None:
        self._dsn = dsn
        self._retry = retry_seconds
        self._subscribers: list[Callable[[str | None], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._connection: asyncpg.Connection | None = None
        self.connected = False

    def subscribe(self, callback: Callable[[str | None], None]) -> None:
        self._subscribers.append(callback)

    async def start(self) -> None:
        self._task = asyncio.create_task(untraced(self._run()), name="strongroom-change-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        self.connected = False

    def _publish(self, payload: str | None) -> None:
        for callback in self._subscribers:
            callback(payload)

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: object) -> None:
        self._publish(str(payload))

    def _on_lost(self, _connection: Any) -> None:
        self.connected = False
        self._publish(None)

    async def _run(self) -> None:
        while True:
            try:
                connection = await asyncpg.connect(
                    self._dsn, timeout=5, server_settings={"application_name": APPLICATION}
                )
                self._connection = connection
                connection.add_termination_listener(self._on_lost)
                await connection.add_listener(CHANNEL, self._on_notify)
                self._publish(None)  # anything may have changed while disconnected
                self.connected = True
                while not connection.is_closed():
                    await asyncio.sleep(self._retry)
                    # A cheap keepalive notices a dead server even without TCP traffic.
                    await connection.execute("SELECT 1")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: mark disconnected and retry
                log.warning("change listener disconnected: %s", type(exc).__name__)
            self.connected = False
            self._publish(None)
            if self._connection is not None:
                with contextlib.suppress(Exception):
                    self._connection.terminate()
                self._connection = None
            await asyncio.sleep(self._retry)


class InvalidatedCache(Generic[K, V]):
    """A TTL cache usable only while ``listener`` is connected.

    ``prefix`` names the payloads (``api_key:<id>``) that evict one entry, whose key is
    ``key_of(rest_of_payload)``; payloads starting with one of ``clear_on`` evict everything.
    Callers read ``generation`` before loading a value and pass it to :meth:`put`, which drops
    the value if a change arrived meanwhile (so a stale read is never cached).
    """

    def __init__(
        self,
        listener: ChangeListener,
        prefix: str,
        key_of: Callable[[str], K],
        ttl: float,
        *,
        clear_on: tuple[str, ...] = (),
        max_entries: int = 100_000,
    ) -> None:
        self._listener = listener
        self._prefix = prefix + ":"
        self._clear_on = tuple(p + ":" for p in clear_on)
        self._key_of = key_of
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self.generation = 0
        listener.subscribe(self._on_change)

    def _on_change(self, payload: str | None) -> None:
        if payload is None or payload.startswith(self._clear_on):
            self.generation += 1
            self._entries.clear()
        elif payload.startswith(self._prefix):
            self.generation += 1
            self._entries.pop(self._key_of(payload[len(self._prefix) :]), None)

    def get(self, key: K) -> V | None:
        if not self._listener.connected or self._ttl <= 0:
            return None
        found = self._entries.get(key)
        if found is None:
            return None
        expires, value = found
        if expires < time.monotonic():
            del self._entries[key]
            return None
        return value

    def put(self, key: K, value: V, generation: int) -> None:
        if not self._listener.connected or self._ttl <= 0 or generation != self.generation:
            return
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self._ttl, value)

    def forget(self, key: K) -> None:
        self.generation += 1
        self._entries.pop(key, None)
