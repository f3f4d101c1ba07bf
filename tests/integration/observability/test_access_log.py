"""The access line: one per request, at INFO, with the request id the response carries; no
query string, no header, no body, and PII in an exception redacted on the way out."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import orjson
import pytest
from blacksheep import Request, Response

from strongroom.app import create_app
from strongroom.observability.logging import configure_logging, flush_access_lines
from strongroom.settings import Settings
from tests.conftest import TenantKeys, customer

PII = ("jane.doe9@example.com", "4111 1111 1111 1111", "123-45-6789", "DE89 3704 0044 0532 0130 00")


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


@pytest.fixture
async def logged_client(
    settings: Settings, output: io.StringIO
) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings)

    async def boom(request: Request) -> Response:
        raise RuntimeError("card 4111 1111 1111 1111 of jane.doe9@example.com, ssn 123-45-6789")

    application.router.add_get("/boom", boom)
    await application.start()
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://strongroom.test") as c:
        yield c
    await application.stop()


def lines(output: io.StringIO) -> list[dict[str, object]]:
    flush_access_lines()  # lines wait in a buffer; the test reads before it is written
    return [orjson.loads(line) for line in output.getvalue().splitlines() if line.strip()]


def service_text(output: io.StringIO) -> str:
    """What the service wrote (the test's HTTP client logs its requests to the same root)."""
    flush_access_lines()
    return "\n".join(
        line for line in output.getvalue().splitlines() if '"logger":"httpx"' not in line
    )


def access(output: io.StringIO) -> list[dict[str, object]]:
    return [line for line in lines(output) if line["logger"] == "strongroom.access"]


async def test_one_access_line_per_request_with_the_returned_request_id(
    logged_client: httpx.AsyncClient, output: io.StringIO
) -> None:
    before = len(access(output))
    response = await logged_client.get(
        "/livez?email=jane.doe9@example.com", headers={"X-Request-ID": "req-0123"}
    )
    assert response.headers["x-request-id"] == "req-0123"
    generated = await logged_client.get("/readyz")
    found = access(output)[before:]
    assert len(found) == 2, found
    first, second = found
    assert first["request_id"] == "req-0123"
    assert first["message"] == "GET /livez 200"
    assert (first["method"], first["route"], first["status"]) == ("GET", "/livez", 200)
    assert isinstance(first["duration_ms"], float)
    assert first["bytes"] == len(response.content)
    assert first["level"] == "INFO"
    assert "client" in first
    assert "time" in first
    assert second["request_id"] == generated.headers["x-request-id"]
    assert "jane.doe9" not in service_text(output)
    assert "?" not in service_text(output)


async def test_planted_pii_in_body_headers_path_and_exception_never_reaches_the_log(
    logged_client: httpx.AsyncClient, output: io.StringIO, tenant: TenantKeys
) -> None:
    headers = await tenant.headers("admin", "records:write", "records:read")
    planted = {"X-Note": PII[1], "User-Agent": PII[0], "Referer": f"https://x.test/?ssn={PII[2]}"}
    put = await logged_client.put(
        "/v1/collections/people",
        json={"fields": {"email": {"type": "email"}, "card": {"type": "card"}}},
        headers=headers,
    )
    assert put.status_code in (200, 201), put.text
    created = await logged_client.post(
        "/v1/collections/people/records",
        json={"subject_id": PII[0], "data": {"email": PII[0], "card": PII[1]}},
        headers={**headers, **planted},
    )
    assert created.status_code == 201, created.text
    # Refused bodies are not echoed to the log either.
    bad = await logged_client.post(
        "/v1/collections/people/records",
        json={"subject_id": "s", "data": {"email": PII[2], "iban": PII[3]}},
        headers=headers,
    )
    assert bad.status_code == 422
    refused = await logged_client.get(f"/v1/subjects/{PII[0]}/export", headers=planted)
    assert refused.status_code == 401
    failed = await logged_client.get("/boom", headers=planted)
    assert failed.status_code == 500
    text = service_text(output)
    for value in (*PII, "4111111111111111", "jane.doe9"):
        assert value not in text, value
    records = lines(output)
    errors = [line for line in records if line["level"] == "ERROR"]
    assert errors, text
    assert "exception" in errors[-1]
    assert "RuntimeError" in str(errors[-1]["exception"])
    assert errors[-1]["request_id"] == failed.headers["x-request-id"]
    statuses = {line["request_id"]: line["status"] for line in access(output)}
    assert statuses[failed.headers["x-request-id"]] == 500
    assert statuses[created.headers["x-request-id"]] == 201
    # The record body, and what it revealed, made it nowhere into the log.
    assert customer(9)["ssn"] not in text


async def test_access_log_off_below_info(settings: Settings) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging("WARNING", "json", stream)
    try:
        application = create_app(settings)
        await application.start()
        try:
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                assert (await c.get("/livez")).status_code == 200
        finally:
            await application.stop()
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    assert "strongroom.access" not in stream.getvalue()
    assert '"logger":"strongroom' in stream.getvalue() or stream.getvalue() == ""
