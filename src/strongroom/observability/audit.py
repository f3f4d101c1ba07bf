"""The audit sink as the services see it, observed: the wait for the group commit is a span, and
every confirmed event counts (reveals, exports, rotations, rate-limit refusals...)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.observability.tracing import span

if TYPE_CHECKING:
    from strongroom.audit.events import AuditEvent
    from strongroom.domain.ports import AuditSink
    from strongroom.observability.metrics import Metrics


class ObservedAuditSink:
    """An :class:`~strongroom.domain.ports.AuditSink` around the group-commit writer."""

    def __init__(self, inner: AuditSink, metrics: Metrics | None) -> None:
        self._inner = inner
        self._metrics = metrics

    async def emit(self, event: AuditEvent) -> None:
        # The span covers the caller's wait: queueing, the shared batch write and its commit.
        with span("audit.flush", **{"strongroom.audit.action": event.action}):
            await self._inner.emit(event)
        if self._metrics is not None:  # only what was confirmed: a refused event revealed nothing
            self._metrics.audit_event(event)


def observed_sink(inner: AuditSink, metrics: Metrics | None, tracing: bool) -> AuditSink:
    """``inner`` itself when neither metrics nor tracing are on."""
    if metrics is None and not tracing:
        return inner
    return ObservedAuditSink(inner, metrics)
