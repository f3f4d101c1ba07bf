"""Data subjects: export (GDPR Art. 15) and erasure (Art. 17)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from blacksheep import Request, Response, StreamedContent

from strongroom.domain.subjects import SubjectService
from strongroom.http.middleware import call_context
from strongroom.http.responses import json_response
from strongroom.http.routes.records import principal_of
from strongroom.http.routing import Endpoint, RouteTable, route_value

EXPORT = "/v1/subjects/{subject_id}/export"
SUBJECT = "/v1/subjects/{subject_id}"

_SUBJECT_ID = {
    "name": "subject_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 256},
    "description": "The subject id as given when records were created, percent-encoded.",
}
_SIGNED = {
    "algorithm": {"type": "string", "enum": ["ed25519"]},
    "key_id": {"type": "string", "description": "Id of the service signing key."},
    "signature": {
        "type": "string",
        "description": "Base64 Ed25519 signature over the canonical JSON (sorted keys, "
        "compact) of this object without `signature`.",
    },
}
BUNDLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "records": {"type": "array", "items": {"type": "object"}},
        "schemas": {"type": "object", "additionalProperties": {"type": "object"}},
        "access_history": {"type": "array", "items": {"type": "object"}},
        "manifest": {
            "type": "object",
            "properties": {
                "format": {"type": "string", "enum": ["strongroom.subject-export/v1"]},
                "tenant_id": {"type": "string", "format": "uuid"},
                "subject": {"type": "string", "description": "Keyed pseudonym (hex)."},
                "generated_at": {"type": "string", "format": "date-time"},
                "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                "sections": {
                    "type": "object",
                    "description": "SHA-256 (hex) of each section's canonical JSON.",
                    "additionalProperties": {"type": "string"},
                },
                **_SIGNED,
            },
        },
    },
}
RECEIPT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "format": {"type": "string", "enum": ["strongroom.erasure-receipt/v1"]},
        "tenant_id": {"type": "string", "format": "uuid"},
        "subject": {"type": "string", "description": "Keyed pseudonym (hex)."},
        "erased_at": {"type": "string", "format": "date-time"},
        "records_deleted": {"type": "integer"},
        "keys_destroyed": {"type": "integer"},
        "audit_event_id": {"type": "string", "format": "uuid"},
        "already_erased": {"type": "boolean"},
        **_SIGNED,
    },
}


def install(table: RouteTable, subjects: SubjectService) -> None:
    async def export_subject(request: Request) -> Response:
        principal = principal_of(request)
        export = await subjects.export(
            principal, call_context(request, principal), route_value(request, "subject_id")
        )

        async def provider() -> AsyncIterator[bytes]:
            async for chunk in export.chunks():
                yield chunk

        filename = f'attachment; filename="subject-{export.subject[:16]}.json"'.encode()
        return Response(
            200,
            [(b"Content-Disposition", filename)],  # Cache-Control: no-store, as on every answer
            StreamedContent(b"application/json", provider),
        )

    async def erase_subject(request: Request) -> Response:
        principal = principal_of(request)
        receipt = await subjects.erase(
            principal, call_context(request, principal), route_value(request, "subject_id")
        )
        return json_response(receipt)

    errors = {
        400: "Malformed subject id",
        401: "No valid API key",
        403: "Scope missing",
        503: "A dependency is unavailable",
    }
    table.add(
        Endpoint(
            "GET",
            EXPORT,
            export_subject,
            "Export everything about a data subject (GDPR Art. 15)",
            "subjects",
            scope="subjects:export",
            description="A JSON bundle, streamed: `records` (every record of the subject in every "
            "collection of the tenant, in plaintext), `schemas` (the schemas of those "
            "collections), `access_history` (the audit events about the subject: who, when, "
            "action, resource, fields, purpose, outcome) and, last, a `manifest` with counts, the "
            "SHA-256 of each section's canonical JSON and an Ed25519 signature by the service key "
            "(`strongroom audit public-key`; check a saved bundle with `strongroom verify-bundle`)"
            ". The export itself is audited (`subject.export`) before the first byte leaves. An "
            "unknown or erased subject answers 404.",
            parameters=[_SUBJECT_ID],
            response_schema=BUNDLE_SCHEMA,
            responses={200: "The bundle", 404: "Unknown or erased subject", **errors},
        )
    )
    table.add(
        Endpoint(
            "DELETE",
            SUBJECT,
            erase_subject,
            "Erase a data subject (GDPR Art. 17)",
            "subjects",
            scope="subjects:erase",
            description="Crypto-shredding: the subject's data keys are destroyed in the key store "
            "(and evicted from every replica's cache), then its records and their blind-index "
            "entries are deleted together with the `subject.erase` audit event. Copies of the "
            "ciphertext elsewhere (backups) can no longer be decrypted. Answers a signed receipt. "
            "Idempotent: erasing an erased subject answers 200 with `already_erased: true` and "
            "zero counts. A legal hold on the subject or the tenant refuses with 409 and changes "
            "nothing.",
            parameters=[_SUBJECT_ID],
            response_schema=RECEIPT_SCHEMA,
            responses={
                200: "Erased (or already erased): the signed receipt",
                404: "Unknown subject",
                409: "A legal hold blocks the erasure",
                **errors,
            },
        )
    )
