"""Assertions shared by the HTTP integration tests: RFC 9457 problem documents."""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "request_id"})
PROBLEM_JSON = "application/problem+json"


def assert_problem(
    response: httpx.Response, status: int, slug: str | None = None
) -> dict[str, Any]:
    """``response`` is a problem+json document with ``status`` (and type ``…/slug``)."""
    assert response.status_code == status, response.text
    return assert_problem_shape(response, slug)


def assert_problem_shape(response: httpx.Response, slug: str | None = None) -> dict[str, Any]:
    """Whatever the status: problem+json with every required member, echoing the request id."""
    content_type = response.headers.get("content-type", "")
    assert content_type.split(";")[0].strip() == PROBLEM_JSON, (content_type, response.text)
    body = response.json()
    assert isinstance(body, dict), body
    missing = PROBLEM_MEMBERS - body.keys()
    assert not missing, (missing, body)
    assert body["status"] == response.status_code
    assert isinstance(body["type"], str)
    assert body["type"].startswith("https://"), body["type"]
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    if slug is not None:
        assert body["type"].endswith("/" + slug), body["type"]
    return body
