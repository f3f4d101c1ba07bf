"""Collections and records."""

from __future__ import annotations

from blacksheep import Request, Response

from strongroom.domain.access import PURPOSE_HEADER, Principal
from strongroom.domain.collections import CollectionService
from strongroom.domain.errors import BadRequest
from strongroom.domain.records import RecordService
from strongroom.http import dto
from strongroom.http.body import read_json
from strongroom.http.middleware import call_context
from strongroom.http.responses import json_response
from strongroom.http.routing import Endpoint, RouteTable, query_params, route_value

COLLECTION = "/v1/collections/{name}"
RECORDS = "/v1/collections/{name}/records"
RECORD = "/v1/collections/{name}/records/{record_id}"

_NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "Collection name: 1-63 of a-z, 0-9, _ (letter first).",
}
_ID = {
    "name": "record_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}
_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "The record's ETag; the change is refused with 412 if it moved on.",
}


def principal_of(request: Request) -> Principal:
    principal: Principal = request.principal  # type: ignore[attr-defined]
    return principal


def if_match(request: Request) -> int | None:
    header = request.get_first_header(b"if-match")
    if header is None:
        return None
    text = header.decode("latin-1").strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise BadRequest('If-Match must be an ETag this service issued, e.g. "3"')
    return int(text)


def install(
    table: RouteTable, collections: CollectionService, records: RecordService, max_body: int
) -> None:
    async def put_collection(request: Request) -> Response:
        principal = principal_of(request)
        principal.require("admin")
        body = await read_json(request, max_body)
        stored, created = await collections.put(
            principal, call_context(request, principal), route_value(request, "name"), body
        )
        return json_response(dto.collection_json(stored), 201 if created else 200)

    async def get_collection(request: Request) -> Response:
        stored = await collections.get(principal_of(request), route_value(request, "name"))
        return json_response(dto.collection_json(stored))

    async def create_record(request: Request) -> Response:
        principal = principal_of(request)
        principal.require("records:write")
        body = await read_json(request, max_body)
        view = await records.create(
            principal, call_context(request, principal), route_value(request, "name"), body
        )
        location = f"/v1/collections/{view.collection}/records/{view.id}".encode()
        return json_response(
            dto.record_json(view), 201, [(b"Location", location), (b"ETag", dto.etag(view.version))]
        )

    async def get_record(request: Request) -> Response:
        principal = principal_of(request)
        reveal_values = query_params(request).get("reveal", [])
        reveal = [
            name.strip() for value in reveal_values for name in value.split(",") if name.strip()
        ]
        if reveal_values and not reveal:
            raise BadRequest("reveal needs a comma-separated list of field names")
        purpose = request.get_first_header(PURPOSE_HEADER.lower().encode())
        view = await records.read(
            principal,
            call_context(request, principal),
            route_value(request, "name"),
            route_value(request, "record_id"),
            reveal,
            purpose.decode("utf-8", "replace") if purpose is not None else None,
        )
        return json_response(dto.record_json(view), headers=[(b"ETag", dto.etag(view.version))])

    async def patch_record(request: Request) -> Response:
        principal = principal_of(request)
        principal.require("records:write")
        expected = if_match(request)
        body = await read_json(request, max_body)
        view = await records.update(
            principal,
            call_context(request, principal),
            route_value(request, "name"),
            route_value(request, "record_id"),
            body,
            expected,
        )
        return json_response(dto.record_json(view), headers=[(b"ETag", dto.etag(view.version))])

    async def delete_record(request: Request) -> Response:
        principal = principal_of(request)
        await records.delete(
            principal,
            call_context(request, principal),
            route_value(request, "name"),
            route_value(request, "record_id"),
            if_match(request),
        )
        return Response(204)

    async def search_records(request: Request) -> Response:
        principal = principal_of(request)
        page = await records.search(
            principal,
            call_context(request, principal),
            route_value(request, "name"),
            query_params(request),
        )
        return json_response(dto.page_json(page))

    errors = {
        400: "Malformed request",
        401: "No valid API key",
        403: "Scope missing",
        404: "Unknown collection or record",
        503: "A dependency is unavailable",
    }
    table.add(
        Endpoint(
            "PUT",
            COLLECTION,
            put_collection,
            "Create or replace a collection schema",
            "collections",
            scope="admin",
            description="Declares the fields of a collection: type, whether it is sensitive "
            "(encrypted, masked on read), searchable (blind index) and its mask policy. While "
            "records exist, fields cannot be removed or change type, sensitivity or searchability.",
            body=dto.COLLECTION_BODY,
            parameters=[_NAME],
            response_schema=dto.COLLECTION_SCHEMA,
            responses={
                200: "Replaced",
                201: "Created",
                409: "Change conflicts with stored records",
                413: "Body too large",
                415: "Not JSON",
                422: "Invalid schema",
                **errors,
            },
        )
    )
    table.add(
        Endpoint(
            "GET",
            COLLECTION,
            get_collection,
            "Read a collection schema",
            "collections",
            scope="records:read",
            parameters=[_NAME],
            response_schema=dto.COLLECTION_SCHEMA,
            responses={200: "The schema", **errors},
        )
    )
    table.add(
        Endpoint(
            "POST",
            RECORDS,
            create_record,
            "Create a record",
            "records",
            scope="records:write",
            description="Validates the data against the collection schema, encrypts every "
            "sensitive field under the subject's data key (AES-256-GCM) and answers the masked "
            "view.",
            body=dto.RECORD_CREATE,
            parameters=[_NAME],
            response_schema=dto.RECORD_SCHEMA,
            responses={
                201: "Created (masked view)",
                413: "Body too large",
                415: "Not JSON",
                422: "Data does not match the schema",
                **errors,
            },
        )
    )
    table.add(
        Endpoint(
            "GET",
            RECORDS,
            search_records,
            "Search or list records",
            "records",
            scope="records:read",
            description="Exact match on searchable fields (`?email=jane@example.com`), all given "
            "filters must match; without filters lists the collection. Cursor pagination: pass "
            "`next_cursor` back as `cursor`.",
            parameters=[
                _NAME,
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                },
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "{field}",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "Any searchable field, exact match after normalisation.",
                },
            ],
            response_schema=dto.PAGE_SCHEMA,
            responses={
                200: "A page of masked records",
                422: "Unknown or unsearchable field",
                **errors,
            },
        )
    )
    table.add(
        Endpoint(
            "GET",
            RECORD,
            get_record,
            "Read a record (masked, or revealed with a purpose)",
            "records",
            scope="records:read (records:reveal to reveal)",
            description="Answers masked values. `?reveal=f1,f2` returns those fields in plaintext; "
            "it needs the records:reveal scope and an `X-Purpose` header naming one of the "
            "tenant's purposes (default: support, fraud_investigation, billing, legal, "
            "data_subject_request, security_incident). Every read and reveal is audited before "
            "the answer leaves.",
            parameters=[
                _NAME,
                _ID,
                {
                    "name": "reveal",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "Comma-separated sensitive field names to return in plaintext.",
                },
                {
                    "name": "X-Purpose",
                    "in": "header",
                    "schema": {"type": "string"},
                    "description": "Why plaintext is needed; required with reveal.",
                },
            ],
            response_schema=dto.RECORD_SCHEMA,
            responses={200: "The record", 422: "Unknown or non-sensitive reveal field", **errors},
        )
    )
    table.add(
        Endpoint(
            "PATCH",
            RECORD,
            patch_record,
            "Update fields of a record",
            "records",
            scope="records:write",
            description="Partial update; `null` removes an optional field. Send `If-Match` with "
            "the ETag you read to refuse lost updates (412).",
            body=dto.RECORD_PATCH,
            parameters=[_NAME, _ID, _IF_MATCH],
            response_schema=dto.RECORD_SCHEMA,
            responses={
                200: "Updated (masked view)",
                412: "Version moved on",
                413: "Body too large",
                415: "Not JSON",
                422: "Data does not match the schema",
                **errors,
            },
        )
    )
    table.add(
        Endpoint(
            "DELETE",
            RECORD,
            delete_record,
            "Delete a record",
            "records",
            scope="records:write",
            parameters=[_NAME, _ID, _IF_MATCH],
            responses={204: "Deleted", 412: "Version moved on", **errors},
        )
    )
