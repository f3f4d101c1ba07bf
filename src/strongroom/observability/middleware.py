"""The request hooks of observability: the server span, then metrics and the access line.

They run in the request-context middleware (hooks rather than middleware layers of their own:
a layer costs two coroutine frames per request) and see the final status, problem responses
included; a cancelled request counts as 500. Labels, span names and log lines use the route
template, never the raw path, and never the query string. Each is installed only when it has
something to do.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from blacksheep import Request, Response

from strongroom.observability.logging import (
    ACCESS_LOGGER,
    access_fields,
    write_access,
)
from strongroom.observability.tracing import recording

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from strongroom.observability.metrics import Metrics

access_log = logging.getLogger(ACCESS_LOGGER)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Business counts the audit sink cannot see: a first erasure writes its event in the erasure's
# own transaction, not through the group-commit writer.
_ERASURE = ("DELETE", "/v1/subjects/{subject_id}")
_ERASURE_OUTCOMES = {200: "erased", 409: "refused"}


def _method(request: Request) -> str:
    method: str = request.method
    return method if method in _METHODS else "_OTHER"


def _route(request: Request) -> str:
    route: str = getattr(request, "route_template", "*")
    return route


class RequestObserver:
    """Request metrics (duration, in flight, sizes) and one access line per request at INFO."""

    def __init__(self, metrics: Metrics | None, access: bool = True) -> None:
        self._metrics = metrics
        self._access = access
        if metrics is not None:
            self._duration = metrics.request_duration
            self._active = {m: metrics.active_requests.labels(m) for m in (*_METHODS, "_OTHER")}
            self._request_size = metrics.request_size
            self._response_size = metrics.response_size
            self._erasures = metrics.erasures
            self._ready = metrics.ready
        self._children: dict[tuple[str, str, str], Any] = {}
        self._size_children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def start(self, request: Request) -> float:
        if self._metrics is not None:
            self._active[_method(request)].inc()
        return time.perf_counter()

    def finish(
        self, request: Request, started: float, response: Response | None, status: int
    ) -> None:
        elapsed = time.perf_counter() - started
        method = _method(request)
        route = _route(request)
        content = response.content if response is not None else None
        sent = content.length if content is not None and content.length >= 0 else 0
        if self._metrics is not None:
            self._active[method].dec()
            self._record(request, method, route, status, elapsed, sent)
        if self._access and access_log.isEnabledFor(logging.INFO):
            self._access_line(request, method, route, status, elapsed, sent)

    @staticmethod
    def _access_line(
        request: Request, method: str, route: str, status: int, elapsed: float, sent: int
    ) -> None:
        request_id = getattr(request, "request_id", None)
        client = request.client_ip
        span_context = getattr(request, "span_context", None)
        if write_access(method, route, status, elapsed, sent, request_id, client, span_context):
            return
        message, access = access_fields(method, route, status, elapsed, sent, request_id, client)
        # makeRecord + handle: ``info()`` would also walk the stack to find the caller.
        access_log.handle(
            access_log.makeRecord(
                ACCESS_LOGGER,
                logging.INFO,
                ACCESS_LOGGER,
                0,
                message,
                (),
                None,
                extra={"_access": access},
            )
        )

    def _record(
        self, request: Request, method: str, route: str, status: int, elapsed: float, sent: int
    ) -> None:
        key = (method, route, str(status))
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._duration.labels(*key)
        child.observe(elapsed)
        sizes = self._size_children.get((method, route))
        if sizes is None:
            sizes = self._size_children[(method, route)] = (
                self._request_size.labels(method, route),
                self._response_size.labels(method, route),
            )
        length = request.get_first_header(b"content-length")
        if length is not None and length.isdigit():
            sizes[0].observe(int(length))
        sizes[1].observe(sent)
        if route == "/readyz":
            self._ready.set(1 if status == 200 else 0)
        elif (method, route) == _ERASURE and status in _ERASURE_OUTCOMES:
            principal = getattr(request, "principal", None)
            tenant = principal.tenant_id if principal is not None else ""
            self._erasures.labels(tenant, _ERASURE_OUTCOMES[status]).inc()


class RequestTracer:
    """A server span named ``METHOD /route/{template}``, child of an incoming ``traceparent``;
    the response carries ``traceresponse`` with the trace and span ids."""

    def __init__(self, tracer: Tracer, roots_dropped: bool = False) -> None:
        from opentelemetry import context, propagate, trace
        from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self._tracer = tracer
        self._extract = propagate.extract
        self._getter = _HeaderGetter()
        self._server = SpanKind.SERVER
        self._error = Status(StatusCode.ERROR)
        self._in_context = trace.set_span_in_context
        self._attach = context.attach
        self._detach = context.detach
        self._set_value = context.set_value
        # The key OpenTelemetry's instrumentations check first: an unsampled request creates no
        # child spans at all (the parent-based sampler would drop every one of them anyway).
        self._suppress = _SUPPRESS_INSTRUMENTATION_KEY
        # When the sampler drops every trace that starts here (sampling at 0 %), a request that
        # brings no trace context gets no span and no context of its own: the PostgreSQL and
        # Redis spans and span() look at ``recording``, which stays False. Tracing on but
        # unsampled then costs a header lookup or two.
        self._roots_dropped = roots_dropped
        self._context_headers = tuple(
            name.encode("latin-1") for name in propagate.get_global_textmap().fields
        )

    def start(self, request: Request) -> tuple[object, Any, Any]:
        """What ``finish`` undoes: the context token (None when nothing was attached: no trace
        context came and none can start here), the span (None when there is none) and the token
        of :data:`~strongroom.observability.tracing.recording` (None unless recorded)."""
        if self._roots_dropped:
            for name in self._context_headers:
                if request.get_first_header(name) is not None:
                    break
            else:
                return None, None, None
        method = _method(request)
        route = _route(request)
        parent = self._extract(request, getter=self._getter)  # type: ignore[arg-type]  # duck-typed Getter
        attributes = {
            "http.request.method": method,
            "http.route": route,
            "url.scheme": request.scheme,
        }
        span = self._tracer.start_span(
            f"{method} {route}", context=parent, kind=self._server, attributes=attributes
        )
        request.span_context = span.get_span_context()  # type: ignore[attr-defined]  # for the access line
        scope = self._in_context(span, parent)
        marked = None
        if span.is_recording():
            marked = recording.set(True)
        else:
            scope = self._set_value(self._suppress, True, scope)
        return self._attach(scope), span, marked

    def finish(
        self,
        request: Request,
        state: tuple[object, Any, Any],
        response: Response | None,
        status: int,
    ) -> None:
        token, span, marked = state
        if token is None:  # no trace context came and none can start here
            return
        self._detach(token)  # type: ignore[arg-type]  # the token attach returned
        if span is None:
            return
        if marked is not None:
            recording.reset(marked)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_attribute("error.type", str(status))
                span.set_status(self._error)
        span.end()
        ids = span.get_span_context()
        if ids.is_valid and response is not None:
            response.set_header(
                b"traceresponse",
                f"00-{ids.trace_id:032x}-{ids.span_id:016x}-{ids.trace_flags:02x}".encode(),
            )


class _HeaderGetter:
    """Reads propagation headers (``traceparent``, ``tracestate``, ``baggage``) of a request."""

    def get(self, carrier: Request, key: str) -> list[str] | None:
        value = carrier.get_first_header(key.encode("latin-1"))
        return None if value is None else [value.decode("latin-1")]

    def keys(self, carrier: Request) -> list[str]:
        return [name.decode("latin-1") for name, _ in carrier.headers]
