"""Middleware, outermost first: the request's front (request id, problem+json for every error,
security headers, and the observability hooks), then authentication with the rate limit. Each is
a small class: configuration in ``__init__``, no per-request state on ``self``.

Every middleware layer costs two coroutine frames per request on the hot path, so what only needs
to look at a request before and after its handler is a hook of the front middleware rather than a
layer of its own."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from blacksheep import Request, Response

from strongroom.audit.events import AuditEvent, CallContext
from strongroom.cache.ratelimit import RateLimiter
from strongroom.domain import errors as domain
from strongroom.domain.access import Principal, parse_api_key, secret_matches
from strongroom.domain.ports import AuditSink
from strongroom.http.context import new_request_id, request_id_var
from strongroom.http.errors import HttpProblem, to_response
from strongroom.store.tenants import TenantRepository

Handler = Callable[[Request], Awaitable[Response]]
log = logging.getLogger("strongroom.http")


class RequestHook(Protocol):
    """Looks at every request around its handler without being a middleware layer (tracing,
    metrics, the access line). ``finish`` sees the final response, problem responses included,
    or None and status 500 when the request was cancelled; hooks start in order and finish in
    reverse, so the first one wraps the others."""

    def start(self, request: Request) -> Any: ...

    def finish(
        self, request: Request, state: Any, response: Response | None, status: int
    ) -> None: ...


class RequestContextMiddleware:
    """The outermost middleware. Gives every request an id (accepted from ``X-Request-ID`` when
    well-formed) and returns it on every response, turns every exception into problem+json,
    puts the security headers on every response, and runs the request hooks around it all."""

    def __init__(
        self, hooks: Sequence[RequestHook] = (), headers: SecurityHeaders | None = None
    ) -> None:
        self._hooks = tuple(hooks)
        self._finishing = tuple(reversed(self._hooks))
        self._headers = headers or SecurityHeaders()

    async def __call__(self, request: Request, handler: Handler) -> Response:
        hooks = self._hooks
        states = [hook.start(request) for hook in hooks] if hooks else None
        request_id = new_request_id(request.get_first_header(b"x-request-id"))
        request.request_id = request_id  # type: ignore[attr-defined]  # Request has a __dict__
        token = request_id_var.set(request_id)
        response: Response | None = None
        status = 500
        try:
            try:
                response = await handler(request)
            except Exception as exc:  # the outermost handler: nothing escapes as a bare 500
                response = to_response(exc, request_id)
            response.set_header(b"X-Request-ID", request_id.encode())
            self._headers.apply(request, response)
            status = response.status
            return response
        finally:
            request_id_var.reset(token)
            if states is not None:
                for hook, state in zip(self._finishing, reversed(states), strict=True):
                    hook.finish(request, state, response, status)


class SecurityHeaders:
    """Helmet's defaults with the REST overrides; the docs page gets a CSP that lets it render.

    They are added, not set: replacing a header scans all of a response's headers, a dozen
    times over for a dozen headers, on every request. Handlers leave these names alone."""

    def __init__(self, docs_path: bytes = b"/docs") -> None:
        common = [
            (b"Cross-Origin-Opener-Policy", b"same-origin"),
            (b"Cross-Origin-Resource-Policy", b"same-origin"),
            (b"Origin-Agent-Cluster", b"?1"),
            (b"Referrer-Policy", b"no-referrer"),
            (b"Strict-Transport-Security", b"max-age=31536000; includeSubDomains"),
            (b"X-Content-Type-Options", b"nosniff"),
            (b"X-DNS-Prefetch-Control", b"off"),
            (b"X-Download-Options", b"noopen"),
            (b"X-Frame-Options", b"DENY"),
            (b"X-Permitted-Cross-Domain-Policies", b"none"),
            (b"X-XSS-Protection", b"0"),
            (b"Cache-Control", b"no-store"),
            # The server would otherwise announce itself by name; say only what this is.
            (b"Server", b"strongroom"),
        ]
        self._api = [
            *common,
            (b"Content-Security-Policy", b"default-src 'none'; frame-ancestors 'none'"),
        ]
        self._docs = [
            *common,
            (
                b"Content-Security-Policy",
                b"default-src 'none'; script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
                b"style-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
                b"img-src 'self' data: https://cdn.jsdelivr.net; connect-src 'self'; "
                b"frame-ancestors 'none'",
            ),
        ]
        self._docs_path = docs_path

    def apply(self, request: Request, response: Response) -> None:
        path = request._path  # type: ignore[attr-defined]  # the raw path bytes
        headers = self._docs if path == self._docs_path else self._api
        for name, value in headers:
            response.add_header(name, value)


class AuthenticationMiddleware:
    """Resolves ``Authorization: Bearer srk_…`` on ``/v1/`` paths to a :class:`Principal`, then
    holds the key to its rate when there is a limiter.

    Keys are looked up by id and the secret compared in constant time against its stored hash.
    Unknown, malformed and revoked keys get the same 401, so nothing tells them apart. Requests
    over the key's rate get 429 with ``Retry-After`` and ``RateLimit-*`` headers
    (draft-ietf-httpapi-ratelimit-headers); both refusals are audited.
    """

    def __init__(
        self, tenants: TenantRepository, audit: AuditSink, limiter: RateLimiter | None = None
    ) -> None:
        self._tenants = tenants
        self._audit = audit
        self._limiter = limiter

    async def __call__(self, request: Request, handler: Handler) -> Response:
        if not request._path.startswith(b"/v1/"):  # type: ignore[attr-defined]  # raw path bytes
            return await handler(request)
        header = request.get_first_header(b"authorization")
        principal = await self._authenticate(header)
        if principal is None:
            await self._denied(request, None)
            raise domain.Unauthenticated("a valid API key is required: Authorization: Bearer srk_…")
        request.principal = principal  # type: ignore[attr-defined]
        decision = None
        if self._limiter is not None:
            decision = await self._limiter.check(principal.key_id)
            if not decision.allowed:
                await audit_refusal(self._audit, request, principal, "ratelimit.exceeded")
                raise HttpProblem(
                    429,
                    "rate-limited",
                    "too many requests for this API key; retry later",
                    headers=decision.headers(),
                )
        try:
            response = await handler(request)
        except domain.Forbidden:
            await self._denied(request, principal)
            raise
        if decision is not None:
            for name, value in decision.headers():
                response.set_header(name, value)
        return response

    async def _authenticate(self, header: bytes | None) -> Principal | None:
        if not header or header[:7].lower() != b"bearer ":
            return None
        try:
            token = header[7:].strip().decode("ascii")
        except UnicodeDecodeError:
            return None
        parts = parse_api_key(token)
        if parts is None:
            return None
        key_id, secret = parts
        found = await self._tenants.principal_for(key_id)
        if found is None:
            return None
        stored_hash, principal = found
        return principal if secret_matches(secret, stored_hash) else None

    async def _denied(self, request: Request, principal: Principal | None) -> None:
        await audit_refusal(self._audit, request, principal, "auth.denied")


async def audit_refusal(
    audit: AuditSink, request: Request, principal: Principal | None, action: str
) -> None:
    """Record a refused request (by route template, never the raw path). The refusal stands
    even if the audit store cannot take the event: it is logged instead."""
    event = AuditEvent.of(
        call_context(request, principal),
        action,
        outcome="denied",
        resource=request.method + " " + getattr(request, "route_template", "*"),
    )
    try:
        await audit.emit(event)
    except domain.ServiceUnavailable:
        log.warning("could not audit a refused request (%s)", action)


def call_context(request: Request, principal: Principal | None) -> CallContext:
    return CallContext(
        actor=principal.key_id if principal else None,
        tenant_id=principal.tenant_id if principal else None,
        request_id=getattr(request, "request_id", None),
        client=request.client_ip,
    )
