"""Metrics at /metrics, in process: request metrics by route template, the audit pipeline, the
business counters, the database and Redis, build info."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from strongroom import __version__, privacy
from strongroom.app import create_app
from strongroom.observability.metrics import SQL_OPERATIONS
from strongroom.settings import Settings
from tests.conftest import (
    Servers,
    TenantKeys,
    captured_logs,
    create_databases,
    customer,
    drop_databases,
)
from tests.integration.observability.conftest import scrape

DURATION = "http_server_request_duration_seconds_count"


async def test_request_duration_is_labelled_by_route_template_and_final_status(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str
) -> None:
    before = await scrape(client)
    for _ in range(3):
        assert (await client.get("/livez")).status_code == 200
    headers = await tenant.headers("records:read", "records:write")
    created = await client.post(
        customers, json={"subject_id": "m-1", "data": customer(1)}, headers=headers
    )
    assert created.status_code == 201
    assert (await client.get(created.headers["location"], headers=headers)).status_code == 200
    # A problem response made of an exception is counted with its own status.
    assert (await client.get("/v1/collections/customers/records/nope")).status_code == 401
    assert (await client.get("/no/such/path?email=jane@example.com")).status_code == 404
    after = await scrape(client)

    def grew(**labels: str) -> float:
        return after.value(DURATION, **labels) - before.value(DURATION, **labels)

    assert grew(method="GET", route="/livez", status="200") == 3
    record = "/v1/collections/{name}/records/{record_id}"
    assert grew(method="GET", route=record, status="200") == 1
    assert grew(method="GET", route=record, status="401") == 1
    assert grew(method="POST", route="/v1/collections/{name}/records", status="201") == 1
    assert grew(method="GET", route="*", status="404") == 1
    routes = {labels["route"] for labels in after.labels(DURATION)}
    assert not any("nope" in route or "example.com" in route for route in routes), routes
    assert created.headers["location"].rsplit("/", 1)[-1] not in after.text
    # Sizes, in flight (this scrape is the one request in flight).
    posted = after.value(
        "http_server_request_body_size_bytes_sum",
        method="POST",
        route="/v1/collections/{name}/records",
    ) - before.value(
        "http_server_request_body_size_bytes_sum",
        method="POST",
        route="/v1/collections/{name}/records",
    )
    assert posted > 100
    assert after.value("http_server_response_body_size_bytes_count", route="/livez") >= 3
    assert after.value("http_server_active_requests", method="GET") == 1


async def test_build_info_names_version_and_native_implementation(
    client: httpx.AsyncClient,
) -> None:
    metrics = await scrape(client)
    assert (
        metrics.value(
            "strongroom_build_info", version=__version__, implementation=privacy.IMPLEMENTATION
        )
        == 1
    )
    # One process: the standard process and GC collectors.
    assert metrics.value("process_resident_memory_bytes") > 0
    assert metrics.labels("python_gc_collections_total")


async def test_reveal_feeds_business_audit_crypto_and_database_metrics(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str
) -> None:
    headers = await tenant.headers(
        "records:read", "records:write", "records:reveal", **{"X-Purpose": "billing"}
    )
    created = await client.post(
        customers, json={"subject_id": "m-2", "data": customer(2)}, headers=headers
    )
    before = await scrape(client)
    for _ in range(2):
        revealed = await client.get(
            created.headers["location"], params={"reveal": "email"}, headers=headers
        )
        assert revealed.json()["data"]["email"] == "jane.doe2@example.com"
    after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert grew("strongroom_reveals_total", tenant=tenant.id, purpose="billing") == 2
    assert grew("strongroom_audit_events_total", action="record.reveal", outcome="success") == 2
    assert grew("strongroom_audit_events_written_total") >= 2
    assert grew("strongroom_audit_batch_size_count") >= 1
    assert grew("strongroom_audit_flush_duration_seconds_count") >= 1
    assert after.value("strongroom_audit_queue_depth") == 0
    assert after.value("strongroom_audit_writer_healthy") == 1
    lookups = grew("strongroom_dek_cache_lookups_total", result="hit") + grew(
        "strongroom_dek_cache_lookups_total", result="miss"
    )
    assert lookups >= 2
    assert grew("db_client_operation_duration_seconds_count", pool="data") >= 2
    assert grew("db_client_connection_wait_time_seconds_count", pool="data") >= 2
    assert after.value("db_client_connection_max", pool="data") > 0
    assert after.value("db_client_connection_count", pool="data", state="idle") >= 1
    operations = {
        labels["operation"] for labels in after.labels("db_client_operation_duration_seconds_count")
    }
    assert operations <= {*SQL_OPERATIONS, "OTHER"}
    # The API key's rate is checked in Redis (a lease at a time, so at least once).
    assert grew("strongroom_redis_command_duration_seconds_count", outcome="ok") >= 1
    # No value and no subject id ever appears in a label.
    assert "jane.doe2" not in after.text
    assert "m-2" not in after.text


async def test_exports_and_erasures_are_counted_per_tenant(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str
) -> None:
    headers = await tenant.headers(
        "records:write", "subjects:export", "subjects:erase", "audit:read"
    )
    await client.post(customers, json={"subject_id": "m-3", "data": customer(3)}, headers=headers)
    before = await scrape(client)
    exported = await client.get("/v1/subjects/m-3/export", headers=headers)
    assert exported.status_code == 200, exported.text
    erased = await client.delete("/v1/subjects/m-3", headers=headers)
    assert erased.status_code == 200, erased.text
    after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert grew("strongroom_exports_total", tenant=tenant.id, kind="subject") == 1
    assert grew("strongroom_erasures_total", tenant=tenant.id, outcome="erased") == 1


async def test_healthz_gives_every_component_with_latency_and_details(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert body["version"] == __version__
    assert body["implementation"] == privacy.IMPLEMENTATION
    components = body["components"]
    for name in ("database", "redis", "audit"):
        assert components[name]["status"] == "ok"
        assert components[name]["latency_ms"] >= 0
    assert components["audit"]["queue_depth"] == 0
    assert "events_written" in components["audit"]
    assert components["database"]["max"] >= components["database"]["in_use"]
    live = await client.get("/livez")
    assert live.json() == {"status": "ok"}


async def test_healthz_says_whether_postgresql_vacuums_by_itself(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    settings = await db.fetchrow(
        "SELECT current_setting('autovacuum') AS autovacuum, "
        "current_setting('track_counts') AS track_counts"
    )
    assert settings is not None
    expected = settings["autovacuum"] == "on" and settings["track_counts"] == "on"
    body = (await client.get("/healthz")).json()
    assert body["components"]["database"]["autovacuum"] is expected


async def test_start_warns_when_postgresql_never_analyzes_its_tables(
    settings: Settings, servers: Servers
) -> None:
    # track_counts off for one database: what autovacuum needs to see, whatever the server's
    # autovacuum setting, so the warning shows on any server.
    scratch = await create_databases(servers.admin_url, prefix="sr_novacuum")
    try:
        admin = await asyncpg.connect(scratch.data_url)
        try:
            await admin.execute(f'ALTER DATABASE "{scratch.names[0]}" SET track_counts = off')
        finally:
            await admin.close()
        application = create_app(
            settings.with_overrides(database_url=scratch.data_url, keystore_url=scratch.keys_url)
        )
        with captured_logs() as logs:
            await application.start()
        try:
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://sr.test") as c:
                body = (await c.get("/healthz")).json()
        finally:
            await application.stop()
        assert body["components"]["database"]["autovacuum"] is False
        assert "PostgreSQL runs with autovacuum or track_counts off" in logs.text, logs.text
    finally:
        await drop_databases(servers.admin_url, scratch)


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/livez", "/readyz"])
async def test_probe_and_metrics_paths_need_no_api_key(
    client: httpx.AsyncClient, path: str
) -> None:
    assert (await client.get(path)).status_code == 200
