"""The OpenAPI 3.1 document, built from the route table, and the docs page that renders it."""

from __future__ import annotations

import re
from typing import Any

import orjson
from blacksheep import Content, Request, Response

from strongroom import __version__
from strongroom.domain.access import SCOPES
from strongroom.http.dto import PROBLEM_SCHEMA
from strongroom.http.routing import Endpoint, RouteTable

_DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Strongroom API</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head><body><div id="ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
</body></html>"""

_DESCRIPTION = """A compliance-first vault for sensitive records.

Every sensitive field is encrypted (AES-256-GCM under a per-subject key); reads answer masked
values; plaintext is revealed only to keys with the `records:reveal` scope and a stated purpose
(`X-Purpose`). Every access is audited. Errors are RFC 9457 `application/problem+json` with the
`request_id` that every response also carries in `X-Request-ID`.

Authenticate with `Authorization: Bearer srk_…`. Scopes: """ + ", ".join(f"`{s}`" for s in SCOPES)


def build_document(endpoints: list[Endpoint]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Strongroom", "version": __version__, "description": _DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": {"Problem": PROBLEM_SCHEMA},
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "bearerFormat": "srk_ API key"}
            },
        },
    }


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    needs_key = endpoint.path.startswith("/v1/")
    description = endpoint.description
    if endpoint.scope:
        description = f"**Scope:** `{endpoint.scope}`.\n\n{description}".strip()
    operation: dict[str, Any] = {
        "operationId": _operation_id(endpoint),
        "summary": endpoint.summary,
        "description": description,
        "tags": [endpoint.tag],
        "parameters": [p for p in endpoint.parameters if p["name"] != "{field}"],
        "responses": {},
    }
    if needs_key:
        operation["security"] = [{"apiKey": []}]
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": endpoint.body}},
        }
    for status, text in sorted(endpoint.responses.items()):
        response: dict[str, Any] = {"description": text}
        if status >= 400:
            response["content"] = {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            }
        elif status != 204 and endpoint.response_schema is not None:
            response["content"] = {endpoint.media_type: {"schema": endpoint.response_schema}}
        operation["responses"][str(status)] = response
    if needs_key:
        for status, text in ((429, "Rate limited"), (500, "Unexpected failure")):
            operation["responses"].setdefault(
                str(status),
                {
                    "description": text,
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    },
                },
            )
    return operation


def _operation_id(endpoint: Endpoint) -> str:
    words = re.sub(r"[{}]", "", endpoint.path).strip("/").replace("/", "_")
    return f"{endpoint.method.lower()}_{words}"


def install(table: RouteTable) -> None:
    cached: dict[str, bytes] = {}

    async def openapi_json(request: Request) -> Response:
        if "doc" not in cached:
            cached["doc"] = orjson.dumps(build_document(table.endpoints))
        return Response(200, None, Content(b"application/json", cached["doc"]))

    async def docs(request: Request) -> Response:
        return Response(200, None, Content(b"text/html; charset=utf-8", _DOCS_HTML.encode()))

    table.add(
        Endpoint(
            "GET",
            "/openapi.json",
            openapi_json,
            "This OpenAPI document",
            "docs",
            responses={200: "OpenAPI 3.1"},
        )
    )
    table.add(
        Endpoint(
            "GET",
            "/docs",
            docs,
            "Interactive API documentation",
            "docs",
            responses={200: "HTML"},
            media_type="text/html",
        )
    )
