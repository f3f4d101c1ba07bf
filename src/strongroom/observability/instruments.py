"""What the composition root wires for observability, in one object: metrics (or None),
tracing (or None), their middlewares, routes and hooks. Everything off installs nothing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from strongroom import __version__, privacy
from strongroom.observability.audit import observed_sink
from strongroom.observability.middleware import RequestObserver, RequestTracer
from strongroom.observability.tracing import drops_every_root

if TYPE_CHECKING:
    import asyncpg

    from strongroom.domain.ports import AuditSink
    from strongroom.http.middleware import RequestHook
    from strongroom.http.routing import RouteTable
    from strongroom.observability.exposition import MetricsServer
    from strongroom.observability.metrics import Metrics
    from strongroom.observability.tracing import Tracing
    from strongroom.settings import Settings

log = logging.getLogger("strongroom")


class Observability:
    """Created with the application, started first and stopped last in its lifespan."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.metrics: Metrics | None = None
        self.tracing: Tracing | None = None
        self._server: MetricsServer | None = None

    async def start(self) -> None:
        settings = self._settings
        if settings.metrics:
            from strongroom.observability.metrics import Metrics

            self.metrics = Metrics(__version__, privacy.IMPLEMENTATION, settings.metrics_dir)
            await self.metrics.start()
            if settings.metrics_port is not None:
                from strongroom.observability.exposition import MetricsServer

                self._server = MetricsServer(self.metrics, settings.host, settings.metrics_port)
                await self._server.start()
        if settings.tracing:
            from strongroom.observability.tracing import Tracing

            self.tracing = Tracing.start(privacy.IMPLEMENTATION)
            if self.tracing is None:
                log.info("tracing is configured but OTEL_SDK_DISABLED=true; no spans")

    async def stop(self) -> None:
        if self.tracing is not None:
            await self.tracing.stop()
            self.tracing = None
        if self._server is not None:
            await self._server.stop()
            self._server = None
        if self.metrics is not None:
            await self.metrics.stop()

    # -- wiring ------------------------------------------------------------------------------

    def watch_pool(self, pool: asyncpg.Pool, name: str) -> None:
        if self.metrics is not None:
            self.metrics.watch_pool(pool, name)

    def watch_redis(self, client: Any) -> None:
        if self.metrics is not None:
            self.metrics.watch_redis(client)

    def watch_dek_cache(self, cache: Any) -> None:
        if self.metrics is not None:
            self.metrics.watch_dek_cache(cache)

    def watch_key_rotation(self, status: Callable[[], Awaitable[Any]]) -> None:
        if self.metrics is not None:
            self.metrics.watch_key_rotation(status)

    def audit_sink(self, writer: Any) -> AuditSink:
        """The sink services get: the writer, observed (its flushes feed metrics too)."""
        if self.metrics is not None:
            self.metrics.watch_audit_writer(writer)
        sink: AuditSink = observed_sink(writer, self.metrics)
        return sink

    def install_routes(self, table: RouteTable) -> None:
        if self.metrics is not None and self._settings.metrics_port is None:
            from strongroom.observability import exposition

            exposition.install(table, self.metrics)

    def request_hooks(self) -> list[RequestHook]:
        """What the request-context middleware runs around every request, outermost first: the
        server span, then metrics and the access line (inside the span, so the access line
        carries its ids). Empty when everything is off."""
        hooks: list[RequestHook] = []
        if self.tracing is not None:
            sampler = self.tracing.provider.sampler
            hooks.append(RequestTracer(self.tracing.tracer, drops_every_root(sampler)))
        access = self._settings.access_log and logging.getLogger("strongroom.access").isEnabledFor(
            logging.INFO
        )
        if self.metrics is not None or access:
            hooks.append(RequestObserver(self.metrics, access))
        return hooks


def writer_details(writer: Any) -> Callable[[], dict[str, object]]:
    """The audit writer's counters, for /healthz."""

    def details() -> dict[str, object]:
        return {
            "queue_depth": len(writer),
            "batches": writer.batches,
            "events_written": writer.events_written,
            "events_rejected": writer.events_rejected,
            "events_timed_out": writer.events_timed_out,
            "last_batch_size": writer.last_batch_size,
            "flush_failures": writer.flush_failures,
        }

    return details


def pool_details(pool: asyncpg.Pool, **facts: object) -> Callable[[], dict[str, object]]:
    """A pool's connection counts, and ``facts`` read once at start, for /healthz."""

    def details() -> dict[str, object]:
        size = pool.get_size()
        idle = pool.get_idle_size()
        return {
            "connections": size,
            "idle": idle,
            "in_use": size - idle,
            "max": pool.get_max_size(),
            **facts,
        }

    return details
