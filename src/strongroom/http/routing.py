"""The route table: each endpoint is registered on the router together with what the OpenAPI
document says about it (scope, summary, body, responses), so the two cannot drift apart."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from blacksheep import Request, Response
from blacksheep.server.routing import Router

from strongroom.domain.errors import BadRequest

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    scope: str | None = None
    description: str = ""
    body: dict[str, Any] | None = None
    parameters: list[dict[str, Any]] = field(default_factory=list)
    responses: dict[int, str] = field(default_factory=dict)
    response_schema: dict[str, Any] | None = None
    media_type: str = "application/json"


class RouteTable:
    """Registers endpoints on an explicit BlackSheep router and remembers them for OpenAPI."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.endpoints: list[Endpoint] = []

    def add(self, endpoint: Endpoint) -> None:
        self.router.add(endpoint.method, endpoint.path, endpoint.handler)
        self.endpoints.append(endpoint)

    def paths(self) -> dict[str, list[str]]:
        """Path template -> allowed methods (for 405 answers)."""
        result: dict[str, list[str]] = {}
        for endpoint in self.endpoints:
            result.setdefault(endpoint.path, []).append(endpoint.method)
        return result


def route_value(request: Request, name: str) -> str:
    values = request.route_values or {}
    value = values.get(name)
    return value if isinstance(value, str) else ""


MAX_QUERY_FIELDS = 64


def query_params(request: Request) -> dict[str, list[str]]:
    """The query string as name -> values, strictly decoded.

    Unlike ``request.query``, blank values are kept (``?email=`` is a search for an empty value,
    not a silent listing of the whole collection) and bytes that are not UTF-8 are a 400, not an
    unhandled ``UnicodeDecodeError``.
    """
    # The raw bytes: request.url would fail on a query that is not UTF-8 before we could refuse.
    raw: bytes = request._raw_query or b""  # type: ignore[attr-defined]  # public on the class
    try:
        return parse_qs(
            raw.decode("utf-8"),
            keep_blank_values=True,
            errors="strict",
            max_num_fields=MAX_QUERY_FIELDS,
        )
    except ValueError:  # UnicodeDecodeError included
        raise BadRequest(
            f"the query string must be UTF-8 (percent-encoded) with at most {MAX_QUERY_FIELDS} "
            "parameters"
        ) from None
