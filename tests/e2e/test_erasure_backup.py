"""Crypto-shredding survives a backup restore.

The key store is a separate database, backed up on its own terms. A dump of the DATA database
taken before an erasure still holds the erased subject's ciphertext; restored next to the live
key store, it must not decrypt, while every other subject in the same dump still does.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import secrets
import shutil
import subprocess
from pathlib import Path

import asyncpg
import httpx
import pytest

from strongroom.app import create_app
from strongroom.settings import Settings
from tests.conftest import Databases, Servers, TenantKeys, customer, with_database


def pg_tools(server_major: int) -> tuple[str, str] | None:
    """A ``pg_dump`` able to read the server and the ``psql`` next to it."""
    candidates = [shutil.which("pg_dump")]
    spec = importlib.util.find_spec("pgserver")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidates.append(str(Path(folder) / "pginstall" / "bin" / "pg_dump"))
    for dump in candidates:
        if dump is None or not Path(dump).exists():
            continue
        psql = Path(dump).with_name("psql")
        if not psql.exists():
            continue
        match = re.search(rb"(\d+)\.", _run_sync(dump, "--version"))
        if match is not None and int(match.group(1)) >= server_major:
            return dump, str(psql)
    return None


def _run_sync(*argv: str) -> bytes:
    return subprocess.run(argv, capture_output=True, check=True).stdout


async def run(*argv: str) -> bytes:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode(errors="replace")
    return out


async def test_restored_data_backup_cannot_bring_an_erased_subject_back(
    client: httpx.AsyncClient,
    tenant: TenantKeys,
    customers: str,
    databases: Databases,
    servers: Servers,
    settings: Settings,
    db: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    server_major = int(await db.fetchval("SHOW server_version_num")) // 10000
    tools = pg_tools(server_major)
    if tools is None:
        pytest.skip(f"no pg_dump for PostgreSQL {server_major} on PATH or in pgserver")
    pg_dump, psql = tools

    writer = await tenant.headers("records:write")
    erased_id, kept_id = f"erased-{secrets.token_hex(4)}", f"kept-{secrets.token_hex(4)}"
    created = {}
    for n, subject_id in ((1, erased_id), (2, kept_id)):
        response = await client.post(
            customers, json={"subject_id": subject_id, "data": customer(n)}, headers=writer
        )
        assert response.status_code == 201, response.text
        created[subject_id] = response.json()["id"]

    # API keys live in the data database: the one the restored app is called with must be in
    # the backup.
    await tenant.key("records:read", "records:reveal", "subjects:export")

    # 1. Back up the DATA database only (the key store has its own backups).
    dump = tmp_path / "data.sql"
    dump.write_bytes(
        await run(pg_dump, "--no-owner", "--no-privileges", "--dbname", databases.data_url)
    )
    assert created[erased_id] in dump.read_text()

    # 2. Erase the subject on the live system.
    erased = await client.delete(
        f"/v1/subjects/{erased_id}", headers=await tenant.headers("subjects:erase")
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["keys_destroyed"] == 1

    # 3. Restore the dump into a scratch database.
    scratch = f"{databases.names[0]}_restored"
    admin = await asyncpg.connect(servers.admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{scratch}"')
    finally:
        await admin.close()
    scratch_url = with_database(servers.admin_url, scratch)
    try:
        await run(psql, "--quiet", "-v", "ON_ERROR_STOP=1", "-d", scratch_url, "-f", str(dump))
        restored = await asyncpg.connect(scratch_url)
        try:
            # The erased subject's ciphertext is back in the restored database...
            assert (
                await restored.fetchval(
                    "SELECT count(*) FROM records WHERE id = $1::uuid", created[erased_id]
                )
                == 1
            )
        finally:
            await restored.close()

        # 4. A fresh app on the restored data and the live key store.
        app = create_app(settings.with_overrides(database_url=scratch_url))
        await app.start()
        try:
            transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
            async with httpx.AsyncClient(transport=transport, base_url="http://restored") as c:
                await check_restored(c, tenant, customers, created, erased_id, kept_id)
        finally:
            await app.stop()
    finally:
        admin = await asyncpg.connect(servers.admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        finally:
            await admin.close()


async def check_restored(
    client: httpx.AsyncClient,
    tenant: TenantKeys,
    customers: str,
    created: dict[str, str],
    erased_id: str,
    kept_id: str,
) -> None:
    revealer = await tenant.headers(
        "records:read", "records:reveal", "subjects:export", **{"X-Purpose": "support"}
    )
    everything = {"reveal": "email,card,ssn,phone,iban,name,notes,birthday"}
    # ...but nothing opens it: the key that sealed it was destroyed.
    gone = await client.get(
        f"{customers}/{created[erased_id]}", params=everything, headers=revealer
    )
    assert gone.status_code == 404, gone.text
    assert gone.headers["content-type"] == "application/problem+json"
    assert "no key" in gone.json()["detail"]
    plain = customer(1)
    for value in (plain["email"], plain["name"], plain["notes"], erased_id):
        assert str(value) not in gone.text
    exported = await client.get(f"/v1/subjects/{erased_id}/export", headers=revealer)
    assert exported.status_code == 404
    assert "erased" in exported.json()["detail"]
    assert erased_id not in exported.text

    # Every other subject in the same dump still decrypts.
    kept = await client.get(f"{customers}/{created[kept_id]}", params=everything, headers=revealer)
    assert kept.status_code == 200, kept.text
    assert kept.json()["subject_id"] == kept_id
    assert kept.json()["data"]["email"] == customer(2)["email"]
    assert kept.json()["data"]["ssn"] == "123-45-6789"
    bundle = await client.get(f"/v1/subjects/{kept_id}/export", headers=revealer)
    assert bundle.status_code == 200
    assert bundle.json()["records"][0]["data"]["name"] == customer(2)["name"]
