"""OpenTelemetry tracing, configured by the standard ``OTEL_*`` variables, read by the SDK.

``STRONGROOM_TRACING=on`` builds a tracer provider with a batching OTLP/HTTP exporter
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, headers, timeout), the
sampler of ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` (parent-based, always on, by
default) and the resource of ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``;
``OTEL_SDK_DISABLED=true`` turns it off again. Off, nothing is installed: no middleware, no
instrumentation, and :func:`span` hands back one shared no-op context manager.

PostgreSQL (asyncpg) and Redis spans come from the OpenTelemetry instrumentations; their
statements carry no values (asyncpg binds parameters, which are not captured; Redis arguments
are replaced by ``?``). Other components call :func:`span` around outgoing calls (Vault).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from strongroom import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

log = logging.getLogger("strongroom.tracing")
T = TypeVar("T")

_NOOP: AbstractContextManager[None] = contextlib.nullcontext()
_active: Tracing | None = None
# True while a request's server span records: one lookup tells :func:`span` whether a child
# span is wanted, where asking OpenTelemetry for the current span takes several calls.
recording: ContextVar[bool] = ContextVar("strongroom_span_recording", default=False)


class Tracing:
    """The process's tracer provider and the instrumentations it installed."""

    def __init__(self, provider: TracerProvider, tracer: Tracer) -> None:
        from opentelemetry import trace

        self.provider = provider
        self.tracer = tracer
        self.current_span = trace.get_current_span
        self._redis: list[Any] = []
        self._asyncpg: Any = None

    @classmethod
    def start(cls, implementation: str) -> Tracing | None:
        """Configure tracing from the ``OTEL_*`` variables; None when the SDK is disabled."""
        global _active
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        # Resource.create gives OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES precedence.
        resource = Resource.create(
            {
                SERVICE_NAME: "strongroom",
                SERVICE_VERSION: __version__,
                "strongroom.privacy.implementation": implementation,
            }
        )
        provider = TracerProvider(resource=resource)
        tracer = provider.get_tracer("strongroom", __version__)
        if isinstance(tracer, trace.NoOpTracer):  # OTEL_SDK_DISABLED=true
            return None
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        tracing = cls(provider, tracer)
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]  # unannotated
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider)
            tracing._asyncpg = instrumentor
        _active = tracing
        _install_log_ids()
        return tracing

    def instrument_redis(self, client: Any) -> None:
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor.instrument_client(client, tracer_provider=self.provider)
        self._redis.append(client)

    async def stop(self) -> None:
        """Export what is buffered and remove the instrumentations."""
        global _active
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        for client in self._redis:
            RedisInstrumentor.uninstrument_client(client)
        self._redis.clear()
        if self._asyncpg is not None:
            self._asyncpg.uninstrument()
            self._asyncpg = None
        if _active is self:
            _active = None
            _remove_log_ids()
        await asyncio.to_thread(self.provider.shutdown)


def span(name: str, **attributes: str | int | float | bool) -> AbstractContextManager[Any]:
    """A child span of the current one, for calls worth seeing in a trace (Vault, ...).

    ``attributes`` must never carry record values or subject ids. Without tracing, or when the
    current span is not recorded (not sampled, or no request), this is one shared no-op context
    manager.
    """
    tracing = _active
    if tracing is None or not recording.get():  # off, outside a request, or not sampled
        return _NOOP
    return tracing.tracer.start_as_current_span(name, attributes=attributes)


def untraced(coroutine: Coroutine[Any, Any, T]) -> Coroutine[Any, Any, T]:
    """``coroutine`` with the instrumentations suppressed, for background work (audit batches,
    the sealer, listeners, samplers): its statements belong to no request, and as root spans
    they would cost a sampling decision each and fill the trace store with noise. ``coroutine``
    itself when tracing is off."""
    if _active is None:
        return coroutine
    return _suppressed(coroutine)


async def _suppressed(coroutine: Coroutine[Any, Any, T]) -> T:
    from opentelemetry import context
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY

    token = context.attach(context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    marked = recording.set(False)  # a task started by a traced request inherits its context
    try:
        return await coroutine
    finally:
        recording.reset(marked)
        context.detach(token)


def drops_every_root(sampler: Any) -> bool:
    """True when ``sampler`` never samples a trace that starts here (``always_off``, a ratio of
    0, or parent-based on either): requests without an incoming trace context can then skip
    the span altogether. False whenever that cannot be told, which only costs the fast path."""
    from opentelemetry.sdk.trace import sampling

    root = getattr(sampler, "_root", None) if isinstance(sampler, sampling.ParentBased) else sampler
    if isinstance(root, sampling.StaticSampler):
        return root is sampling.ALWAYS_OFF
    if isinstance(root, sampling.TraceIdRatioBased):
        return root.rate <= 0
    return False


def current_ids() -> tuple[str, str] | None:
    """The current trace id and span id in hex, or None (no tracing, or outside a span)."""
    if _active is None:
        return None
    return _ids()


def _ids() -> tuple[str, str] | None:
    tracing = _active
    if tracing is None:
        return None
    context = tracing.current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def _install_log_ids() -> None:
    from strongroom.observability import logging as structured

    structured.trace_ids = _ids


def _remove_log_ids() -> None:
    from strongroom.observability import logging as structured

    structured.trace_ids = None
