"""A million audit events stream out with flat server memory and re-parse to the same events."""

from __future__ import annotations

import csv
import io
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from strongroom.audit.events import COLUMNS
from strongroom.domain.access import generate_api_key
from strongroom.store.tenants import TenantRepository
from tests.conftest import Databases, Servers, create_databases, drop_databases

pytestmark = pytest.mark.e2e

EVENTS = 1_000_000


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        stack.extend(children.get(current, []))
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


@pytest.fixture
async def databases(servers: Servers) -> AsyncIterator[Databases]:
    """Databases of this test's own: a million events in the session's databases would make
    every later test that verifies the chain walk them."""
    created = await create_databases(servers.admin_url, prefix="sr_scale")
    yield created
    await drop_databases(servers.admin_url, created)


async def test_million_event_export_streams_with_flat_memory(
    server_factory,
    databases: Databases,
    servers: Servers,
    master_key: str,  # type: ignore[no-untyped-def]
) -> None:
    pool = await asyncpg.create_pool(databases.data_url, min_size=1, max_size=2)
    assert pool is not None
    tenant_name = "scale-" + os.urandom(4).hex()
    try:
        tenant = await TenantRepository(pool).create(tenant_name, ("support",))
        key = generate_api_key()
        await TenantRepository(pool).add_api_key(
            tenant_name, key.key_id, key.secret_hash, frozenset({"audit:read"}), "scale"
        )
        start = datetime(2026, 1, 1, tzinfo=UTC)
        tenant_uuid = uuid.UUID(tenant.id)
        async with pool.acquire() as connection:
            for offset in range(0, EVENTS, 100_000):
                rows = [
                    (
                        uuid.uuid4(),
                        start + timedelta(microseconds=n),
                        tenant_uuid,
                        "k" * 16,
                        "record.reveal",
                        f"collections/c/records/{n}",
                        None,
                        ["email", "card"],
                        "support",
                        "success",
                        f"req-{n}",
                        None,
                        "127.0.0.1",
                    )
                    for n in range(offset, offset + 100_000)
                ]
                await connection.copy_records_to_table(
                    "audit_events", records=rows, columns=COLUMNS
                )
                del rows
    finally:
        await pool.close()

    server = server_factory(
        {
            "STRONGROOM_ENV": "production",
            "STRONGROOM_DATABASE_URL": databases.data_url,
            "STRONGROOM_KEYSTORE_URL": databases.keys_url,
            "STRONGROOM_REDIS_URL": servers.redis_url,
            "STRONGROOM_MASTER_KEY": master_key,
        }
    )
    headers = {"Authorization": f"Bearer {key.token}"}
    pid = server.process.pid
    for fmt in ("jsonl", "csv"):
        baseline = tree_rss_bytes(pid)
        peak = baseline
        count = 0
        last_seq = 0
        buffer = b""
        async with (
            httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=120) as client,
            client.stream(
                "GET", "/v1/audit/export", params={"format": fmt, "action": "record.reveal"}
            ) as r,
        ):
            assert r.status_code == 200
            async for chunk in r.aiter_bytes():
                buffer += chunk
                lines = buffer.split(b"\n")
                buffer = lines.pop()
                for line in lines:
                    if fmt == "jsonl":
                        event = orjson.loads(line)
                    else:
                        if line.startswith(b"id,"):
                            continue
                        values = next(csv.reader(io.StringIO(line.decode())))
                        event = {
                            "seq": int(values[1]),
                            "fields": orjson.loads(values[8]),
                            "purpose": values[9],
                            "request_id": values[11],
                        }
                    assert event["fields"] == ["email", "card"]
                    assert event["purpose"] == "support"
                    assert event["seq"] > last_seq
                    assert event["request_id"] == f"req-{count}"
                    last_seq = event["seq"]
                    count += 1
                if count % 50_000 < 2_000:
                    peak = max(peak, tree_rss_bytes(pid))
        assert buffer.strip() == b""
        assert count == EVENTS, fmt
        growth = peak - baseline
        print(f"{fmt}: {count} events, server RSS {baseline >> 20} MiB -> peak {peak >> 20} MiB")
        assert growth < 100 * 1024 * 1024, f"{fmt} export grew server RSS by {growth >> 20} MiB"
