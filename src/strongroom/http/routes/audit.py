"""The audit trail for compliance officers: search, streamed export, compliance report."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import asyncpg
from blacksheep import Content, Request, Response, StreamedContent

from strongroom.audit import query
from strongroom.audit.events import AuditEvent
from strongroom.audit.signing import PublicKeys
from strongroom.audit.verify import verify_chain
from strongroom.domain.errors import BadRequest
from strongroom.domain.keys import KeyService
from strongroom.domain.ports import AuditSink
from strongroom.http.middleware import call_context
from strongroom.http.responses import json_response
from strongroom.http.routes.records import principal_of
from strongroom.http.routing import Endpoint, RouteTable, query_params

ReportExtras = Callable[[str], Awaitable[dict[str, Any]]]

_FILTER_PARAMETERS = [
    {"name": "actor", "in": "query", "schema": {"type": "string"}, "description": "API key id."},
    {
        "name": "action",
        "in": "query",
        "schema": {"type": "string"},
        "description": "e.g. record.reveal; a trailing * matches a prefix (record.*).",
    },
    {
        "name": "resource",
        "in": "query",
        "schema": {"type": "string"},
        "description": "e.g. collections/customers/records/<id>; a trailing * matches a prefix.",
    },
    {
        "name": "subject",
        "in": "query",
        "schema": {"type": "string"},
        "description": "A subject id; matched through its pseudonym (the trail never holds it).",
    },
    {"name": "purpose", "in": "query", "schema": {"type": "string"}},
    {"name": "outcome", "in": "query", "schema": {"type": "string", "enum": list(query.OUTCOMES)}},
    {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
    {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}},
]
EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "seq": {"type": "integer"},
        "occurred_at": {"type": "string", "format": "date-time"},
        "tenant_id": {"type": "string"},
        "actor": {"type": ["string", "null"]},
        "action": {"type": "string"},
        "resource": {"type": ["string", "null"]},
        "subject": {"type": ["string", "null"], "description": "Keyed pseudonym (hex)."},
        "fields": {"type": "array", "items": {"type": "string"}},
        "purpose": {"type": ["string", "null"]},
        "outcome": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
        "trace_id": {"type": ["string", "null"]},
        "client": {"type": ["string", "null"]},
    },
}


def _one(request: Request, name: str, allowed: tuple[str, ...], default: str) -> str:
    values = query_params(request).get(name, [])
    if not values:
        return default
    if len(values) != 1 or values[0] not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(allowed)}")
    return values[0]


def install(
    table: RouteTable,
    pool: asyncpg.Pool,
    keys: KeyService,
    audit: AuditSink,
    page_size_max: int,
    report_extras: ReportExtras | None = None,
    chain_keys: PublicKeys | None = None,
) -> None:
    async def event_filter(request: Request, extra: tuple[str, ...]) -> query.EventFilter:
        principal = principal_of(request)
        principal.require("audit:read")
        index = await keys.tenant_index(principal.tenant_id)
        return query.parse_filter(
            principal.tenant_id, query_params(request), index.subject_ref, extra
        )

    async def search_events(request: Request) -> Response:
        where = await event_filter(request, ("limit", "cursor"))
        limit_values = query_params(request).get("limit", ["50"])
        raw = limit_values[0] if len(limit_values) == 1 else ""
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= page_size_max:
            raise BadRequest(f"limit must be an integer from 1 to {page_size_max}")
        cursors = query_params(request).get("cursor", [])
        if len(cursors) > 1:
            raise BadRequest("give cursor once")
        before = query.decode_cursor(cursors[0]) if cursors else None
        principal = principal_of(request)
        await audit.emit(
            AuditEvent.of(call_context(request, principal), "audit.read", resource="audit/events")
        )
        items, cursor = await query.search(pool, where, before, int(raw))
        return json_response({"items": items, "next_cursor": cursor})

    async def export_events(request: Request) -> Response:
        where = await event_filter(request, ("format",))
        fmt = _one(request, "format", query.EXPORT_FORMATS, "jsonl")
        principal = principal_of(request)
        # The export is recorded (durably) before the first byte leaves.
        await audit.emit(
            AuditEvent.of(
                call_context(request, principal), "audit.export", resource=f"audit/export.{fmt}"
            )
        )

        async def provider() -> AsyncIterator[bytes]:
            async for chunk in query.stream_export(pool, where, fmt):
                yield chunk

        media = b"application/x-ndjson" if fmt == "jsonl" else b"text/csv; charset=utf-8"
        filename = f'attachment; filename="audit-{principal.tenant_name}.{fmt}"'.encode()
        return Response(200, [(b"Content-Disposition", filename)], StreamedContent(media, provider))

    async def compliance_report(request: Request) -> Response:
        principal = principal_of(request)
        principal.require("audit:read")
        unknown = sorted(set(query_params(request)) - {"since", "until", "format"})
        if unknown:
            raise BadRequest(f"the report takes only since, until and format, not {unknown[0]}")
        where = query.parse_filter(principal.tenant_id, query_params(request), None, ("format",))
        fmt = _one(request, "format", ("json", "csv"), "json")
        await audit.emit(
            AuditEvent.of(
                call_context(request, principal), "audit.read", resource="compliance/report"
            )
        )
        figures = await query.report_figures(pool, principal.tenant_id, where.since, where.until)
        report: dict[str, Any] = {
            "tenant": principal.tenant_name,
            "generated_at": datetime.now().astimezone(),
            "window": {"since": where.since, "until": where.until},
            **figures,
        }
        if report_extras is not None:
            report.update(await report_extras(principal.tenant_id))
        if fmt == "json":
            return json_response(report)
        return Response(
            200,
            [(b"Content-Disposition", b'attachment; filename="compliance-report.csv"')],
            _csv_content(report),
        )

    async def verify_trail(request: Request) -> Response:
        principal = principal_of(request)
        principal.require("audit:read")
        await audit.emit(
            AuditEvent.of(call_context(request, principal), "audit.read", resource="audit/verify")
        )
        async with pool.acquire() as connection:
            report = await verify_chain(connection, chain_keys or {})
        # The chain spans every tenant: other tenants' event ids are left out of the answer.
        return json_response(report.as_dict(tenant_id=principal.tenant_id))

    if chain_keys is not None:
        table.add(
            Endpoint(
                "GET",
                "/v1/audit/verify",
                verify_trail,
                "Verify the audit trail's hash chain",
                "audit",
                scope="audit:read",
                description="Recomputes every sealed event's hash from its content and its "
                "predecessor, from the retention anchor (or the first event) to the chain head, "
                "checks the signed checkpoints on the way, and reports the first broken link: "
                "changed, missing, inserted or reordered events, forged or mismatched "
                "checkpoints. Also counts events not sealed yet. `ok` is false when anything "
                "is wrong; the answer is 200 either way.",
                response_schema={"type": "object"},
                responses={
                    200: "The verification report",
                    401: "No valid API key",
                    403: "audit:read scope missing",
                },
            )
        )

    errors = {
        400: "Bad cursor, limit or format",
        401: "No valid API key",
        403: "audit:read scope missing",
        422: "Invalid filter",
    }
    table.add(
        Endpoint(
            "GET",
            "/v1/audit/events",
            search_events,
            "Search audit events",
            "audit",
            scope="audit:read",
            description="Newest first, filtered by actor, action, resource, subject, purpose, "
            "outcome and time; `next_cursor` continues with older events. Events never contain "
            "field values; subjects appear as keyed pseudonyms. The search is itself audited.",
            parameters=[
                *_FILTER_PARAMETERS,
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50},
                },
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            ],
            response_schema={
                "type": "object",
                "properties": {
                    "items": {"type": "array", "items": EVENT_SCHEMA},
                    "next_cursor": {"type": ["string", "null"]},
                },
            },
            responses={200: "A page of events", **errors},
        )
    )
    table.add(
        Endpoint(
            "GET",
            "/v1/audit/export",
            export_events,
            "Export audit events (streamed)",
            "audit",
            scope="audit:read",
            description="Streams every matching event, oldest first, as JSON lines or CSV (the "
            "`fields` column holds a JSON array). Memory stays flat at any size. The export is "
            "audited before it starts.",
            parameters=[
                *_FILTER_PARAMETERS,
                {
                    "name": "format",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["jsonl", "csv"], "default": "jsonl"},
                },
            ],
            response_schema=EVENT_SCHEMA,
            media_type="application/x-ndjson",
            responses={200: "The events", **errors},
        )
    )
    table.add(
        Endpoint(
            "GET",
            "/v1/compliance/report",
            compliance_report,
            "Compliance report",
            "audit",
            scope="audit:read",
            description="Reveals per actor and purpose, exports, erasures, key rotations, denied "
            "requests, retention state and chain status, for an optional time window.",
            parameters=[
                _FILTER_PARAMETERS[-2],
                _FILTER_PARAMETERS[-1],
                {
                    "name": "format",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["json", "csv"], "default": "json"},
                },
            ],
            response_schema={"type": "object"},
            responses={200: "The report", **errors},
        )
    )


def _csv_content(report: dict[str, Any]) -> Content:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["section", "key", "value"])
    for row in _flatten("", report):
        writer.writerow(row)
    return Content(b"text/csv; charset=utf-8", buffer.getvalue().encode())


def _flatten(prefix: str, value: Any) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            rows.extend(_flatten(f"{prefix}.{key}" if prefix else str(key), item))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            rows.extend(_flatten(f"{prefix}[{position}]", item))
    else:
        section, _, key = prefix.rpartition(".")
        text = (
            value.isoformat()
            if isinstance(value, datetime)
            else ("" if value is None else str(value))
        )
        rows.append((section, key, text))
    return rows
