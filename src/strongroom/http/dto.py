"""Rendering domain objects as JSON documents, and the JSON Schemas that describe them."""

from __future__ import annotations

from typing import Any

from strongroom.domain.ports import StoredCollection
from strongroom.domain.records import Page, RecordView
from strongroom.domain.schema import FIELD_TYPES, MASK_POLICIES


def record_json(view: RecordView) -> dict[str, Any]:
    return {
        "id": view.id,
        "collection": view.collection,
        "subject_id": view.subject_id,
        "version": view.version,
        "data": view.data,
        "revealed": list(view.revealed),
        "created_at": view.created_at,
        "updated_at": view.updated_at,
    }


def page_json(page: Page) -> dict[str, Any]:
    return {"items": [record_json(item) for item in page.items], "next_cursor": page.next_cursor}


def collection_json(collection: StoredCollection) -> dict[str, Any]:
    return {
        "name": collection.schema.name,
        "fields": collection.schema.to_json(),
        "retention_days": collection.schema.retention_days,
        "version": collection.version,
        "created_at": collection.created_at,
        "updated_at": collection.updated_at,
    }


def etag(version: int) -> bytes:
    return f'"{version}"'.encode()


# -- JSON Schemas for the OpenAPI document -----------------------------------------------------

FIELD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "enum": list(FIELD_TYPES)},
        "sensitive": {
            "type": "boolean",
            "description": "Encrypted and masked on read. Default: true for email, card, ssn, "
            "phone, iban and name; always true for card and ssn.",
        },
        "searchable": {
            "type": "boolean",
            "default": False,
            "description": "Exact-match search through a keyed blind index (HMAC).",
        },
        "mask": {"type": "string", "enum": list(MASK_POLICIES), "default": "partial"},
        "required": {"type": "boolean", "default": False},
    },
}

COLLECTION_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["fields"],
    "properties": {
        "fields": {"type": "object", "additionalProperties": FIELD_SCHEMA, "maxProperties": 64},
        "retention_days": {
            "type": ["integer", "null"],
            "minimum": 1,
            "maximum": 36500,
            "description": "Delete records this many days after their last update (audited "
            "`record.delete` by `strongroom`), except those under legal hold. Omit to keep.",
        },
    },
    "example": {
        "fields": {
            "email": {"type": "email", "searchable": True},
            "card": {"type": "card"},
            "name": {"type": "name", "mask": "partial"},
            "plan": {"type": "text", "sensitive": False},
        }
    },
}

COLLECTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": FIELD_SCHEMA},
        "version": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}

RECORD_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["subject_id", "data"],
    "properties": {
        "subject_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 256,
            "description": "The data subject the record is about (stored encrypted; "
            "pseudonymised for lookups).",
        },
        "data": {"type": "object", "description": "Field values, checked against the schema."},
    },
    "example": {
        "subject_id": "customer-4711",
        "data": {
            "email": "jane.doe@example.com",
            "card": "4242 4242 4242 4242",
            "name": "Jane Doe",
            "plan": "gold",
        },
    },
}

RECORD_PATCH: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["data"],
    "properties": {
        "data": {
            "type": "object",
            "description": "Fields to change; null removes an optional field.",
        }
    },
}

RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "collection": {"type": "string"},
        "subject_id": {"type": "string"},
        "version": {"type": "integer"},
        "data": {"type": "object", "description": "Masked unless listed in revealed."},
        "revealed": {"type": "array", "items": {"type": "string"}},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}

PAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "items": {"type": "array", "items": RECORD_SCHEMA},
        "next_cursor": {"type": ["string", "null"]},
    },
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"location": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
