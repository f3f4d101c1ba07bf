"""Legal holds: keep a tenant's or a subject's audit trail (and the subject's data) untouched."""

from __future__ import annotations

from typing import Any

from blacksheep import Request, Response

from strongroom.audit.events import AuditEvent
from strongroom.domain.errors import BadRequest, FieldError, ValidationFailed
from strongroom.domain.keys import KeyService
from strongroom.domain.records import canonical_record_id, subject_id_problem
from strongroom.http.body import read_json
from strongroom.http.middleware import call_context
from strongroom.http.responses import json_response
from strongroom.http.routes.records import principal_of
from strongroom.http.routing import Endpoint, RouteTable, query_params, route_value
from strongroom.store.holds import LegalHold, LegalHoldRepository

HOLD_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["reason"],
    "properties": {
        "reason": {"type": "string", "minLength": 1, "maxLength": 1000},
        "subject_id": {"type": "string", "description": "Hold one subject; omit for the tenant."},
    },
    "example": {"reason": "litigation 2026-114", "subject_id": "customer-4711"},
}
HOLD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "scope": {"type": "string", "enum": ["tenant", "subject"]},
        "subject": {"type": ["string", "null"], "description": "Keyed pseudonym (hex)."},
        "reason": {"type": "string"},
        "created_by": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "released_at": {"type": ["string", "null"], "format": "date-time"},
        "released_by": {"type": ["string", "null"]},
    },
}


def hold_json(hold: LegalHold) -> dict[str, Any]:
    return {
        "id": hold.id,
        "scope": "subject" if hold.subject_ref is not None else "tenant",
        "subject": hold.subject_ref.hex() if hold.subject_ref is not None else None,
        "reason": hold.reason,
        "created_by": hold.created_by,
        "created_at": hold.created_at,
        "released_at": hold.released_at,
        "released_by": hold.released_by,
    }


def install(table: RouteTable, holds: LegalHoldRepository, keys: KeyService, max_body: int) -> None:
    async def place(request: Request) -> Response:
        principal = principal_of(request)
        principal.require("admin")
        body = await read_json(request, max_body)
        if not isinstance(body, dict):
            raise ValidationFailed(
                "the body must be a JSON object", [FieldError("", "expected object")]
            )
        errors = [
            FieldError(f"/{k}", "unknown member")
            for k in sorted(set(body) - {"reason", "subject_id"})
        ]
        reason = body.get("reason")
        if (
            not isinstance(reason, str)
            or not 0 < len(reason.strip()) <= 1000
            or not reason.isprintable()
        ):
            errors.append(FieldError("/reason", "1 to 1000 printable characters"))
        subject_id = body.get("subject_id")
        if subject_id is not None:
            problem = subject_id_problem(subject_id)
            if problem:
                errors.append(FieldError("/subject_id", problem))
        if errors:
            raise ValidationFailed("invalid legal hold", errors)
        assert isinstance(reason, str)
        subject_ref = None
        if isinstance(subject_id, str):
            subject_ref = (await keys.tenant_index(principal.tenant_id)).subject_ref(subject_id)
        event = AuditEvent.of(
            call_context(request, principal),
            "legal_hold.place",
            resource="legal-holds",
            subject_ref=subject_ref,
        )
        hold = await holds.place(
            principal.tenant_id, subject_ref, reason.strip(), principal.key_id, event
        )
        return json_response(hold_json(hold), 201)

    async def list_holds(request: Request) -> Response:
        principal = principal_of(request)
        principal.require("audit:read")
        unknown = set(query_params(request)) - {"active"}
        active = query_params(request).get("active", ["false"])
        if unknown or len(active) != 1 or active[0] not in ("true", "false"):
            raise BadRequest("the only parameter is active=true|false")
        found = await holds.find(principal.tenant_id, active_only=active[0] == "true")
        return json_response({"items": [hold_json(h) for h in found]})

    async def release(request: Request) -> Response:
        principal = principal_of(request)
        principal.require("admin")
        hold_id = canonical_record_id(route_value(request, "hold_id"))
        event = AuditEvent.of(
            call_context(request, principal),
            "legal_hold.release",
            resource=f"legal-holds/{hold_id}",
        )
        hold = await holds.release(principal.tenant_id, hold_id, principal.key_id, event)
        return json_response(hold_json(hold))

    errors = {400: "Malformed request", 401: "No valid API key", 403: "Scope missing"}
    table.add(
        Endpoint(
            "POST",
            "/v1/legal-holds",
            place,
            "Place a legal hold",
            "audit",
            scope="admin",
            description="While active, retention keeps the tenant's (or the subject's) audit "
            "events and the subject cannot be erased (409).",
            body=HOLD_BODY,
            response_schema=HOLD_SCHEMA,
            responses={
                201: "Placed",
                413: "Body too large",
                415: "Not JSON",
                422: "Invalid hold",
                **errors,
            },
        )
    )
    table.add(
        Endpoint(
            "GET",
            "/v1/legal-holds",
            list_holds,
            "List legal holds",
            "audit",
            scope="audit:read",
            parameters=[
                {"name": "active", "in": "query", "schema": {"type": "boolean", "default": False}}
            ],
            response_schema={
                "type": "object",
                "properties": {"items": {"type": "array", "items": HOLD_SCHEMA}},
            },
            responses={200: "The holds", **errors},
        )
    )
    table.add(
        Endpoint(
            "DELETE",
            "/v1/legal-holds/{hold_id}",
            release,
            "Release a legal hold",
            "audit",
            scope="admin",
            parameters=[
                {
                    "name": "hold_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "format": "uuid"},
                }
            ],
            response_schema=HOLD_SCHEMA,
            responses={200: "Released", 404: "No active hold with this id", **errors},
        )
    )
