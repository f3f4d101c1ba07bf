"""The audit sink as the services see it, observed: every confirmed event counts (reveals,
exports, rotations, rate-limit refusals...). The wait for the group commit is a span of the
writer's own, when the request is sampled."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from strongroom.audit.events import AuditEvent
    from strongroom.domain.ports import AuditSink
    from strongroom.observability.metrics import Metrics


class ObservedAuditSink:
    """An :class:`~strongroom.domain.ports.AuditSink` around the group-commit writer."""

    def __init__(self, inner: AuditSink, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def emit(self, event: AuditEvent) -> None:
        await self._inner.emit(event)
        self._metrics.audit_event(event)  # only what was confirmed: a refusal revealed nothing


def observed_sink(inner: AuditSink, metrics: Metrics | None) -> AuditSink:
    """``inner`` itself when metrics are off."""
    if metrics is None:
        return inner
    return ObservedAuditSink(inner, metrics)
