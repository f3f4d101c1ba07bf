"""One place that maps domain exceptions to problem+json responses."""

from __future__ import annotations

import logging

from blacksheep import Response

from strongroom.domain import errors as domain
from strongroom.http.responses import problem
from strongroom.store.errors import database_unavailable

log = logging.getLogger("strongroom.http")

# exception class -> (status, problem slug); the first matching base class wins.
_MAPPING: tuple[tuple[type[domain.DomainError], int, str], ...] = (
    (domain.Unauthenticated, 401, "unauthenticated"),
    (domain.Forbidden, 403, "forbidden"),
    (domain.NotFound, 404, "not-found"),
    (domain.ValidationFailed, 422, "validation-failed"),
    (domain.Conflict, 409, "conflict"),
    (domain.PreconditionFailed, 412, "precondition-failed"),
    (domain.AuditUnavailable, 503, "audit-unavailable"),
    (domain.ServiceUnavailable, 503, "service-unavailable"),
    (domain.IntegrityFailure, 500, "integrity-failure"),
    (domain.BadRequest, 400, "bad-request"),
)


class HttpProblem(Exception):
    """An HTTP-level refusal raised by the HTTP layer itself (415, 413, 405, malformed JSON)."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.headers = headers


def to_response(exc: BaseException, request_id: str | None) -> Response:
    if isinstance(exc, HttpProblem):
        return problem(exc.status, exc.slug, exc.detail, request_id=request_id, headers=exc.headers)
    if isinstance(exc, domain.DomainError):
        for kind, status, slug in _MAPPING:
            if isinstance(exc, kind):
                if isinstance(exc, domain.IntegrityFailure):
                    log.error("integrity failure: %s", exc.detail)
                headers = [(b"Retry-After", b"1")] if status == 503 else None
                if status == 401:
                    headers = [(b"WWW-Authenticate", b'Bearer realm="strongroom"')]
                errors = [{"location": e.location, "message": e.message} for e in exc.errors]
                return problem(
                    status,
                    slug,
                    exc.detail,
                    request_id=request_id,
                    errors=errors or None,
                    headers=headers,
                )
    if database_unavailable(exc):
        log.warning("database unavailable: %s", type(exc).__name__)
        return problem(
            503,
            "service-unavailable",
            "the database is unavailable; retry shortly",
            request_id=request_id,
            headers=[(b"Retry-After", b"1")],
        )
    log.exception("unhandled error", exc_info=exc)
    return problem(
        500,
        "internal",
        "the service failed to handle this request; quote the request id when reporting it",
        request_id=request_id,
    )
