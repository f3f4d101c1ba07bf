"""Master key rotation under load: no failed request, every record still decrypts, nothing left
wrapped by the retired version; and a re-wrap killed midway resumes where it stopped."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from strongroom.app import create_app
from strongroom.crypto import LocalKeyWrapper, parse_master_keys, subject_key_aad
from strongroom.domain.access import generate_api_key
from strongroom.settings import Settings
from strongroom.store.tenants import TenantRepository
from tests.conftest import CUSTOMERS, Databases, Servers, create_databases, customer, drop_databases

K1 = base64.b64encode(os.urandom(32)).decode()
K2 = base64.b64encode(os.urandom(32)).decode()


@dataclass
class Fresh:
    databases: Databases
    settings: Settings


@pytest.fixture
async def fresh(servers: Servers, settings: Settings) -> AsyncIterator[Fresh]:
    databases = await create_databases(servers.admin_url, prefix="sr_rotate")
    own = settings.with_overrides(
        database_url=databases.data_url,
        keystore_url=databases.keys_url,
        master_key=f"1:{K1}",
        rate_limit=0.0,
    )
    yield Fresh(databases, own)
    await drop_databases(servers.admin_url, databases)


def cli(settings: Settings, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    env.update(
        {
            "STRONGROOM_DATABASE_URL": settings.database_url or "",
            "STRONGROOM_KEYSTORE_URL": settings.keystore_url or "",
            "STRONGROOM_REDIS_URL": settings.redis_url or "",
            "STRONGROOM_MASTER_KEY": settings.master_key or "",
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "strongroom", "keys", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_cli(settings: Settings, *args: str) -> tuple[int, str, str]:
    process = cli(settings, *args)
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


async def kek_versions(keys_url: str) -> dict[int, int]:
    connection = await asyncpg.connect(keys_url)
    try:
        rows = await connection.fetch(
            "SELECT kek_version, count(*) AS n FROM (SELECT kek_version FROM subject_keys "
            "UNION ALL SELECT kek_version FROM tenant_keys) k GROUP BY 1"
        )
    finally:
        await connection.close()
    return {r["kek_version"]: r["n"] for r in rows}


async def test_rotation_under_load(fresh: Fresh) -> None:
    pool = await asyncpg.create_pool(fresh.databases.data_url, min_size=1, max_size=2)
    assert pool is not None
    key = generate_api_key()
    await TenantRepository(pool).create("rotating", ("support",))
    await TenantRepository(pool).add_api_key(
        "rotating", key.key_id, key.secret_hash, frozenset({"admin"}), ""
    )
    await pool.close()
    headers = {"Authorization": f"Bearer {key.token}", "X-Purpose": "support"}

    # Records written under master key version 1 only.
    first = create_app(fresh.settings)
    await first.start()
    urls: list[str] = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=first), base_url="http://t", headers=headers
    ) as client:
        assert (await client.put("/v1/collections/customers", json=CUSTOMERS)).status_code == 201
        for n in range(40):
            created = await client.post(
                "/v1/collections/customers/records",
                json={"subject_id": f"s-{n}", "data": customer(n)},
            )
            assert created.status_code == 201
            urls.append(created.headers["location"])
    await first.stop()
    assert set(await kek_versions(fresh.databases.keys_url)) == {1}

    # Version 2 configured and active; rotate while clients read and write.
    settings = fresh.settings.with_overrides(master_key=f"1:{K1},2:{K2}")
    app = create_app(settings)
    await app.start()
    failures: list[int] = []
    served = 0
    stop = asyncio.Event()

    async def client_loop(worker: int) -> None:
        nonlocal served
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t", headers=headers
        ) as c:
            n = 0
            while not stop.is_set():
                n += 1
                if n % 4 == 0:
                    r = await c.post(
                        "/v1/collections/customers/records",
                        json={"subject_id": f"new-{worker}-{n}", "data": customer(n)},
                    )
                else:
                    r = await c.get(urls[(worker * 7 + n) % len(urls)], params={"reveal": "email"})
                served += 1
                if r.status_code >= 300:
                    failures.append(r.status_code)

    try:
        loops = [asyncio.create_task(client_loop(w)) for w in range(6)]
        await asyncio.sleep(0.5)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t", headers=headers
        ) as admin:
            started = await admin.post("/v1/keys/rotate")
            assert started.status_code == 202, started.text
            assert started.json()["rotation"]["target_version"] == 2
            for _ in range(200):
                status = (await admin.get("/v1/keys/status")).json()
                if not status["rotation"]["running"]:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"the re-wrap did not finish: {status}")
            await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*loops)
    finally:
        stop.set()
        await app.stop()
    assert failures == []
    assert served > 100
    assert set(await kek_versions(fresh.databases.keys_url)) == {2}

    code, _, err = run_cli(settings, "retire", "2")
    assert code == 1
    assert "active" in err
    code, _, err = run_cli(settings, "retire", "1")
    assert code == 0, err

    # With only version 2 configured, every record still decrypts.
    only_new = create_app(settings.with_overrides(master_key=f"2:{K2}"))
    await only_new.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=only_new), base_url="http://t", headers=headers
        ) as client:
            for n, url in enumerate(urls):
                revealed = await client.get(url, params={"reveal": "email"})
                assert revealed.status_code == 200, revealed.text
                assert revealed.json()["data"]["email"] == f"jane.doe{n}@example.com"
    finally:
        await only_new.stop()


async def test_retire_is_refused_while_keys_use_the_version(fresh: Fresh) -> None:
    connection = await asyncpg.connect(fresh.databases.keys_url)
    try:
        wrapper = LocalKeyWrapper(parse_master_keys(f"1:{K1}"))
        tenant_id = str(uuid.uuid4())
        wrapped = await wrapper.wrap(os.urandom(32), subject_key_aad(tenant_id, b"r" * 32))
        await connection.execute(
            "INSERT INTO subject_keys (tenant_id, subject_ref, dek_version, kek_version, wrapped) "
            "VALUES ($1, $2, 1, $3, $4)",
            uuid.UUID(tenant_id),
            b"r" * 32,
            wrapped.kek_version,
            wrapped.blob,
        )
    finally:
        await connection.close()
    settings = fresh.settings.with_overrides(master_key=f"1:{K1},2:{K2}")
    code, _, err = run_cli(settings, "retire", "1")
    assert code == 1
    assert "still wraps 1 keys" in err


async def test_a_killed_rewrap_resumes(fresh: Fresh) -> None:
    total = 20_000
    wrapper = LocalKeyWrapper(parse_master_keys(f"1:{K1}"))
    tenant_id = uuid.uuid4()
    rows = []
    for n in range(total):
        ref = n.to_bytes(32, "big")
        wrapped = await wrapper.wrap(os.urandom(32), subject_key_aad(str(tenant_id), ref))
        rows.append((tenant_id, ref, 1, wrapped.kek_version, wrapped.blob))
    connection = await asyncpg.connect(fresh.databases.keys_url)
    try:
        await connection.copy_records_to_table(
            "subject_keys",
            records=rows,
            columns=("tenant_id", "subject_ref", "dek_version", "kek_version", "wrapped"),
        )
    finally:
        await connection.close()
    settings = fresh.settings.with_overrides(master_key=f"1:{K1},2:{K2}")
    code, _, err = run_cli(settings, "rotate")
    assert code == 0, err
    again, _, err = run_cli(settings, "rotate")  # while this rotation runs: refused
    assert again == 1
    assert "already running" in err
    assert await kek_versions(fresh.databases.keys_url) == {1: total}  # nothing changed

    process = cli(settings, "rewrap")
    for _ in range(600):
        counts = await kek_versions(fresh.databases.keys_url)
        if counts.get(2, 0) > 0:
            break
        await asyncio.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    midway = await kek_versions(fresh.databases.keys_url)
    assert 0 < midway.get(2, 0) < total, midway  # killed in the middle
    assert midway.get(1, 0) + midway.get(2, 0) == total  # no key lost or duplicated

    code, _, err = run_cli(settings, "rewrap")
    assert code == 0, err
    assert await kek_versions(fresh.databases.keys_url) == {2: total}
    code, out, _ = run_cli(settings, "status")
    assert code == 0
    assert '"running": false' in out
    assert '"keys_to_rewrap": 0' in out
