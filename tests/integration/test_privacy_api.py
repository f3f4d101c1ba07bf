"""POST /v1/redact and /v1/mask: results from the scanner, and refusals for bad input."""

from __future__ import annotations

import httpx
import pytest

from strongroom import privacy
from tests.conftest import TenantKeys


async def test_redact_returns_text_and_code_point_findings(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    text = "Zoë 👋 mail jane.doe@example.com, card 4111 1111 1111 1111."
    response = await client.post(
        "/v1/redact", json={"text": text}, headers=await tenant.headers("records:read")
    )
    assert response.status_code == 200
    body = response.json()
    assert body["text"] == "Zoë 👋 mail [EMAIL], card [CARD]."
    email = body["findings"][0]
    assert email["type"] == "EMAIL"
    assert text[email["start"] : email["end"]] == "jane.doe@example.com"
    masked = await client.post(
        "/v1/redact",
        json={"text": text, "style": "mask"},
        headers=await tenant.headers("records:read"),
    )
    assert masked.json()["text"] == privacy.redact(text, "mask").text


async def test_mask_matches_the_library(client: httpx.AsyncClient, tenant: TenantKeys) -> None:
    for kind, value, policy in (
        ("card", "4111111111111111", "partial"),
        ("email", "jane@example.com", "full"),
        ("ssn", "123-45-6789", "redact"),
    ):
        response = await client.post(
            "/v1/mask",
            json={"type": kind, "value": value, "policy": policy},
            headers=await tenant.headers("records:read"),
        )
        assert response.status_code == 200
        assert response.json() == {"masked": privacy.mask(kind, value, policy)}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/redact", {"text": 42}),
        ("/v1/redact", {"text": ["a"]}),
        ("/v1/redact", {"text": "x", "style": "shout"}),
        ("/v1/redact", {}),
        ("/v1/mask", {"type": "dna", "value": "ACGT"}),
        ("/v1/mask", {"type": "card", "value": 4111111111111111}),
        ("/v1/mask", {"type": "card", "value": "4111", "policy": "hash"}),
        ("/v1/mask", {"type": "card"}),
    ],
)
async def test_bad_members_are_422(
    client: httpx.AsyncClient, tenant: TenantKeys, path: str, body: object
) -> None:
    response = await client.post(path, json=body, headers=await tenant.headers("records:read"))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_ten_megabytes_are_refused_by_the_body_limit(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    huge = b'{"text": "' + b"jane@example.com " * (10 * 1024 * 1024 // 17) + b'"}'
    headers = {**await tenant.headers("records:read"), "Content-Type": "application/json"}
    response = await client.post("/v1/redact", content=huge, headers=headers)
    assert response.status_code == 413
    assert response.json()["type"].endswith("/payload-too-large")
