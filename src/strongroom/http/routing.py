"""The route table: each endpoint is registered on the router together with what the OpenAPI
document says about it (scope, summary, body, responses), so the two cannot drift apart."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from blacksheep import Request, Response
from blacksheep.server.routing import Router

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
