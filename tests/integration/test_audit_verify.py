"""GET /v1/audit/verify and ``strongroom audit verify``: intact, then tampered, on a fresh
database with the sealer running inside the service."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from strongroom.app import create_app
from strongroom.domain.access import generate_api_key
from strongroom.settings import Settings
from strongroom.store.tenants import TenantRepository
from tests.conftest import Databases, Servers, create_databases, drop_databases


@pytest.fixture
async def fresh(servers: Servers, settings: Settings) -> AsyncIterator[tuple[Databases, Settings]]:
    databases = await create_databases(servers.admin_url, prefix="sr_verify")
    own = settings.with_overrides(database_url=databases.data_url, keystore_url=databases.keys_url)
    yield databases, own
    await drop_databases(servers.admin_url, databases)


async def wait_until_sealed(pool: asyncpg.Pool) -> None:
    unsealed = (
        "SELECT count(*) FROM audit_events e "
        "WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.event_seq = e.seq)"
    )
    for _ in range(100):
        if not await pool.fetchval(unsealed):
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the sealer did not seal the events")


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    env.update(
        {
            "STRONGROOM_DATABASE_URL": settings.database_url or "",
            "STRONGROOM_KEYSTORE_URL": settings.keystore_url or "",
            "STRONGROOM_REDIS_URL": settings.redis_url or "",
            "STRONGROOM_MASTER_KEY": settings.master_key or "",
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "strongroom", "audit", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_verify_intact_then_tampered(
    fresh: tuple[Databases, Settings], tmp_path: Path
) -> None:
    databases, settings = fresh
    pool = await asyncpg.create_pool(databases.data_url, min_size=1, max_size=2)
    assert pool is not None
    application = create_app(settings)
    await application.start()
    try:
        await TenantRepository(pool).create("auditors", ("support",))
        key = generate_api_key()
        await TenantRepository(pool).add_api_key(
            "auditors", key.key_id, key.secret_hash, frozenset({"audit:read"}), ""
        )
        headers = {"Authorization": f"Bearer {key.token}"}
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for _ in range(5):
                await client.get("/v1/audit/events", headers=headers)
            await wait_until_sealed(pool)
            intact = await client.get("/v1/audit/verify", headers=headers)
            assert intact.status_code == 200, intact.text
            assert intact.json()["ok"] is True
            assert intact.json()["checked"] >= 5

            export = tmp_path / "checkpoints.jsonl"
            exported = cli(settings, "checkpoints", "export", "--output", str(export))
            assert exported.returncode == 0, exported.stderr
            good = cli(settings, "verify", "--checkpoints", str(export))
            assert good.returncode == 0, good.stderr
            assert orjson.loads(good.stdout)["ok"] is True

            victim = await pool.fetchrow(
                "SELECT id FROM audit_events "
                "WHERE seq = (SELECT event_seq FROM audit_chain WHERE position = 3)"
            )
            async with pool.acquire() as connection, connection.transaction():
                await connection.execute("SET LOCAL session_replication_role = replica")
                await connection.execute(
                    "UPDATE audit_events SET outcome = 'denied' WHERE id = $1", victim["id"]
                )

            broken = await client.get("/v1/audit/verify", headers=headers)
            problem = broken.json()["first_problem"]
            assert broken.json()["ok"] is False
            assert (problem["kind"], problem["position"]) == ("changed", 3)
            assert problem["event_id"] == str(victim["id"])
            assert (await client.get("/v1/audit/verify")).status_code == 401

        bad = cli(settings, "verify")
        assert bad.returncode == 1
        assert "broken at position 3: changed" in bad.stderr
    finally:
        await application.stop()
        await pool.close()
