"""Redaction of free text and masking of single values."""

from __future__ import annotations

from typing import Any

from blacksheep import Request, Response

from strongroom import privacy
from strongroom.domain.errors import FieldError, ValidationFailed
from strongroom.domain.schema import FIELD_TYPES
from strongroom.http.body import read_json
from strongroom.http.responses import json_response
from strongroom.http.routes.records import principal_of
from strongroom.http.routing import Endpoint, RouteTable

MASK_POLICIES = ("partial", "full", "redact")

REDACT_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["text"],
    "properties": {
        "text": {"type": "string", "description": "Free text to scan (within the body limit)."},
        "style": {"type": "string", "enum": ["label", "mask"], "default": "label"},
    },
    "example": {"text": "Call +1 415 555 0134 or mail jane@example.com", "style": "label"},
}
MASK_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type", "value"],
    "properties": {
        "type": {"type": "string", "enum": list(FIELD_TYPES)},
        "value": {"type": "string"},
        "policy": {"type": "string", "enum": list(MASK_POLICIES), "default": "partial"},
    },
    "example": {"type": "card", "value": "4242 4242 4242 4242"},
}


def _object(body: object, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationFailed(
            "the body must be a JSON object", [FieldError("", "expected object")]
        )
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationFailed(
            "unknown members", [FieldError(f"/{k}", "unknown member") for k in unknown]
        )
    return body


def _string(body: dict[str, Any], name: str, default: str | None = None) -> str:
    value = body.get(name, default)
    if not isinstance(value, str):
        raise ValidationFailed(
            f"{name} must be a string", [FieldError(f"/{name}", "expected a string")]
        )
    return value


def install(table: RouteTable, max_body: int) -> None:
    async def redact(request: Request) -> Response:
        principal_of(request).require("records:read")
        body = _object(await read_json(request, max_body), {"text", "style"})
        text = _string(body, "text")
        style = _string(body, "style", "label")
        if style not in privacy.REDACTION_STYLES:
            raise ValidationFailed("unknown style", [FieldError("/style", "label or mask")])
        result = privacy.redact(text, style)
        return json_response(
            {
                "text": result.text,
                "findings": [
                    {"type": f.kind, "start": f.start, "end": f.end} for f in result.findings
                ],
            }
        )

    async def mask(request: Request) -> Response:
        principal_of(request).require("records:read")
        body = _object(await read_json(request, max_body), {"type", "value", "policy"})
        kind = _string(body, "type")
        value = _string(body, "value")
        policy = _string(body, "policy", "partial")
        errors = []
        if kind not in FIELD_TYPES:
            errors.append(FieldError("/type", f"one of {', '.join(FIELD_TYPES)}"))
        if policy not in MASK_POLICIES:
            errors.append(FieldError("/policy", f"one of {', '.join(MASK_POLICIES)}"))
        if errors:
            raise ValidationFailed("cannot mask", errors)
        return json_response({"masked": privacy.mask(kind, value, policy)})

    errors = {
        400: "Malformed JSON",
        401: "No valid API key",
        403: "Scope missing",
        413: "Body too large",
        415: "Not JSON",
        422: "Invalid members",
    }
    table.add(
        Endpoint(
            "POST",
            "/v1/redact",
            redact,
            "Redact PII from free text",
            "privacy",
            scope="records:read",
            description="Finds emails, Luhn-valid cards, valid US SSNs, phone numbers, "
            "mod-97 valid IBANs, IPv4/IPv6 addresses and credentials (bearer tokens, API keys, "
            "private keys, JWTs) in one pass and replaces them with labels (`[EMAIL]`) or masks. "
            "Offsets count code points.",
            body=REDACT_BODY,
            response_schema={
                "type": "object",
                "properties": {
                    "text": {"type": "string"},
                    "findings": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "type": {"type": "string"},
                                "start": {"type": "integer"},
                                "end": {"type": "integer"},
                            },
                        },
                    },
                },
            },
            responses={200: "Redacted text and findings", **errors},
        )
    )
    table.add(
        Endpoint(
            "POST",
            "/v1/mask",
            mask,
            "Mask one value",
            "privacy",
            scope="records:read",
            body=MASK_BODY,
            response_schema={"type": "object", "properties": {"masked": {"type": "string"}}},
            responses={200: "The masked value", **errors},
        )
    )
