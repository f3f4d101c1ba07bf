"""Audit search, streamed export and the compliance report, over the API."""

from __future__ import annotations

import csv
import io

import asyncpg
import httpx
import orjson
import pytest

from tests.conftest import TenantKeys, customer


async def seed(client: httpx.AsyncClient, tenant: TenantKeys, customers: str) -> str:
    writer = await tenant.headers("records:write", "records:read", "records:reveal")
    created = await client.post(
        customers, json={"subject_id": "subj-a", "data": customer(1)}, headers=writer
    )
    assert created.status_code == 201
    record = created.headers["location"]
    for purpose in ("support", "support", "billing"):
        revealed = await client.get(
            record, params={"reveal": "email"}, headers={**writer, "X-Purpose": purpose}
        )
        assert revealed.status_code == 200
    await client.get(record, headers=writer)
    other = await client.post(
        customers, json={"subject_id": "subj-b", "data": customer(2)}, headers=writer
    )
    assert other.status_code == 201
    return record


async def test_search_filters_and_pages(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str
) -> None:
    record = await seed(client, tenant, customers)
    headers = await tenant.headers("audit:read")
    reveals = await client.get(
        "/v1/audit/events", params={"action": "record.reveal"}, headers=headers
    )
    assert reveals.status_code == 200, reveals.text
    items = reveals.json()["items"]
    assert [e["purpose"] for e in items] == ["billing", "support", "support"]  # newest first
    assert all(e["fields"] == ["email"] for e in items)
    assert all(e["resource"] == record.removeprefix("/v1/") for e in items)

    subject = await client.get("/v1/audit/events", params={"subject": "subj-a"}, headers=headers)
    actions = sorted(e["action"] for e in subject.json()["items"])
    assert actions == [
        "record.create",
        "record.read",
        "record.reveal",
        "record.reveal",
        "record.reveal",
    ]
    assert "subj-a" not in subject.text  # only the pseudonym is shown

    prefix = await client.get(
        "/v1/audit/events", params={"action": "record.*", "purpose": "support"}, headers=headers
    )
    assert len(prefix.json()["items"]) == 2

    seen: list[str] = []
    params: dict[str, str] = {"action": "record.*", "limit": "2"}
    while True:
        page = await client.get("/v1/audit/events", params=params, headers=headers)
        assert page.status_code == 200
        seen.extend(e["id"] for e in page.json()["items"])
        if not page.json()["next_cursor"]:
            break
        params["cursor"] = page.json()["next_cursor"]
    assert len(seen) == len(set(seen)) == 6  # 2 creates, 3 reveals, 1 read


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"action": "record.explode"}, 422),
        ({"outcome": "maybe"}, 422),
        ({"since": "yesterday"}, 422),
        ({"since": "2026-01-01T00:00:00"}, 422),  # no time zone
        ({"since": "2026-02-01T00:00Z", "until": "2026-01-01T00:00Z"}, 422),
        ({"colour": "red"}, 422),
        ({"actor": "x" * 600}, 422),
        ({"limit": "0"}, 400),
        ({"limit": "1000"}, 400),
        ({"cursor": "not-a-cursor"}, 400),
    ],
)
async def test_bad_filters_are_refused(
    client: httpx.AsyncClient, tenant: TenantKeys, params: dict[str, str], status: int
) -> None:
    response = await client.get(
        "/v1/audit/events", params=params, headers=await tenant.headers("audit:read")
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_without_audit_read_is_refused_and_the_refusal_audited(
    client: httpx.AsyncClient, tenant: TenantKeys, db: asyncpg.Pool
) -> None:
    headers = await tenant.headers("records:read", "records:reveal")
    for path in ("/v1/audit/events", "/v1/audit/export", "/v1/compliance/report"):
        response = await client.get(path, headers=headers)
        assert response.status_code == 403, path
    denied = await db.fetch(
        "SELECT resource FROM audit_events WHERE tenant_id = $1::uuid AND action = 'auth.denied'",
        tenant.id,
    )
    assert sorted(r["resource"] for r in denied) == [
        "GET /v1/audit/events",
        "GET /v1/audit/export",
        "GET /v1/compliance/report",
    ]


async def test_export_round_trips_in_both_formats(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str
) -> None:
    await seed(client, tenant, customers)
    headers = await tenant.headers("audit:read")
    page = await client.get(
        "/v1/audit/events", params={"action": "record.*", "limit": "100"}, headers=headers
    )
    expected = {e["id"]: e for e in page.json()["items"]}

    jsonl = await client.get("/v1/audit/export", params={"action": "record.*"}, headers=headers)
    assert jsonl.status_code == 200
    assert jsonl.headers["content-type"] == "application/x-ndjson"
    parsed = [orjson.loads(line) for line in jsonl.content.splitlines()]
    assert [e["seq"] for e in parsed] == sorted(e["seq"] for e in expected.values())
    assert {e["id"]: e for e in parsed} == expected

    as_csv = await client.get(
        "/v1/audit/export", params={"action": "record.*", "format": "csv"}, headers=headers
    )
    assert as_csv.status_code == 200
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(rows) == len(expected)
    for row in rows:
        event = expected[row["id"]]
        assert int(row["seq"]) == event["seq"]
        assert orjson.loads(row["fields"]) == event["fields"]
        assert (row["purpose"] or None) == event["purpose"]
        assert row["occurred_at"] == event["occurred_at"]
        assert row["action"] == event["action"]

    bad = await client.get("/v1/audit/export", params={"format": "xml"}, headers=headers)
    assert bad.status_code == 400


async def test_compliance_report(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str
) -> None:
    await seed(client, tenant, customers)
    await client.get("/v1/audit/events", headers=await tenant.headers("records:read"))  # denied
    headers = await tenant.headers("audit:read")
    report = await client.get("/v1/compliance/report", headers=headers)
    assert report.status_code == 200, report.text
    body = report.json()
    purposes = {(r["purpose"], r["count"]) for r in body["reveals_by_actor_and_purpose"]}
    assert purposes == {("support", 2), ("billing", 1)}
    assert body["denied_requests"]["authentication"] == 1
    assert body["events_by_action"]["record.create"] == {"success": 2}
    assert body["retention"]["policies_days"]["access"] > 0
    assert body["retention"]["active_legal_holds"] == 0
    assert {"head_position", "unsealed", "last_checkpoint"} <= set(body["chain"])
    as_csv = await client.get("/v1/compliance/report", params={"format": "csv"}, headers=headers)
    assert as_csv.status_code == 200
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0] == ["section", "key", "value"]
    assert ["denied_requests", "authentication", "1"] in rows
    assert (
        await client.get("/v1/compliance/report", params={"action": "x"}, headers=headers)
    ).status_code == 400
