"""OpenTelemetry tracing, configured by the standard ``OTEL_*`` variables, read by the SDK.

``STRONGROOM_TRACING=on`` builds a tracer provider with a batching OTLP/HTTP exporter
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, headers, timeout), the
sampler of ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` (parent-based, always on, by
default) and the resource of ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``;
``OTEL_SDK_DISABLED=true`` turns it off again. Off, nothing is installed: no middleware, no
instrumentation, and :func:`span` hands back one shared no-op context manager.

PostgreSQL spans come from a lean asyncpg instrumentation of this module (the attributes of
OpenTelemetry's own: ``db.system``, ``db.name``, ``db.user``, ``db.statement``, ``net.peer.*``),
made only inside a request whose span records: an unsampled request pays one context-variable
lookup per statement, where OpenTelemetry's wrapper costs a coroutine and several context
lookups. Statements carry no values (asyncpg binds parameters, which are not captured). Redis
spans are made the same way, named by the command, with no argument at all (keys and values can
name a person). So an unsampled request needs no suppression context for either, and a request
that brings no trace context when nothing can be sampled costs the tracing hook one header
lookup. Other components call :func:`span` around outgoing calls (Vault).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
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
        self._asyncpg: Callable[[], None] | None = None
        self._redis: Callable[[], None] | None = None

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
        tracing._asyncpg = _instrument_asyncpg(tracer)
        tracing._redis = _instrument_redis(tracer)
        _active = tracing
        _install_log_ids()
        return tracing

    async def stop(self) -> None:
        """Export what is buffered and remove the instrumentations."""
        global _active
        if self._redis is not None:
            self._redis()
            self._redis = None
        if self._asyncpg is not None:
            self._asyncpg()
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


# -- Client spans: PostgreSQL and Redis -------------------------------------------------------

_PG_METHODS = ("execute", "executemany", "fetch", "fetchval", "fetchrow")
_instrumented: set[str] = set()


def _wrap_methods(
    label: str, owner: type, names: tuple[str, ...], wrap: Callable[[Any], Any]
) -> Callable[[], None] | None:
    """Replace ``owner``'s methods by ``wrap(method)``; returns what undoes it (None when
    ``label`` is instrumented already)."""
    if label in _instrumented:
        return None
    originals = {name: getattr(owner, name) for name in names}
    for name, method in originals.items():
        setattr(owner, name, wrap(method))
    _instrumented.add(label)

    def uninstrument() -> None:
        for name, method in originals.items():
            setattr(owner, name, method)
        _instrumented.discard(label)

    return uninstrument


def _instrument_asyncpg(tracer: Tracer) -> Callable[[], None] | None:
    """Wrap asyncpg's statement methods; returns what undoes it (None if it was done already)."""
    from asyncpg.connection import Connection

    wrap = functools.partial(_client_wrapper, tracer, _describe_statement)
    return _wrap_methods("asyncpg", Connection, _PG_METHODS, wrap)


def _client_wrapper(
    tracer: Tracer,
    describe: Callable[[Any, tuple[Any, ...], dict[str, Any]], tuple[str, dict[str, Any]]],
    method: Callable[..., Any],
) -> Callable[..., Any]:
    """``method`` as it is outside a recording request (its own coroutine: no frame added), and
    inside one as a client span named and described by ``describe(owner, args, kwargs)``."""

    @functools.wraps(method)
    def call(owner: Any, *args: Any, **kwargs: Any) -> Any:
        if not recording.get():
            return method(owner, *args, **kwargs)
        name, attributes = describe(owner, args, kwargs)
        return _client_span(tracer, name, attributes, method(owner, *args, **kwargs))

    return call


async def _client_span(
    tracer: Tracer, name: str, attributes: dict[str, Any], call: Awaitable[Any]
) -> Any:
    from opentelemetry.trace import SpanKind, Status, StatusCode

    # Exceptions are not recorded: a database error's detail or a Redis reply can quote a value.
    with tracer.start_as_current_span(
        name,
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            return await call
        except BaseException as exc:
            current.set_attribute("error.type", type(exc).__qualname__)
            current.set_status(Status(StatusCode.ERROR))
            raise


def _describe_statement(
    connection: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    query = str(args[0] if args else kwargs.get("query", ""))
    return _pg_operation(query), _pg_attributes(connection, query)


@functools.lru_cache(maxsize=1024)
def _pg_operation(query: str) -> str:
    """The span name: the statement's first word (``SELECT``, ``WITH``...), comments skipped."""
    text = query.lstrip()
    while text.startswith("/*") and "*/" in text:
        text = text[text.index("*/") + 2 :].lstrip()
    while text.startswith("--"):
        text = text.partition("\n")[2].lstrip()
    words = text.split(None, 1)
    return words[0].upper() if words else "postgresql"


def _pg_attributes(connection: Any, query: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {"db.system": "postgresql", "db.statement": query}
    params: Any = getattr(connection, "_params", None)
    if getattr(params, "database", None):
        attributes["db.name"] = params.database
    if getattr(params, "user", None):
        attributes["db.user"] = params.user
    address = getattr(connection, "_addr", None)
    if isinstance(address, tuple):
        attributes["net.peer.name"], attributes["net.peer.port"] = address[0], address[1]
        attributes["net.transport"] = "ip_tcp"
    elif isinstance(address, str):
        attributes["net.peer.name"] = address
        attributes["net.transport"] = "other"
    return attributes


# -- Redis ---------------------------------------------------------------------------------------


def _instrument_redis(tracer: Tracer) -> Callable[[], None] | None:
    """Wrap the asyncio Redis client's command method (every command, scripts included, goes
    through it); returns what undoes it (None if it was done already)."""
    from redis.asyncio.client import Redis

    wrap = functools.partial(_client_wrapper, tracer, _describe_command)
    return _wrap_methods("redis", Redis, ("execute_command",), wrap)


def _describe_command(
    client: Any, args: tuple[Any, ...], _kwargs: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    command = _redis_command(args[0]) if args else "REDIS"
    return command, _redis_attributes(client, command)


def _redis_command(name: Any) -> str:
    text = name.decode("ascii", "replace") if isinstance(name, bytes) else str(name)
    return text.split(None, 1)[0].upper() if text.strip() else "REDIS"


def _redis_attributes(client: Any, command: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {"db.system": "redis", "db.operation": command}
    settings = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
    if "path" in settings:
        attributes["net.peer.name"] = settings["path"]
        attributes["net.transport"] = "other"
    elif "host" in settings:
        attributes["net.peer.name"] = settings["host"]
        attributes["net.peer.port"] = settings.get("port", 6379)
        attributes["net.transport"] = "ip_tcp"
    if "db" in settings:
        attributes["db.redis.database_index"] = settings["db"]
    return attributes
