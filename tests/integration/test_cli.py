"""The ``strongroom`` command against a real database: tenants and API keys."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

import httpx

from tests.conftest import Databases, Servers


def run(
    databases: Databases, servers: Servers, master_key: str, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    env.update(
        {
            "STRONGROOM_DATABASE_URL": databases.data_url,
            "STRONGROOM_KEYSTORE_URL": databases.keys_url,
            "STRONGROOM_REDIS_URL": servers.redis_url,
            "STRONGROOM_MASTER_KEY": master_key,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "strongroom", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_tenant_and_key_lifecycle(
    databases: Databases, servers: Servers, master_key: str, client: httpx.AsyncClient
) -> None:
    name = "cli-" + os.urandom(4).hex()
    created = run(databases, servers, master_key, "tenants", "create", name)
    assert created.returncode == 0, created.stderr
    assert re.fullmatch(r"[0-9a-f-]{36}\n", created.stdout)
    duplicate = run(databases, servers, master_key, "tenants", "create", name)
    assert duplicate.returncode == 1
    assert "exists" in duplicate.stderr

    listed = run(databases, servers, master_key, "tenants", "list")
    assert name in listed.stdout

    key = run(
        databases,
        servers,
        master_key,
        "api-keys",
        "create",
        "--tenant",
        name,
        "--scope",
        "records:read",
        "--name",
        "reader",
    )
    assert key.returncode == 0, key.stderr
    token = key.stdout.strip()
    assert re.fullmatch(r"srk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", token), key.stdout
    key_id = token.split("_")[1]

    keys = run(databases, servers, master_key, "api-keys", "list", "--tenant", name)
    assert key_id in keys.stdout
    assert token.split("_", 2)[2] not in keys.stdout  # the secret is never shown again

    headers = {"Authorization": f"Bearer {token}"}
    ok = await client.post("/v1/mask", json={"type": "email", "value": "a@b.co"}, headers=headers)
    assert ok.status_code == 200

    revoked = run(databases, servers, master_key, "api-keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    for _ in range(50):  # the revocation reaches the service's key cache through NOTIFY
        denied = await client.post(
            "/v1/mask", json={"type": "email", "value": "a@b.co"}, headers=headers
        )
        if denied.status_code == 401:
            break
        await asyncio.sleep(0.02)
    assert denied.status_code == 401
    again = run(databases, servers, master_key, "api-keys", "revoke", key_id)
    assert again.returncode == 1
    assert "revoked" in run(databases, servers, master_key, "api-keys", "list").stdout


def test_bad_scope_and_unknown_tenant_are_refused(
    databases: Databases, servers: Servers, master_key: str
) -> None:
    bad_scope = run(
        databases,
        servers,
        master_key,
        "api-keys",
        "create",
        "--tenant",
        "x",
        "--scope",
        "records:everything",
    )
    assert bad_scope.returncode == 1
    assert "unknown scope" in bad_scope.stderr
    assert bad_scope.stdout == ""
    no_tenant = run(
        databases,
        servers,
        master_key,
        "api-keys",
        "create",
        "--tenant",
        "no-such-tenant",
        "--scope",
        "admin",
    )
    assert no_tenant.returncode == 1
    assert "no tenant named" in no_tenant.stderr
    assert no_tenant.stdout == ""


def test_configuration_errors_are_one_line(
    databases: Databases, servers: Servers, master_key: str
) -> None:
    env = {"PATH": os.environ["PATH"], "STRONGROOM_PORT": "http"}
    result = subprocess.run(
        [sys.executable, "-m", "strongroom", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "STRONGROOM_PORT must be an integer" in result.stderr
