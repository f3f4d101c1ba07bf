"""JSON and problem+json responses (RFC 9457), rendered with orjson."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
from blacksheep import Content, Response

JSON = b"application/json"
PROBLEM_JSON = b"application/problem+json"
PROBLEM_BASE = "https://strongroom.dev/problems/"


def json_response(
    payload: Any, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None
) -> Response:
    return Response(status, headers, Content(JSON, orjson.dumps(payload)))


def problem(
    status: int,
    slug: str,
    detail: str,
    *,
    request_id: str | None,
    errors: list[dict[str, str]] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> Response:
    """An RFC 9457 problem document; ``type`` is a stable URI per kind of problem."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "request_id": request_id,
    }
    if errors:
        body["errors"] = errors
    return Response(status, headers, Content(PROBLEM_JSON, orjson.dumps(body)))
