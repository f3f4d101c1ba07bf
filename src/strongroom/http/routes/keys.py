"""Master key rotation: start it, follow it."""

from __future__ import annotations

from blacksheep import Request, Response

from strongroom.audit.events import AuditEvent
from strongroom.domain.ports import AuditSink
from strongroom.domain.records import RecordService
from strongroom.domain.rotation import KeyRotation
from strongroom.http.middleware import call_context
from strongroom.http.responses import json_response
from strongroom.http.routes.records import principal_of
from strongroom.http.routing import Endpoint, RouteTable, route_value

STATUS_SCHEMA = {
    "type": "object",
    "properties": {
        "active_version": {"type": "integer"},
        "configured_versions": {"type": "array", "items": {"type": "integer"}},
        "retired_versions": {"type": "array", "items": {"type": "integer"}},
        "keys_by_version": {"type": "object", "additionalProperties": {"type": "integer"}},
        "keys_to_rewrap": {"type": "integer"},
        "rotation": {"type": ["object", "null"]},
    },
}


def install(
    table: RouteTable, rotation: KeyRotation, audit: AuditSink, records: RecordService
) -> None:
    async def rotate(request: Request) -> Response:
        principal = principal_of(request)
        principal.require("admin")
        started = await rotation.rotate(principal.key_id)
        await audit.emit(
            AuditEvent.of(
                call_context(request, principal),
                "key.rotate",
                resource=f"keys/master/versions/{started.target_version}",
            )
        )
        return json_response((await rotation.status()).as_dict(), 202)

    async def status(request: Request) -> Response:
        principal_of(request).require("admin")
        return json_response((await rotation.status()).as_dict())

    async def rotate_subject_key(request: Request) -> Response:
        principal = principal_of(request)
        result = await records.rotate_subject_key(
            principal, call_context(request, principal), route_value(request, "subject_id")
        )
        return json_response(result)

    errors = {
        401: "No valid API key",
        403: "admin scope missing",
        503: "The key provider is unavailable",
    }
    table.add(
        Endpoint(
            "POST",
            "/v1/keys/rotate",
            rotate,
            "Start a master key rotation",
            "keys",
            scope="admin",
            description="Makes the newest master key version active (Vault Transit: creates it) "
            "and starts re-wrapping every data key to it in the background; data is not "
            "re-encrypted and old versions keep decrypting until retired. 409 while a rotation "
            "runs, or when every key already uses the active version.",
            response_schema=STATUS_SCHEMA,
            responses={
                202: "Started; the body is the key status",
                409: "Nothing to rotate, or a rotation is already running",
                **errors,
            },
        )
    )
    table.add(
        Endpoint(
            "GET",
            "/v1/keys/status",
            status,
            "Master key status and rotation progress",
            "keys",
            scope="admin",
            response_schema=STATUS_SCHEMA,
            responses={200: "The key status", **errors},
        )
    )
    table.add(
        Endpoint(
            "POST",
            "/v1/subjects/{subject_id}/rotate-key",
            rotate_subject_key,
            "Rotate a subject's data key",
            "keys",
            scope="admin",
            description="Creates a new data key version for the subject, re-encrypts every "
            "record of the subject under it in one transaction (audited as key.rotate), then "
            "destroys the old versions.",
            parameters=[
                {
                    "name": "subject_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 256},
                }
            ],
            response_schema={
                "type": "object",
                "properties": {
                    "subject": {"type": "string"},
                    "dek_version": {"type": "integer"},
                    "records_reencrypted": {"type": "integer"},
                    "old_keys_destroyed": {"type": "integer"},
                    "audit_event_id": {"type": "string"},
                },
            },
            responses={
                200: "Rotated",
                400: "Malformed subject id",
                404: "Unknown subject",
                409: "A concurrent rotation changed the key; retry",
                **errors,
            },
        )
    )
