"""The service under Granian, as users run it."""

from __future__ import annotations

import re
import signal

import asyncpg
import httpx
import pytest

from strongroom.domain.access import generate_api_key
from strongroom.store.tenants import TenantRepository
from tests.conftest import CUSTOMERS, Databases, Servers, customer

pytestmark = pytest.mark.e2e


def test_zero_config_serve_prints_a_key_that_works(server_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The README's first command: no URLs configured -> embedded PostgreSQL and Redis, a dev
    master key (0600), tenant default and an admin key printed once."""
    home = tmp_path / "home"
    server = server_factory({"STRONGROOM_HOME": str(home)})
    match = re.search(r"srk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", server.log())
    assert match, server.log()
    headers = {"Authorization": f"Bearer {match.group(0)}"}
    assert (home / "master.key").stat().st_mode & 0o777 == 0o600
    assert "DEVELOPMENT master key" in server.log()

    with httpx.Client(base_url=server.base_url, headers=headers) as client:
        assert client.put("/v1/collections/customers", json=CUSTOMERS).status_code == 201
        created = client.post(
            "/v1/collections/customers/records", json={"subject_id": "c-1", "data": customer()}
        )
        assert created.status_code == 201, created.text
        assert created.json()["data"]["card"] == "•••• •••• •••• 1111"
        read = client.get(created.headers["location"])
        assert read.status_code == 200
        assert read.headers["x-request-id"]
    assert server.stop() == 0

    # A second start reuses the data folder and prints no new key.
    again = server_factory({"STRONGROOM_HOME": str(home)})
    assert "srk_" not in again.log()
    with httpx.Client(base_url=again.base_url, headers=headers) as client:
        assert client.get(created.headers["location"]).status_code == 200


def test_production_refuses_dev_conveniences(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "strongroom", "serve"],
        env={"STRONGROOM_ENV": "production", "STRONGROOM_HOME": str(tmp_path), "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "production needs STRONGROOM_DATABASE_URL" in result.stderr
    assert not (tmp_path / "master.key").exists()


async def test_configured_serve_with_two_workers_and_graceful_stop(
    server_factory,
    databases: Databases,
    servers: Servers,
    master_key: str,  # type: ignore[no-untyped-def]
) -> None:
    pool = await asyncpg.create_pool(databases.data_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        tenants = TenantRepository(pool)
        name = "e2e-" + generate_api_key().key_id
        await tenants.create(name, ("support",))
        key = generate_api_key()
        await tenants.add_api_key(name, key.key_id, key.secret_hash, frozenset({"admin"}), "e2e")
    finally:
        await pool.close()
    server = server_factory(
        {
            "STRONGROOM_ENV": "production",
            "STRONGROOM_DATABASE_URL": databases.data_url,
            "STRONGROOM_KEYSTORE_URL": databases.keys_url,
            "STRONGROOM_REDIS_URL": servers.redis_url,
            "STRONGROOM_MASTER_KEY": master_key,
        },
        workers=2,
    )
    headers = {"Authorization": f"Bearer {key.token}", "X-Purpose": "support"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as client:
        assert (await client.put("/v1/collections/people", json=CUSTOMERS)).status_code == 201
        created = await client.post(
            "/v1/collections/people/records", json={"subject_id": "p-1", "data": customer(7)}
        )
        assert created.status_code == 201, created.text
        revealed = await client.get(created.headers["location"], params={"reveal": "email"})
        assert revealed.json()["data"]["email"] == "jane.doe7@example.com"
        ready = await client.get("/readyz")
        assert ready.json()["status"] == "ready"
        assert ready.headers["server"] == "strongroom"  # no server software or version
        assert "x-powered-by" not in ready.headers
    assert server.stop(signal.SIGTERM) == 0
